#!/usr/bin/env bash
# The audit log end to end (tests/audit/audit.py): management actions and denied
# attempts recorded with time, actor, action, resource, project, region, client
# and outcome; `audit list` filters; survives restarts and kill -9; holds no
# secret. On SQLite, and on PostgreSQL when that store is built. Bounded to 90 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 90 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/lib/pg_optional.sh"
rc=0
echo "# SQLite"
python3 "$ROOT/tests/audit/audit.py" || rc=1
if pg_optional_start; then
    echo "# PostgreSQL"
    python3 "$ROOT/tests/audit/audit.py" --db "$PG_URI" || rc=1
fi
exit $rc
