#!/usr/bin/env bash
# Races on shared state (docs/SECURITY.md): (1) creators and deleters run
# concurrently against one server and every acknowledged delete is checked
# against /auth/verify (tests/race/race.py), on SQLite (tmpfs) and on a
# throw-away PostgreSQL cluster (local apply vs the LISTEN change feed);
# (2) /auth/verify load over 4,000 tokens with 4 event threads on the ASan+UBSan
# build (tests/race/verify_threads.py); (3) Get, Create and List, whose threads
# keep authenticated keys, against `apikey delete` from the CLI and token
# deletes (tests/race/key_revoke.py). Bounded to 120 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 120 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/lib/pg_optional.sh"
rc=0
echo "# create/delete race, SQLite"
python3 "$ROOT/tests/race/race.py" --rounds 2 --seconds 4 --event-threads 2 || rc=1
if pg_optional_start; then
    # Commits without waiting for the disk: more of them per second, so more
    # interleavings (ordering, not durability, is under test here).
    pg__psql "ALTER DATABASE $PG_DB SET synchronous_commit = off"
    echo "# create/delete race, PostgreSQL (local apply vs change feed)"
    python3 "$ROOT/tests/race/race.py" --db "$PG_URI" --label postgresql --rounds 2 \
        --seconds 5 --creators 4 --deleters 8 || rc=1
fi
echo "# Get, Create and List against key and token revocation, 2 event threads"
python3 "$ROOT/tests/race/key_revoke.py" --rounds 3 --event-threads 2 || rc=1
asan=$ROOT/build-asan/cockpit-tokens
if [ -x "$asan" ]; then
    echo "# /auth/verify load, 4 event threads, ASan+UBSan"
    CT_BIN=$asan ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        python3 "$ROOT/tests/race/verify_threads.py" --event-threads 4 || rc=1
else
    echo "FAIL - no ASan build ($asan): build-asan first"
    rc=1
fi
exit $rc
