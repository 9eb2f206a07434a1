#!/usr/bin/env bash
# Run OpenStack Tempest's image (Glance v2) API tests against a fresh vmimage.
#
# Usage: scripts/tempest.sh [REGEX ...] [-- TEMPEST_RUN_ARGS ...]
#        scripts/tempest.sh --install      only install Tempest (runs may then go in parallel)
#   no REGEX     run the Tempest classes vmimage is expected to pass (DEFAULT_REGEX below)
#   REGEX ...    run these stestr selection regexes instead (joined with '|'),
#                e.g. scripts/tempest.sh 'tempest\.api\.image\.v2\.test_images_member\.'
#   -- ARGS      passed to `tempest run` as they are (e.g. -- --slowest)
#
# Tests run on one worker: with one set of pre-provisioned accounts, two workers would
# compete for them (tempest then hands `alt` the reader account, or primary the alt one).
#
# Environment: TEMPEST_VENV (default .venv-tempest), TEMPEST_VERSION (default 47.0.0),
# TEMPEST_MIN_PASSED=N fails the run when fewer than N tests pass (none failing, more skipping),
# KEEP_TEMPEST_DIR=1 keeps the temp dir (server data, log, tempest workspace),
# TEMPEST_STORES (the deployment):
#   file  (default) one process on SQLite with two file stores;
#   s3    one process on SQLite, an S3 store on a one-node Swift (scripts/swift-s3.sh) as the
#         default and staging store, plus one file store;
#   pair  two processes on one fresh PostgreSQL database (TEMPEST_PG, default
#         postgresql://postgres@127.0.0.1:5432/test: the server its database is made on and
#         dropped from), the S3 default store and a file store shared by both, store weights
#         (VMIMAGE_STORE_WEIGHTS), the catalog naming the second process `image_remote`
#         (Tempest's alternate_image_endpoint: remote import, delete and cache).
#
# Starts `vmimage serve` on a free loopback port with a temp data dir, provisions the
# pre-provisioned accounts Tempest uses (demo, alt, reader, admin), writes tempest.conf and
# accounts.yaml, runs tempest, prints a per-class summary, stops the server. Exits non-zero
# when a test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
TEMPEST_VENV="${TEMPEST_VENV:-$ROOT/.venv-tempest}"
TEMPEST_VERSION="${TEMPEST_VERSION:-47.0.0}"

# The whole image v2 suite: what needs Nova, a second region or a second Glance skips itself.
DEFAULT_REGEX='^tempest\.api\.image\.v2\.'

