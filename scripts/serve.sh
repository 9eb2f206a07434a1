#!/usr/bin/env bash
# First command of the README: install everything, then run vmimage on 127.0.0.1:9292
# with SQLite and a local file store under ./data (flags are passed to `vmimage serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/vmimage serve "$@"
