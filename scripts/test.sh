#!/usr/bin/env bash
# Second command of the README: install everything, check the types (mypy: a failure fails
# the run, the tests still run), then run the test suite on SQLite and on PostgreSQL
# (VMIMAGE_TEST_PG, default the local server; skipped with a reason if absent), then the
# Tempest image classes against a fresh server: with two file stores, and with an S3 store
# (one-node Swift) as the default beside a file store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export PATH="$PWD/.venv/bin:$PATH"

status=0
echo "== mypy (types of vmimage/, configured in pyproject.toml) =="
.venv/bin/mypy || status=$?
echo "== vmimage tests on SQLite =="
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "== vmimage tests on PostgreSQL =="
VMIMAGE_TEST_DB=postgres .venv/bin/python -m pytest -q -p no:cacheprovider -rs tests/api "$@" || {
  rc=$?; [ $rc -eq 5 ] || status=$rc; }
echo "== Tempest tempest.api.image.v2 (the classes vmimage must pass) =="
bash scripts/tempest.sh || status=$?
echo "== Tempest tempest.api.image.v2 with an S3 default store and a file store =="
TEMPEST_STORES=s3 bash scripts/tempest.sh || status=$?
exit $status
