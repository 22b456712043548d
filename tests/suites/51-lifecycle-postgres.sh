#!/usr/bin/env bash
# Token lifecycle on two nodes sharing one PostgreSQL (tests/pg/lifecycle.py): a
# rotation on one node ends the old token on the other through the change feed
# (timed), the grace holds there too, last use keeps the latest of both nodes
# (GREATEST), a restart keeps expiry and last use. Bounded to 90 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 90 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/pg/pg.sh"
trap pg_cleanup EXIT
trap 'exit 143' TERM INT
pg_start
python3 "$ROOT/tests/pg/lifecycle.py" "$PG_URI"
