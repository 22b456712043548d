#!/usr/bin/env bash
# The store contract suite (test_store, unchanged) on a throw-away PostgreSQL
# cluster: registered as `meson test --suite store-postgres` when the build was
# set up with -Dpg_tests=true (tests/suites/20-store-postgres.sh runs the same).
#   usage: pg_contract.sh PATH/TO/test_store
set -euo pipefail
exe=${1:?usage: $0 PATH/TO/test_store}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/pg/pg.sh"
trap pg_cleanup EXIT
trap 'exit 143' TERM INT
pg_start
echo "postgresql cluster on 127.0.0.1:$PG_PORT"
CT_TEST_STORE_URI=$PG_URI "$exe"
