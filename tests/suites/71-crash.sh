#!/usr/bin/env bash
# Crash consistency: concurrent creates and deletes, kill -9 of the server at 5
# random moments, restart, and the store compared with what clients saw
# acknowledged (tests/crash/crash.py), on SQLite and, when built, PostgreSQL
# (whose cluster is also crashed under load). Bounded to 150 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 150 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
exec "$ROOT/tests/crash/run.sh" "$ROOT" "${CT_CRASH_KILLS:-5}" 8