regexes=()
run_args=()
install_only=0
while [ $# -gt 0 ]; do
    if [ "$1" = "--install" ]; then
        install_only=1
        shift
        continue
    fi
    if [ "$1" = "--" ]; then
        shift
        run_args=("$@")
        break
    fi
    regexes+=("$1")
    shift
done
if [ ${#regexes[@]} -eq 0 ]; then
    REGEX="$DEFAULT_REGEX"
else
    REGEX="$(IFS='|'; echo "${regexes[*]}")"
fi

if [ ! -x "$VENV/bin/vmimage" ]; then
    echo "vmimage is not installed in $VENV (python3 -m venv .venv && .venv/bin/pip install -e .)" >&2
    exit 2
fi
if [ ! -x "$TEMPEST_VENV/bin/tempest" ]; then
    echo "Installing tempest $TEMPEST_VERSION into $TEMPEST_VENV" >&2
    python3 -m venv "$TEMPEST_VENV"
    "$TEMPEST_VENV/bin/pip" install -q "tempest==$TEMPEST_VERSION"
fi
[ "$install_only" = 1 ] && exit 0

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmimage-tempest.XXXXXX")"
DATA="$WORK/data"
WS="$WORK/workspace"
LOG="$WORK/server.log"
SERVER_PID=""
REMOTE_PID=""
PG_DB=""
HTTP_PID=""
SWIFT_DIR=""
mkdir -p -m 700 "$DATA"

stop_server() {  # PID
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

pg_admin() {    # create|drop NAME: a database on the TEMPEST_PG server
    "$VENV/bin/python" - "$1" "$2" "$TEMPEST_PG" <<'PYEOF'
import sys
import psycopg
action, name, url = sys.argv[1:]
try:
    admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
except psycopg.OperationalError as exc:
    sys.exit(f"PostgreSQL not reachable at {url} (TEMPEST_PG): {exc}")
with admin:
    if action == "create":
        admin.execute(f'CREATE DATABASE "{name}"')
    else:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
PYEOF
}

cleanup() {
    local rc=$?
    if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; fi
    stop_server "$REMOTE_PID"
    stop_server "$SERVER_PID"
    if [ -n "$PG_DB" ]; then pg_admin drop "$PG_DB" || true; fi
    if [ -n "$SWIFT_DIR" ]; then bash "$ROOT/scripts/swift-s3.sh" stop "$SWIFT_DIR" || true; fi
    if [ "${KEEP_TEMPEST_DIR:-0}" = "1" ]; then
        echo "Kept $WORK (server log: $LOG)" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
DEPLOYMENT="${TEMPEST_STORES:-file}"
case "$DEPLOYMENT" in
    file|s3) ;;
    pair)
        # Both processes share the database, the stores and the secret key; each has its own
        # data dir (and so its own image cache, as two Glance API workers on two hosts).
        TEMPEST_PG="${TEMPEST_PG:-postgresql://postgres@127.0.0.1:5432/test}"
        db_name="vmimage_tempest_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        pg_admin create "$db_name"
        PG_DB="$db_name"    # made: dropped at exit
        export VMIMAGE_DATABASE_URL="${TEMPEST_PG%/*}/$PG_DB"
        VMIMAGE_DATABASE_URL="${VMIMAGE_DATABASE_URL/postgresql:\/\//postgresql+psycopg://}"
        VMIMAGE_SECRET_KEY="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
        export VMIMAGE_SECRET_KEY
        REMOTE_PORT="$(free_port)"
        REMOTE_BASE="http://127.0.0.1:$REMOTE_PORT"
        export VMIMAGE_CATALOG_EXTRA="image_remote=$REMOTE_BASE" ;;
    *) echo "TEMPEST_STORES must be file, s3 or pair" >&2; exit 2 ;;
esac

# Accounts (admin/admin in project admin is created by `serve` from VMIMAGE_ADMIN_PASSWORD).
vmadmin() { "$VENV/bin/vmimage" admin --data-dir "$DATA" "$@" >/dev/null; }
vmadmin project create demo
vmadmin project create alt
vmadmin user create demo --project demo --role member --password demo
vmadmin user create alt --project alt --role member --password alt
vmadmin user create reader --project demo --role reader --password reader

# A small web server on loopback plays the "http image" Tempest downloads (web-download,
# locations, tasks): a real qcow2 file.
WEB="$WORK/web"
mkdir -p "$WEB"
head -c 3145728 /dev/urandom >"$WEB/image.raw"
qemu-img convert -q -f raw -O qcow2 "$WEB/image.raw" "$WEB/image.qcow2"
rm -f "$WEB/image.raw"
HTTP_PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$VENV/bin/python" -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WEB" >"$WORK/web.log" 2>&1 &
HTTP_PID=$!
HTTP_IMAGE="http://127.0.0.1:$HTTP_PORT/image.qcow2"

# The issue's target configuration: two file stores, web-download allowed to loopback (where
# the http image is), format enforcement off (ListUserImagesTest uploads arbitrary bytes).
STORES="fast=file:$DATA/fast,slow=file:$DATA/slow"
WEIGHTS=""
case "$DEPLOYMENT" in
    file) ;;
    s3|pair)
        SWIFT_DIR="$WORK/swift"
        while IFS='=' read -r k v; do export "$k=$v"; done < <(bash "$ROOT/scripts/swift-s3.sh" start "$SWIFT_DIR")
        # Tempest expects "stores" in sorted order after an all-stores import: without weights
        # they are listed in location order (the default store first), so the S3 store (the
        # default, which also holds staged data) is named to sort first.
        STORES="cloud=s3://vmimage-tempest/images,fast=file:$DATA/fast" ;;
esac
if [ "$DEPLOYMENT" = pair ]; then
    # With weights, stores are listed heaviest first: the file store, heavier (downloads read
    # its copy), sorts before the S3 default store, whose copy is made first.
    STORES="swift=s3://vmimage-tempest/images,fast=file:$WORK/fast"
    WEIGHTS="fast=100,swift=10"
fi
echo "deployment: $DEPLOYMENT; stores: $STORES${WEIGHTS:+; weights: $WEIGHTS}"

serve() {   # DATA_DIR PORT LOG: start a vmimage process; its PID in $!
    VMIMAGE_ADMIN_PASSWORD=admin VMIMAGE_FORMAT_ENFORCEMENT=false \
        VMIMAGE_STORES="$STORES" VMIMAGE_STORE_WEIGHTS="$WEIGHTS" \
        VMIMAGE_WEB_DOWNLOAD_ALLOW=127.0.0.1 VMIMAGE_SHOW_LOCATIONS=true \
        "$VENV/bin/vmimage" serve --data-dir "$1" --port "$2" >"$3" 2>&1 &
}

wait_ready() {  # URL PID LOG
    for _ in $(seq 300); do
        if "$VENV/bin/python" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)" \
            "$1/versions" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$2" 2>/dev/null; then
            echo "vmimage exited during start-up:" >&2
            cat "$3" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "vmimage at $1 did not become ready" >&2
    exit 1
}

serve "$DATA" "$PORT" "$LOG"
SERVER_PID=$!
wait_ready "$BASE" "$SERVER_PID" "$LOG"
echo "vmimage listening on $BASE (pid $SERVER_PID, data $DATA)"
if [ "$DEPLOYMENT" = pair ]; then
    # The second process starts once the first has made the database's tables.
    REMOTE_DATA="$WORK/data-remote"
    mkdir -p -m 700 "$REMOTE_DATA"
    serve "$REMOTE_DATA" "$REMOTE_PORT" "$WORK/server-remote.log"
    REMOTE_PID=$!
    wait_ready "$REMOTE_BASE" "$REMOTE_PID" "$WORK/server-remote.log"
    echo "vmimage image_remote listening on $REMOTE_BASE (pid $REMOTE_PID, data $REMOTE_DATA)"
