#!/usr/bin/env bash
# Several stateless nodes on one PostgreSQL: change propagation through the feed,
# behaviour while the database is down, and recovery. Usage: 50-multinode-postgres.sh REPO_ROOT
# Bounded to 120 s; everything listens on 127.0.0.1 only.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 240 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
. "$ROOT/tests/pg/pg.sh"
. "$ROOT/tests/pg/nodes.sh"

FAILED=0
cleanup() {
    local rc=$?
    if [ $rc -ne 0 ] || [ $FAILED -ne 0 ]; then
        for n in a b c; do [ -f "$NODE_DIR/$n.log" ] && { echo "--- node $n log (tail)"; tail -15 "$NODE_DIR/$n.log"; }; done
    fi
    nodes_cleanup
    pg_cleanup
}
trap cleanup EXIT
trap 'exit 143' TERM INT

ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=1; }
check() { # check DESCRIPTION COMMAND...: runs it, reports, and keeps going
    local d=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$d ${out:+($out)}"; else fail "$d: $out"; fi
}

P=11111111-2222-4333-8444-555555555555 # a project of our own
S=read_only_metrics

wait_verify() { $CT_HTTP wait-verify "$(node_url "$1")" "$2" fr-par $S "$3" "$4"; }
create_on() { $CT_HTTP create "$(node_url "$1")" "$NODE_KEY" fr-par $P $S; }
delete_on() { $CT_HTTP delete "$(node_url "$1")" "$NODE_KEY" fr-par "$2"; }
# expect_call NODE METHOD PATH WANT_STATUS MAX_MS [KEY]: status, a JSON body, in time
expect_call() {
    local out st ms body
    out=$($CT_HTTP call "$(node_url "$1")" "$2" "$3" "${6:-$NODE_KEY}" 10)
    read -r st ms body <<<"$out"
    [ "$st" = "$4" ] || { echo "got HTTP $st: $body"; return 1; }
    [ "$ms" -le "$5" ] || { echo "answered in $ms ms (limit $5)"; return 1; }
    python3 -c 'import json,sys; json.loads(sys.argv[1])' "$body" || { echo "body is not JSON: $body"; return 1; }
    echo "$st in $ms ms"
}

echo "# cluster and three nodes (c fails closed after 2 s without the store)"
pg_start
node_start a
node_start b
node_start c --max-staleness 2
for n in a b c; do node_wait $n; done
ok "nodes a b c healthy on one database (concurrent start, one schema migration)"

echo "# propagation"
read -r T1 S1 < <(create_on a)
check "token created on a verifies on b within 1 s" wait_verify b "$S1" 204 1
check "... and on c within 1 s" wait_verify c "$S1" 204 1
read -r T2 S2 < <(create_on a)
wait_verify b "$S2" 204 1 >/dev/null
check "token deleted on b" delete_on b "$T2"
check "... is rejected on a within 1 s" wait_verify a "$S2" 401 1
check "... and on c within 1 s" wait_verify c "$S2" 401 1

echo "# node restart"
node_stop b
read -r _ S3 < <(create_on a)
node_start b
node_wait b
check "token created while b was down verifies on restarted b" wait_verify b "$S3" 204 1

echo "# outage: PostgreSQL stopped (immediate)"
pg_stop immediate
T_DOWN=$SECONDS
check "a: verify of a live token still 204 (last known index)" wait_verify a "$S1" 204 1
check "b: verify of a live token still 204" wait_verify b "$S1" 204 1
check "a: deleted token still 401" wait_verify a "$S2" 401 1
check "a: token list answers 503 with a JSON body" expect_call a GET "/cockpit/v1/regions/fr-par/tokens" 503 5000
check "b: token get answers 503 with a JSON body" expect_call b GET "/cockpit/v1/regions/fr-par/tokens/$T1" 503 5000
check "a: /healthz answers 503" expect_call a GET /healthz 503 5000
check "c: verify fails closed (503) once the store is down > 2 s" wait_verify c "$S1" 503 6
[ $((SECONDS - T_DOWN)) -ge 2 ] && ok "c failed closed only after 2 s" || fail "c failed closed too early"
check "a: verify still 204 after 2 s (default max-staleness)" wait_verify a "$S1" 204 1
sleep 1
check "b: management still 503 while down (no hang)" expect_call b GET "/cockpit/v1/regions/fr-par/tokens" 503 5000

echo "# recovery: PostgreSQL restarted"
pg_resume
for n in a b c; do
    check "$n: /healthz back to 200 within 5 s" bash -c "
        for i in \$(seq 100); do
            [ \"\$(curl -s -m 2 -o /dev/null -w '%{http_code}' $(node_url $n)/healthz)\" = 200 ] && exit 0
            sleep 0.05
        done; exit 1"
done
check "c: verify serves again after reconnect + resync" wait_verify c "$S1" 204 3
read -r T4 S4 < <(create_on a)
check "token created on a after recovery verifies on b within 1 s" wait_verify b "$S4" 204 1
check "... and on c within 1 s" wait_verify c "$S4" 204 1
check "token deleted before the outage stays deleted on a" wait_verify a "$S2" 401 1
check "... on b" wait_verify b "$S2" 401 1
check "... on c" wait_verify c "$S2" 401 1
check "delete on c after recovery" delete_on c "$T4"
check "... rejected on a within 1 s" wait_verify a "$S4" 401 1
check "management on b answers 200 again" expect_call b GET "/cockpit/v1/regions/fr-par/tokens?project_id=$P" 200 2000
for n in a b c; do
    grep -q 'store connection lost' "$NODE_DIR/$n.log" && grep -q 'store connection is up' "$NODE_DIR/$n.log" &&
        ok "$n logged the loss and the return of the store" || fail "$n: connectivity not logged"
done

echo "# clean shutdown"
for n in a b c; do node_stop $n; done
if grep -lE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$NODE_DIR"/*.log; then
    fail "sanitizer reports in the node logs above"
else
    ok "nodes stopped; no sanitizer report in their logs"
fi

[ $FAILED -eq 0 ] && echo "50-multinode-postgres: all checks passed" || echo "50-multinode-postgres: FAILED"
exit $FAILED
