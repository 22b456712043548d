#!/usr/bin/env bash
# List latency: a 100-item page in a project holding 100k tokens, in a store
# holding 500k tokens. Prints p50/p99 for the first page, for pages in order, and
# for random pages in each order, with and without a scope filter; then random
# pages while another client creates a token every 0.2 s (each write retires the
# continuation cursors, so those pages skip from the start, as OFFSET does).
# usage: bench/list.sh [TOTAL=500000] [IN_PROJECT=100000] [SECONDS=8]
source "$(dirname "$0")/lib.sh"
TOTAL=${1:-500000} INP=${2:-100000} DUR=${3:-8}
DATA=${BENCH_DATA_DIR:-$BENCH_ROOT/var/bench}
mkdir -p "$DATA"
DB=$DATA/list-$TOTAL-$INP.db
P=11111111-2222-4333-8444-555555555555
if [ ! -s "$DB" ]; then
    echo "loading $((TOTAL - INP)) tokens over 10000 projects + $INP in project $P ..."
    "$BIN" bulk-load --db sqlite:"$DB" --count $((TOTAL - INP)) --projects 10000 \
        --scope read_only_metrics --region fr-par 2>&1 | grep -v migration
    "$BIN" bulk-load --db sqlite:"$DB" --count "$INP" --project "$P" \
        --scope read_only_metrics --scope write_only_logs --region fr-par 2>&1 | grep -v migration
fi
KEY=$(cat /proc/sys/kernel/random/uuid)
PORT=$(free_port)
COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$KEY "$BIN" serve --listen 127.0.0.1:"$PORT" \
    --db sqlite:"$DB" --regions fr-par --access-log off --log-level warning 2> "$WORK/server.log" &
SERVER=$!
wait_http "http://127.0.0.1:$PORT/healthz" 60
# The server's CPU time in clock ticks (user + system): latency percentiles on a
# shared machine measure its neighbours too, CPU per request does not.
cpu_ticks() { awk '{print $14 + $15}' /proc/"$SERVER"/stat; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
BASE="/cockpit/v1/regions/fr-par/tokens?project_id=$P&page_size=100"
total=$(curl -s -H "X-Auth-Token: $KEY" "http://127.0.0.1:$PORT$BASE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_count"])')
pages=$(( (total + 99) / 100 ))
echo "== list latency: project holds $total tokens ($pages pages of 100), store holds $TOTAL; 1 client, ${DUR}s per case"
case_run() { # case_run LABEL QUERY-SUFFIX MODE (0 first page, 1 random page, 2 pages in order)
    cat > "$WORK/list.lua" <<LUA
wrk.headers["X-Auth-Token"] = "$KEY"
math.randomseed(42)
local n = 0
request = function()
    local q = "$BASE$2"
    if $3 == 1 then q = q .. "&page=" .. math.random(1, $pages) end
    if $3 == 2 then q = q .. "&page=" .. (n % $pages) + 1; n = n + 1 end
    return wrk.format("GET", q)
end
LUA
    local t0; t0=$(cpu_ticks)
    read -r rps p50 p99 bad < <(run_wrk "http://127.0.0.1:$PORT/" "$DUR" 1 -s "$WORK/list.lua")
    local cpu_us; cpu_us=$(( ($(cpu_ticks) - t0) * TICK_US / (rps * DUR > 0 ? rps * DUR : 1) ))
    printf 'RESULT %-42s p50 %7.2f ms  p99 %7.2f ms  (%s req/s, %s µs CPU/req)\n' \
        "$1" "$p50" "$p99" "$rps" "$cpu_us"
}
case_run "first page, created_at_asc" "" 0
case_run "every page in order (SDK .all()), created_at" "" 2
case_run "every page in order, name_asc" "&order_by=name_asc" 2
case_run "random page, created_at_asc" "" 1
case_run "random page, created_at_desc" "&order_by=created_at_desc" 1
case_run "random page, name_asc" "&order_by=name_asc" 1
case_run "first page, scope filter (any of 1)" "&token_scopes=write_only_logs" 0
case_run "random page, scope filter" "&token_scopes=write_only_logs" 1
writer() { # a create every 0.2 s, in another project, until killed
    while :; do
        curl -s -o /dev/null -X POST -H "X-Auth-Token: $KEY" -H "Content-Type: application/json" \
            -d '{"project_id":"99999999-2222-4333-8444-555555555555","name":"w","token_scopes":["read_only_logs"]}' \
            "http://127.0.0.1:$PORT/cockpit/v1/regions/fr-par/tokens"
        sleep 0.2
    done
}
writer &
WRITER=$!
case_run "random page, created_at_asc, writes at 5/s" "" 1
kill "$WRITER" 2>/dev/null; wait "$WRITER" 2>/dev/null || true
