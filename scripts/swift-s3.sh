#!/usr/bin/env bash
# A one-node OpenStack Swift with the S3 API (s3api + tempauth) on free loopback ports, from
# Debian's packages (scripts/install.sh --test installs them; this script installs nothing).
#
#   scripts/swift-s3.sh start DIR   configs, rings and data under DIR; prints the endpoint and
#                                   credentials as VAR=value lines (also written to DIR/s3.env)
#   scripts/swift-s3.sh stop DIR    stops the servers it started (by the PIDs in DIR/pids)
#
# One replica, one device folder, mount_check off; the S3 user is test:tester / testing.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
unset PYTHONPATH    # a module named swift on it would shadow Swift's own

stop() {
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do
    # Each server leads its own process group (setsid below): its forked workers go with it.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done < "$dir/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$dir/pids"
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
command -v swift-proxy-server >/dev/null 2>&1 || {
  echo "swift is not installed (apt-get install swift swift-proxy swift-object swift-container swift-account)" >&2
  exit 3; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/etc" "$dir/devices/d1" "$dir/log" "$dir/run"
read -r proxy_port object_port container_port account_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
user=$(id -un)
etc="$dir/etc"

cat > "$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = vmimage-test-suffix
swift_hash_path_prefix = vmimage-test-prefix

[storage-policy:0]
name = gold
default = yes
EOF

server_conf() {   # name port
  cat > "$etc/$1-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 1
user = $user
swift_dir = $etc
devices = $dir/devices
mount_check = false
log_name = $1-server
log_facility = LOG_LOCAL0
log_level = WARNING

[pipeline:main]
pipeline = $1-server

[app:$1-server]
use = egg:swift#$1

[$1-replicator]
[$1-updater]
[$1-auditor]
EOF
}
server_conf object "$object_port"
server_conf container "$container_port"
server_conf account "$account_port"

cat > "$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy_port
workers = 1
user = $user
swift_dir = $etc
log_name = proxy-server
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
dns_compliant_bucket_names = false
s3_acl = false
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF

ring() {   # name port
  (cd "$etc" && swift-ring-builder "$1.builder" create 6 1 1 >/dev/null \
     && swift-ring-builder "$1.builder" add "r1z1-127.0.0.1:$2/d1" 100 >/dev/null \
     && swift-ring-builder "$1.builder" rebalance >/dev/null)
}
ring object "$object_port" & r1=$!
ring container "$container_port" & r2=$!
ring account "$account_port" & r3=$!
wait $r1 && wait $r2 && wait $r3

: > "$dir/pids"
trap 'stop' ERR
for name in account container object proxy; do
  setsid "swift-$name-server" "$etc/$name-server.conf" -v > "$dir/log/$name.log" 2>&1 < /dev/null &
  echo $! >> "$dir/pids"
done

endpoint="http://127.0.0.1:$proxy_port"
for _ in $(seq 1200); do      # up to 120 s: a loaded machine is slow to start four servers
  code=$(python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception: print(0)" "$endpoint/healthcheck")
  [ "$code" = 200 ] && break
  while read -r pid; do
    kill -0 "$pid" 2>/dev/null || { echo "a swift server exited; logs in $dir/log" >&2; false; }
  done < "$dir/pids"
  sleep 0.1
done
[ "$code" = 200 ] || { echo "swift did not become ready; logs in $dir/log" >&2; false; }
trap - ERR

cat > "$dir/s3.env" <<EOF
VMIMAGE_S3_ENDPOINT=$endpoint
VMIMAGE_S3_ACCESS_KEY=test:tester
VMIMAGE_S3_SECRET_KEY=testing
VMIMAGE_S3_REGION=us-east-1
EOF
cat "$dir/s3.env"
