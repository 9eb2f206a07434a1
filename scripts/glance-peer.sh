#!/usr/bin/env bash
# Upstream OpenStack Glance as a peer for side-by-side benchmarks: Debian's glance-api
# (scripts/install.sh --test installs the package; this script installs nothing) on a free
# loopback port with its own configuration under DIR.
#
#   scripts/glance-peer.sh start DIR   config, SQLite database (glance-manage db_sync) and one
#                                      file store under DIR; prints GLANCE_URL=... (also written
#                                      to DIR/glance.env)
#   scripts/glance-peer.sh stop DIR    stops the server it started (by the PID in DIR/pid)
#
# No Keystone: the paste flavor is empty, so Glance's default pipeline puts its
# "unauthenticated-context" middleware in front: every request runs as an admin context with
# no user and no project, and needs no token or identity header (owner stays unset).
# Glance's own defaults otherwise (workers = number of CPUs, 64 KiB file store chunks).
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
unset PYTHONPATH    # a module named glance on it would shadow Glance's own

stop() {
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  # glance-api leads its own process group (setsid below): its forked workers go with it.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
command -v glance-api >/dev/null 2>&1 && command -v glance-manage >/dev/null 2>&1 || {
  echo "glance-api is not installed (apt-get install glance-api; scripts/install.sh --test does)" >&2
  exit 3; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/images" "$dir/staging" "$dir/tasks" "$dir/lock" "$dir/log"
port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf="$dir/glance-api.conf"

cat > "$conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
log_file = $dir/log/glance-api.log
use_stderr = false
enabled_backends = file:file

[database]
connection = sqlite:///$dir/glance.sqlite

[paste_deploy]
flavor =
config_file = /etc/glance/glance-api-paste.ini

[glance_store]
default_backend = file

[file]
filesystem_store_datadir = $dir/images/

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks/

[oslo_concurrency]
lock_path = $dir/lock

[oslo_policy]
policy_dirs = $dir/policy.d
EOF
mkdir -p "$dir/policy.d"

glance-manage --config-file "$conf" db_sync > "$dir/log/db_sync.log" 2>&1 || {
  echo "glance-manage db_sync failed; see $dir/log/db_sync.log" >&2; exit 1; }

setsid glance-api --config-file "$conf" > "$dir/log/stdout.log" 2>&1 < /dev/null &
echo $! > "$dir/pid"
trap 'stop' ERR

url="http://127.0.0.1:$port"
code=0
for _ in $(seq 1200); do      # up to 120 s: a loaded machine is slow to start it
  code=$(/usr/bin/python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception: print(0)" "$url/v2/images")
  [ "$code" = 200 ] && break
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "glance-api exited; logs in $dir/log" >&2; false; }
  sleep 0.1
done
[ "$code" = 200 ] || { echo "glance-api did not become ready; logs in $dir/log" >&2; false; }
trap - ERR

echo "GLANCE_URL=$url" > "$dir/glance.env"
cat "$dir/glance.env"
