#!/usr/bin/env bash
# Regenerates the upgrade fixtures of one release: builds that release from git
# (git archive, so the working tree is untouched), lets its own binary write a
# SQLite database and a PostgreSQL database (tests/upgrade/generate.py: API keys,
# tokens, deletions, and what that release answered), and stores them under
# tests/upgrade/REV/:
#
#   sqlite.db         the SQLite file as the release left it after a clean stop
#   postgresql.sql    pg_dump --no-owner --no-privileges (plain SQL) of its database
#   sqlite.json, postgresql.json
#                     every token (id, secret, project, region, scopes, live or
#                     deleted), the API keys, and the release's answers
#
# The secrets in the JSON files are throw-away fixture data: they open nothing
# but these fixture databases, and are committed on purpose.
#
# usage: tests/upgrade/generate.sh [REV]    (default 27fbf86)
# Then add REV to REVS in tests/suites/52-upgrade.sh. Needs the build dependencies
# (scripts/deps.sh test) and PostgreSQL 15 (tests/pg/pg.sh). About 1 minute.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REV=${1:-27fbf86}
OUT=$ROOT/tests/upgrade/$REV
WORK=$(mktemp -d /tmp/ct-upgrade-gen.XXXXXX)
. "$ROOT/tests/pg/pg.sh"
cleanup() { pg_cleanup; rm -rf "$WORK"; }
trap cleanup EXIT

echo "# building $REV in $WORK/src"
mkdir -p "$WORK/src"
git -C "$ROOT" archive "$REV" | tar -x -C "$WORK/src"
(cd "$WORK/src" && meson setup build --buildtype=release >/dev/null && ninja -C build cockpit-tokens >/dev/null)
OLD=$WORK/src/build/cockpit-tokens
"$OLD" version

mkdir -p "$OUT"
echo "# sqlite"
python3 "$ROOT/tests/upgrade/generate.py" "$OLD" "sqlite:$WORK/sqlite.db" "$OUT/sqlite.json"
[ ! -e "$WORK/sqlite.db-wal" ] || [ ! -s "$WORK/sqlite.db-wal" ] || {
    echo "the release left a non-empty WAL: the fixture would not be one file" >&2
    exit 1
}
cp "$WORK/sqlite.db" "$OUT/sqlite.db"

echo "# postgresql"
pg_start
python3 "$ROOT/tests/upgrade/generate.py" "$OLD" "$PG_URI" "$OUT/postgresql.json"
pg__as_owner pg_dump -h "$PG_DIR" -p "$PG_PORT" -U postgres --no-owner --no-privileges \
    -d "$PG_DB" >"$OUT/postgresql.sql"
echo "# wrote $(ls "$OUT" | tr '\n' ' ')"
