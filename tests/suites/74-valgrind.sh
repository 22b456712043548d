#!/usr/bin/env bash
# Valgrind (memcheck, full leak check) over the cmocka unit suites and the store
# contract suite (SQLite; PostgreSQL too when built), and over the real server for
# one short session of every route (tests/valgrind/serve_session.py). Any error
# or definite leak fails. Uses the release build (build/). Bounded to 240 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 420 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
BUILD=${CT_VALGRIND_BUILD:-$ROOT/build}
export CT_BIN=${CT_BIN:-$BUILD/cockpit-tokens}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
. "$ROOT/tests/lib/pg_optional.sh"
VG='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible'
# ASan is not in this build; make sure no sanitizer option leaks in from make test.
unset ASAN_OPTIONS UBSAN_OPTIONS
# Load tests that only measure a bound skip themselves here (minutes under valgrind).
export CT_UNDER_VALGRIND=1
rc=0
echo "# unit and store (SQLite) suites under valgrind"
meson test -C "$BUILD" --no-rebuild --print-errorlogs --suite unit --suite store \
    --wrap="$VG" -t 4 || rc=1
echo "# the server under valgrind"
python3 "$ROOT/tests/valgrind/serve_session.py" || rc=1
if pg_optional_start; then
    echo "# store suite on PostgreSQL under valgrind"
    CT_TEST_STORE_URI=$PG_URI $VG -q "$BUILD/tests/store/test_store" || rc=1
fi
exit $rc
