#!/usr/bin/env bash
# Runs tests/crash/crash.py against SQLite and, when the PostgreSQL store is built
# and tests/pg/pg.sh exists, against a throw-away PostgreSQL cluster (with the
# database itself crashed and restarted at every other kill point).
#
#   tests/crash/run.sh REPO_ROOT KILLS [CLIENTS]
#
# CT_BIN picks the binary (default build/cockpit-tokens). CT_CRASH_DB=URI runs
# against that database only (sqlite:PATH or postgresql://...; password through
# PGPASSWORD) instead; CT_CRASH_PG=0 skips PostgreSQL. CT_CRASH_SEED fixes the seed.
set -euo pipefail
ROOT=$(cd "${1:?usage: $0 REPO_ROOT KILLS [CLIENTS]}" && pwd)
KILLS=${2:?kills}
CLIENTS=${3:-8}
BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
CRASH="python3 $ROOT/tests/crash/crash.py --bin $BIN --kills $KILLS --clients $CLIENTS"
[ -n "${CT_CRASH_SEED:-}" ] && CRASH="$CRASH --seed $CT_CRASH_SEED"
WORK=$(mktemp -d /tmp/ct-crash.XXXXXX)
PG_STARTED=0
cleanup() {
    local rc=$?
    [ $PG_STARTED = 1 ] && pg_cleanup
    if [ $rc -ne 0 ]; then
        for f in "$WORK"/*/server-*.log; do
            [ -f "$f" ] && { echo "--- $f (tail)"; tail -5 "$f"; }
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if [ -n "${CT_CRASH_DB:-}" ]; then
    mkdir -p "$WORK/given"
    $CRASH --db "$CT_CRASH_DB" --workdir "$WORK/given"
    exit
fi

echo "# SQLite"
mkdir -p "$WORK/sqlite"
$CRASH --db "sqlite:$WORK/sqlite/t.db"

has_pg() {
    [ -f "$ROOT/src/store/postgres.c" ] && [ -f "$ROOT/tests/pg/pg.sh" ] || return 1
    # Built with the PostgreSQL store? (the build directory next to the binary says)
    grep -q 'postgres_feed.c' "$(dirname "$BIN")/compile_commands.json" 2>/dev/null
}
if [ "${CT_CRASH_PG:-1}" = 0 ]; then
    echo "# PostgreSQL: skipped (CT_CRASH_PG=0)"
elif ! has_pg; then
    echo "# PostgreSQL: skipped (src/store/postgres.c, tests/pg/pg.sh or a PostgreSQL build missing)"
else
    echo "# PostgreSQL"
    . "$ROOT/tests/pg/pg.sh"
    pg_start
    PG_STARTED=1
    export CT_PG_DIR=$PG_DIR CT_PG_PORT=$PG_PORT
    mkdir -p "$WORK/pg"
    $CRASH --db "$PG_URI" --workdir "$WORK/pg" \
        --db-crash-cmd ". '$ROOT/tests/pg/pg.sh'; PG_DIR=\$CT_PG_DIR PG_PORT=\$CT_PG_PORT; pg_stop immediate && pg_resume"
fi
