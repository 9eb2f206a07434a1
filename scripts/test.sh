#!/usr/bin/env bash
# Second command of the README: install everything, check the types (mypy: a failure fails
# the run, the tests still run), then run the test suite on SQLite and on PostgreSQL
# (VMIMAGE_TEST_PG, default the local server; skipped with a reason if absent) side by side,
# then the Tempest image classes against two fresh deployments side by side: one process on
# SQLite with two file stores; two processes on one PostgreSQL database (the second one the
# catalog's `image_remote`) with an S3 store (one-node Swift) as the default beside a file
# store, store weights set.
# The suites are independent (each server on its own free port and temporary data dir, each
# PostgreSQL run in a database of its own), and mostly wait on servers: in parallel they take
# about half the time. Each suite's output is printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
bash scripts/tempest.sh --install
export PATH="$PWD/.venv/bin:$PATH"

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/vmimage-tests.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT
status=0

suite() {   # suite NAME TITLE COMMAND...: run in the background, output and exit code kept
  local name=$1 title=$2; shift 2
  ( set +e; echo "== $title =="; "$@"; echo $? >"$LOGS/$name.rc" ) >"$LOGS/$name.log" 2>&1 &
}

finish() {  # finish NAME [OK_CODE]: print the suite's output, fold its exit code into status
  local name=$1 ok=${2:-0} rc
  cat "$LOGS/$name.log"
  rc=$(cat "$LOGS/$name.rc" 2>/dev/null || echo 1)
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "$ok" ]; then status=$rc; fi
}

echo "== mypy (types of vmimage/, configured in pyproject.toml) =="
.venv/bin/mypy || status=$?

suite sqlite "vmimage tests on SQLite" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
suite postgres "vmimage tests on PostgreSQL" \
  env VMIMAGE_TEST_DB=postgres .venv/bin/python -m pytest -q -p no:cacheprovider -rfEs tests/api "$@"
wait
finish sqlite
finish postgres 5           # 5: nothing collected (no PostgreSQL: skipped with a reason)

# The floors are today's figures (README): a test that starts skipping fails the run.
suite tempest_file "Tempest tempest.api.image.v2 (the classes vmimage must pass)" \
  env TEMPEST_MIN_PASSED=89 bash scripts/tempest.sh
suite tempest_pair "Tempest tempest.api.image.v2 against two processes on PostgreSQL (image_remote), an S3 default store and a weighed file store" \
  env TEMPEST_STORES=pair TEMPEST_MIN_PASSED=93 bash scripts/tempest.sh
wait
finish tempest_file
finish tempest_pair
exit $status
