#!/usr/bin/env bash
# Proves the README's first command on this machine: the BASE install alone (no test extras)
# in a fresh venv must import every module under vmimage/, serve, and take an upload.
#
# Usage: scripts/smoke-serve.sh            (.ci/run calls it before the test extras exist)
#
# Steps: fresh venv with `pip install .` (base dependencies only) -> import every vmimage
# module -> `vmimage serve` on a free loopback port with a temp data dir -> wait for /versions
# -> `vmimage image create` of a small qcow2 -> `vmimage image list` shows it active -> stop.
# Any failure exits non-zero with the reason (and the server log).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

if ! command -v qemu-img >/dev/null 2>&1; then   # the one system package serving needs
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmimage-smoke.XXXXXX")"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ] && [ -f "$WORK/server.log" ]; then
        echo "---- server log ----" >&2; tail -n 60 "$WORK/server.log" >&2
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
fail() { echo "smoke-serve: FAILED: $*" >&2; exit 1; }

started=$(date +%s)
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$WORK/venv"
VENV="$WORK/venv"
# A non-editable install of the base set, exactly what a user's serving install resolves
# (setuptools' build/ is dropped first: a stale one would carry modules that no longer exist).
rm -rf "$ROOT/build"
"$VENV/bin/pip" install -q --disable-pip-version-check "$ROOT" >"$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log" >&2; fail "pip install of the base dependencies"; }

# Every module under vmimage/ must import with the base set alone (run outside the checkout so
# the installed package, not the source tree, is what gets imported).
(cd "$WORK" && "$VENV/bin/python" - <<'EOF') || fail "a module does not import with the base dependencies"
import importlib, pkgutil, sys
import vmimage
bad = []
for mod in pkgutil.walk_packages(vmimage.__path__, "vmimage."):
    if ".migrations" in mod.name or mod.name.endswith(".__main__"):
        continue   # Alembic scripts run inside Alembic; __main__ runs the CLI when imported
    try:
        importlib.import_module(mod.name)
    except Exception as exc:   # report every failure, not just the first
        bad.append(f"{mod.name}: {type(exc).__name__}: {exc}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
EOF

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"
DATA="$WORK/data"
mkdir -p "$DATA"
(cd "$WORK" && exec "$VENV/bin/vmimage" serve --data-dir "$DATA" --port "$PORT") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do
    "$VENV/bin/python" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)" "$URL/versions" \
        2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "vmimage serve exited during start-up"
    sleep 0.2
done
"$VENV/bin/python" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$URL/versions" \
    || fail "vmimage serve did not answer /versions within 40 s"

qemu-img create -q -f qcow2 "$WORK/smoke.qcow2" 16M
export VMIMAGE_URL="$URL" VMIMAGE_DATA_DIR="$DATA"   # the admin password saved by serve
(cd "$WORK" && "$VENV/bin/vmimage" image create --file "$WORK/smoke.qcow2" --name smoke-image) \
    >"$WORK/create.out" 2>&1 || { cat "$WORK/create.out" >&2; fail "vmimage image create"; }
(cd "$WORK" && "$VENV/bin/vmimage" image list) >"$WORK/list.out" 2>&1 \
    || { cat "$WORK/list.out" >&2; fail "vmimage image list"; }
grep -q "smoke-image" "$WORK/list.out" || { cat "$WORK/list.out" >&2; fail "the uploaded image is not listed"; }
grep -q "active" "$WORK/list.out" || { cat "$WORK/list.out" >&2; fail "the uploaded image is not active"; }

echo "smoke-serve: base install serves and takes an upload ($(( $(date +%s) - started )) s)"
