#!/usr/bin/env bash
# The long crash-consistency run: the same checks as tests/suites/71-crash.sh
# with more kill points and more clients (tests/crash/crash.py).
#
#   bench/crash.sh [KILLS] [CLIENTS]          default 40 kill points, 16 clients
#   CT_CRASH_DB=postgresql://... bench/crash.sh   against a given database only
#   CT_CRASH_SEED=N bench/crash.sh                replay a run
#
# Bounded to 30 minutes.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 1800 "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "$ROOT/tests/crash/run.sh" "$ROOT" "${1:-40}" "${2:-16}"
