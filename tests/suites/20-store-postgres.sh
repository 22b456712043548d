#!/usr/bin/env bash
# The store contract suite (tests/store/test_store.c, unchanged) against a
# throw-away PostgreSQL cluster: the plain build, then the ASan+UBSan build when
# it exists; then the API/SDK suite and the nginx and Caddy e2e scenarios on
# PostgreSQL. Usage: 20-store-postgres.sh REPO_ROOT
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 300 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
. "$ROOT/tests/pg/pg.sh"
trap pg_cleanup EXIT
trap 'exit 143' TERM INT

pg_start
echo "postgresql cluster on 127.0.0.1:$PG_PORT ($PG_DIR)"
# Nothing here checks that a commit survives an OS crash (no test stops PostgreSQL):
# commits need not wait for the WAL flush. The contract suite's set-up deletes every
# token one commit at a time (10,000 after the bulk test); this halves the suite's
# time (plain 39 -> 18 s, ASan 98 -> 57 s on a loaded machine). As 76-race does.
pg__psql "ALTER DATABASE $PG_DB SET synchronous_commit = off"
ran=0
for build in build build-asan; do
    exe=$ROOT/$build/tests/store/test_store
    [ -x "$exe" ] || continue
    echo "# $build/tests/store/test_store on PostgreSQL"
    CT_TEST_STORE_URI=$PG_URI ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} "$exe"
    ran=$((ran + 1))
done
[ $ran -gt 0 ] || { echo "no test_store binary: build first (ninja -C build)" >&2; exit 1; }

# A database of the previous schema (dumped from the previous release) upgrades in place.
echo "# tests/store/upgrade.py on PostgreSQL"
pg__psql "CREATE DATABASE upgrade_v2 OWNER $PG_ROLE"
python3 "$ROOT/tests/store/upgrade.py" "postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/upgrade_v2"

# The black-box API suite (raw HTTP + the official JS SDK) and the nginx
# end-to-end scenario, unchanged, on the same PostgreSQL.
echo "# tests/api on PostgreSQL"
CT_TEST_DB_URI=$PG_URI CT_TEST_REPORTER=dot "$ROOT/tests/api/run.sh"
# The real clients (E2E_CLIENTS) test the gateways, not the store: 40/41 run them.
for gw in nginx caddy; do
    echo "# e2e through $gw on PostgreSQL"
    E2E_CLIENTS=0 E2E_DB_URI=$PG_URI timeout -k 10 90 bash "$ROOT/tests/e2e/gateway.sh" "$gw" "$ROOT"
done
