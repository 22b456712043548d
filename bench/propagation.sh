#!/usr/bin/env bash
# Multi-node propagation on PostgreSQL, and /auth/verify throughput PG vs SQLite.
#
#   1. one throw-away PostgreSQL cluster, 3 nodes on it;
#   2. ROUNDS rounds: create a token on node (round % 3), poll /auth/verify on the
#      other two (keep-alive, no pause) until both allow it; delete it, poll until
#      both reject it. Delays are counted from the writer's HTTP answer.
#   3. verify req/s of one node on PostgreSQL and one on SQLite, same kind of
#      token, server on core 0 (cgroup-capped when possible), wrk on core 1,
#      RUNS interleaved runs of SECS seconds each; medians and the ratio.
# Goal: propagation p99 <= 100 ms. Everything binds to 127.0.0.1 and stops by itself.
#   ROUNDS=200 RUNS=3 SECS=5 CONNS=50 bench/propagation.sh
set -euo pipefail
ROUNDS=${ROUNDS:-200}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-50}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$BENCH_ROOT/tests/pg/pg.sh"
. "$BENCH_ROOT/tests/pg/nodes.sh"
bench_cleanup() {
    nodes_cleanup
    pg_cleanup
    cleanup # lib.sh: its own processes, cgroup, work dir
}
trap bench_cleanup EXIT
trap 'exit 143' TERM INT

echo "== propagation: 3 nodes, one PostgreSQL, $ROUNDS rounds"
pg_start
for n in a b c; do node_start $n --log-level warning --access-log off; done
for n in a b c; do node_wait $n; done
$CT_HTTP propagate "$NODE_KEY" "$ROUNDS" "$(node_url a)" "$(node_url b)" "$(node_url c)"

echo
echo "== /auth/verify throughput, one node: PostgreSQL vs SQLite ($RUNS x ${SECS}s, $CONNS connections)"
node_stop b
node_stop c
PG_URI_SAVED=$PG_URI
PG_URI="sqlite:$WORK/verify.db" node_start s --log-level warning --access-log off
PG_URI=$PG_URI_SAVED
node_wait s
P=33333333-4444-4555-8666-777777777777
read -r _ SECRET_PG < <($CT_HTTP create "$(node_url a)" "$NODE_KEY" fr-par $P read_only_metrics)
read -r _ SECRET_SQ < <($CT_HTTP create "$(node_url s)" "$NODE_KEY" fr-par $P read_only_metrics)
cap_setup
cap_pid "${NODE_PID[a]}"
cap_pid "${NODE_PID[s]}"
pg_rps=() sq_rps=()
for i in $(seq "$RUNS"); do
    for which in pg sq; do
        if [ $which = pg ]; then url=$(node_url a) secret=$SECRET_PG; else url=$(node_url s) secret=$SECRET_SQ; fi
        read -r rps p50 p99 non2xx < <(run_wrk "$url/auth/verify" "$SECS" "$CONNS" \
            -H "X-Token: $secret" -H "X-Cockpit-Scope: read_only_metrics" -H "X-Cockpit-Region: fr-par")
        [ "$non2xx" = 0 ] || echo "warning: $which run $i had $non2xx non-2xx answers" >&2
        printf '  run %d %-10s %8s req/s  p50 %s ms  p99 %s ms\n' "$i" \
            "$([ $which = pg ] && echo postgresql || echo sqlite)" "$rps" "$p50" "$p99"
        if [ $which = pg ]; then pg_rps+=("$rps"); else sq_rps+=("$rps"); fi
    done
done
pg_med=$(median "${pg_rps[@]}")
sq_med=$(median "${sq_rps[@]}")
printf 'verify req/s (median): postgresql %.0f  sqlite %.0f  ratio pg/sqlite %.2f\n' \
    "$pg_med" "$sq_med" "$(python3 -c "print($pg_med / $sq_med)")"
