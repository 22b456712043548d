#!/usr/bin/env bash
# Secrets stay secret: the code compares secret material in constant time
# (tests/secrets/compare_check.sh); after creating and using tokens, no secret is
# in the SQLite files (main, -wal), the server log at debug level, or any
# response but Create's (tests/secrets/secrets.py); the same on PostgreSQL with
# a pg_dump and the cluster's log when the PostgreSQL store is built. Bounded to 120 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 120 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/lib/pg_optional.sh"
rc=0
echo "# constant-time comparisons"
bash "$ROOT/tests/secrets/compare_check.sh" "$ROOT" || rc=1
echo "# SQLite"
python3 "$ROOT/tests/secrets/secrets.py" || rc=1
if pg_optional_start; then
    echo "# PostgreSQL"
    CT_PG_DUMP=$PG_BIN/pg_dump python3 "$ROOT/tests/secrets/secrets.py" --db "$PG_URI" \
        --scan "$PG_DIR/server.log" || rc=1
fi
exit $rc
