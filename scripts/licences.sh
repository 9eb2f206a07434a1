#!/usr/bin/env bash
# The licences of the runtime dependencies as the base install pulls them in (no test extras):
# pyproject.toml's dependencies into a throwaway venv, then scripts/licences.py run by its
# python lists them and fails on a copyleft or unknown one. About half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmimage-licences.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" scripts/licences.py --requirements >"$WORK/requirements.txt"
"$PYTHON" -m venv "$WORK/venv"
# --no-compile: the check reads metadata only; packaging parses it (only what the requirements
# pull in is counted, so naming it here adds nothing to the list)
"$WORK/venv/bin/pip" install -q --no-compile --disable-pip-version-check -r "$WORK/requirements.txt" packaging \
    >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; echo "licences: pip install failed" >&2; exit 1; }
"$WORK/venv/bin/python" scripts/licences.py
