#!/usr/bin/env bash
# Upgrades lose nothing: databases written by earlier releases (committed
# fixtures, tests/upgrade/REV/, made by tests/upgrade/generate.sh with that
# release's own binary) open with this build. On a copy of each fixture,
# tests/upgrade/check.py starts two servers at once (migrations run once, under
# the lock), checks the schema version advanced, every token verifies, gets and
# lists as the old release answered, deleted tokens and API keys stay refused,
# the audit log is kept, and a restart migrates nothing. SQLite always; PostgreSQL
# (the dump restored into a fresh database) when the store is built. Bounded to
# 120 s (about 15 s idle).
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 120 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/lib/pg_optional.sh"
REVS="27fbf86" # releases with a fixture; a new one: tests/upgrade/generate.sh REV
rc=0
for rev in $REVS; do
    echo "# $rev on SQLite"
    python3 "$ROOT/tests/upgrade/check.py" "$ROOT/tests/upgrade/$rev" sqlite || rc=1
done
if pg_optional_start; then
    for rev in $REVS; do
        echo "# $rev on PostgreSQL"
        pg__psql "CREATE DATABASE upgrade_$rev OWNER $PG_ROLE"
        python3 "$ROOT/tests/upgrade/check.py" "$ROOT/tests/upgrade/$rev" \
            "postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/upgrade_$rev" || rc=1
    done
fi
exit $rc