fi

# Tempest workspace and configuration.
"$TEMPEST_VENV/bin/tempest" init --workspace-path "$WORK/workspace.yaml" --name vmimage "$WS" >/dev/null

# Order matters: tempest gives `alt` the first free non-admin account after primary.
cat >"$WS/etc/accounts.yaml" <<'EOF'
- username: demo
  project_name: demo
  password: demo
  user_domain_name: Default
  project_domain_name: Default
  roles: [member]
- username: alt
  project_name: alt
  password: alt
  user_domain_name: Default
  project_domain_name: Default
  roles: [member]
- username: reader
  project_name: demo
  password: reader
  user_domain_name: Default
  project_domain_name: Default
  roles: [reader]
- username: admin
  project_name: admin
  password: admin
  user_domain_name: Default
  project_domain_name: Default
  roles: [admin]
EOF

cat >"$WS/etc/tempest.conf" <<EOF
[DEFAULT]
log_dir = $WS/logs
log_file = tempest.log
debug = false

[oslo_concurrency]
lock_path = $WS/lock

[auth]
use_dynamic_credentials = false
test_accounts_file = $WS/etc/accounts.yaml
create_isolated_networks = false
admin_domain_name = Default
default_credentials_domain_name = Default

[identity]
auth_version = v3
uri_v3 = $BASE/identity/v3
region = RegionOne
disable_ssl_certificate_validation = true
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[image]
region = RegionOne
endpoint_type = public
image_caching_enabled = true
http_image = $HTTP_IMAGE
http_qcow2_image = $HTTP_IMAGE
$([ "$DEPLOYMENT" = pair ] && printf 'alternate_image_endpoint = image_remote\nalternate_image_endpoint_type = public')

[image-feature-enabled]
image_format_enforcement = false
import_image = true
os_glance_reserved = true
manage_locations = true
http_store_enabled = true
do_secure_hash = true
store_weight_enabled = $([ -n "$WEIGHTS" ] && echo true || echo false)

[service_available]
glance = true
nova = false
cinder = false
neutron = false
swift = false

[validation]
run_validation = false
EOF

echo "Running tempest (regex: $REGEX)"
set +e
(cd "$WS" && "$TEMPEST_VENV/bin/tempest" run --config-file "$WS/etc/tempest.conf" \
    --regex "$REGEX" --concurrency 1 ${run_args[@]+"${run_args[@]}"})
RC=$?
set -e

# Per-class summary from the run just made.
(cd "$WS" && "$TEMPEST_VENV/bin/stestr" last --subunit 2>/dev/null) | "$TEMPEST_VENV/bin/python" -c '
import collections, sys
import subunit, testtools

counts = collections.defaultdict(collections.Counter)

class Collect(testtools.StreamResult):
    def status(self, test_id=None, test_status=None, **kw):
        if not test_id or test_status not in ("success", "fail", "skip", "xfail", "uxsuccess"):
            return
        name = test_id.split("[")[0]
        if "." not in name or name.startswith(("setUpClass", "tearDownClass")):
            cls = name
        else:
            cls = name.rsplit(".", 1)[0]
        if "(" in test_id:   # class fixtures: "setUpClass (tempest.x.Class)"
            cls = test_id[test_id.index("(") + 1:test_id.rindex(")")]
        counts[cls]["passed" if test_status in ("success", "xfail") else
                    "failed" if test_status in ("fail", "uxsuccess") else "skipped"] += 1

case = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
result = Collect()
result.startTestRun()
case.run(result)
result.stopTestRun()
total = collections.Counter()
print()
print("%-80s %6s %6s %7s" % ("class", "passed", "failed", "skipped"))
for cls in sorted(counts):
    c = counts[cls]
    total.update(c)
    print("%-80s %6d %6d %7d" % (cls, c["passed"], c["failed"], c["skipped"]))
print("%d passed, %d failed, %d skipped" % (total["passed"], total["failed"], total["skipped"]))
with open(sys.argv[1], "w") as out:
    out.write("%d\n" % total["passed"])
' "$WORK/passed" || true

# A floor on passed tests (CI sets it): a test that starts skipping is a regression too.
if [ -n "${TEMPEST_MIN_PASSED:-}" ] && [ "$RC" -eq 0 ]; then
    passed="$(cat "$WORK/passed" 2>/dev/null || echo 0)"
    if [ "$passed" -lt "$TEMPEST_MIN_PASSED" ]; then
        echo "only $passed tests passed; at least $TEMPEST_MIN_PASSED must (TEMPEST_MIN_PASSED)" >&2
        RC=1
    fi
fi

if [ "$RC" -ne 0 ]; then
    echo "tempest run failed (exit $RC); last server log lines:" >&2
    tail -n 40 "$LOG" >&2 || true
    if [ -n "$REMOTE_PID" ]; then
        echo "last image_remote server log lines:" >&2
        tail -n 20 "$WORK/server-remote.log" >&2 || true
    fi
fi
exit "$RC"
