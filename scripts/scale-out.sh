#!/usr/bin/env bash
# Two vmimage processes behind nginx on loopback: one service on PostgreSQL and an S3 store.
#
#   scripts/scale-out.sh start DIR   prints VMIMAGE_URL (nginx), NODE1_URL, NODE2_URL as VAR=value
#                                    lines (also in DIR/scale.env); logs and data under DIR
#   scripts/scale-out.sh stop DIR    stops what it started (by the PIDs in DIR/pids)
#
# Needs in the environment: VMIMAGE_DATABASE_URL (PostgreSQL), VMIMAGE_S3_ENDPOINT,
# VMIMAGE_S3_ACCESS_KEY, VMIMAGE_S3_SECRET_KEY (e.g. from scripts/swift-s3.sh) and
# VMIMAGE_ADMIN_PASSWORD; VMIMAGE_STORES defaults to one S3 store (obj=s3://vmimage/images).
# Each process has a data directory of its own, as on two machines; nothing is shared but
# the database and the object storage. Both start at the same moment. nginx and vmimage are
# not installed here (scripts/install.sh --test installs nginx).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
PYTHON=${VMIMAGE_PYTHON:-$ROOT/.venv/bin/python}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

stop() {
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done < "$dir/pids"
  for _ in $(seq 100); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$dir/pids"
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
case "${VMIMAGE_DATABASE_URL:-}" in
  postgresql*) ;;
  *) echo "VMIMAGE_DATABASE_URL must name a PostgreSQL database" >&2; exit 2 ;;
esac
[ -n "${VMIMAGE_S3_ENDPOINT:-}" ] || { echo "VMIMAGE_S3_ENDPOINT is not set" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 3; }
export VMIMAGE_STORES="${VMIMAGE_STORES:-obj=s3://vmimage/images}"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Processes sharing one database need the same secret key (access-key secrets are sealed with it).
if [ -z "${VMIMAGE_SECRET_KEY:-}" ]; then
  [ -f "$dir/secret-key" ] || (umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$dir/secret-key")
  VMIMAGE_SECRET_KEY=$(cat "$dir/secret-key")
  export VMIMAGE_SECRET_KEY
fi
read -r lb_port port1 port2 < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
export VMIMAGE_PUBLIC_URL="http://127.0.0.1:$lb_port"
: > "$dir/pids"
trap 'stop' ERR

for n in 1 2; do
  port_var="port$n"
  mkdir -p "$dir/node$n"
  "$PYTHON" -m vmimage.cli serve --data-dir "$dir/node$n" --port "${!port_var}" \
    > "$dir/node$n.log" 2>&1 < /dev/null &
  echo $! >> "$dir/pids"
done

mkdir -p "$dir/nginx/tmp"
cat > "$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/tmp/body;
  proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi;
  uwsgi_temp_path $dir/nginx/tmp/uwsgi;
  scgi_temp_path $dir/nginx/tmp/scgi;
  upstream vmimage {
    server 127.0.0.1:$port1;
    server 127.0.0.1:$port2;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$lb_port;
    client_max_body_size 0;
    location / {
      proxy_pass http://vmimage;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      # the client's address as nginx saw it, never a header the client sent: vmimage (uvicorn)
      # believes X-Forwarded-For from 127.0.0.1, and its login brake counts by address
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
    }
  }
}
EOF
if [ "$(id -u)" -eq 0 ]; then sed -i "1i user root;" "$dir/nginx/nginx.conf"; fi
"$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" > "$dir/nginx/stdout.log" 2>&1 < /dev/null &
echo $! >> "$dir/pids"

ready() {  # url
  "$PYTHON" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$1/versions" 2>/dev/null
}
for _ in $(seq 900); do     # up to 3 minutes on a loaded machine
  if ready "http://127.0.0.1:$port1" && ready "http://127.0.0.1:$port2" && ready "http://127.0.0.1:$lb_port"; then
    trap - ERR
    cat > "$dir/scale.env" <<EOF
VMIMAGE_URL=http://127.0.0.1:$lb_port
NODE1_URL=http://127.0.0.1:$port1
NODE2_URL=http://127.0.0.1:$port2
EOF
    cat "$dir/scale.env"
    exit 0
  fi
  while read -r pid; do
    kill -0 "$pid" 2>/dev/null || { echo "a process exited; logs in $dir" >&2; tail -n 20 "$dir"/node*.log >&2; false; }
  done < "$dir/pids"
  sleep 0.2
done
echo "the service did not become ready; logs in $dir" >&2
false
