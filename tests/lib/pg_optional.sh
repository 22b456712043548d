# shellcheck shell=bash
# Optional PostgreSQL for a suite (source this file; needs CT_BIN and ROOT).
#
#   pg_optional_start   starts a throw-away cluster (tests/pg/pg.sh) when the
#                       PostgreSQL store is in the tree and in CT_BIN's build, and
#                       tests/pg/pg.sh exists; returns 1 (and says why) otherwise.
#                       Sets PG_URI PG_DIR PG_BIN; the cluster is removed at exit.
# CT_PG=0 skips PostgreSQL.

pg_optional_start() {
    if [ "${CT_PG:-1}" = 0 ]; then
        echo "# PostgreSQL: skipped (CT_PG=0)"
        return 1
    fi
    if [ ! -f "$ROOT/src/store/postgres.c" ] || [ ! -f "$ROOT/tests/pg/pg.sh" ]; then
        echo "# PostgreSQL: skipped (src/store/postgres.c or tests/pg/pg.sh missing)"
        return 1
    fi
    if ! grep -q 'postgres_feed.c' "$(dirname "$CT_BIN")/compile_commands.json" 2>/dev/null; then
        echo "# PostgreSQL: skipped ($CT_BIN was built without the PostgreSQL store)"
        return 1
    fi
    . "$ROOT/tests/pg/pg.sh"
    trap 'pg_cleanup' EXIT
    trap 'exit 143' TERM INT
    pg_start
}
