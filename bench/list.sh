#!/usr/bin/env bash
# List latency: a 100-item page in a project holding 100k tokens, in a store
# holding 1M tokens. Prints p50/p99 for the first page and for random pages in
# each order, with and without a scope filter.
# usage: bench/list.sh [TOTAL=1000000] [IN_PROJECT=100000] [SECONDS=8]
source "$(dirname "$0")/lib.sh"
TOTAL=${1:-1000000} INP=${2:-100000} DUR=${3:-8}
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
wait_http "http://127.0.0.1:$PORT/healthz" 60
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
    read -r rps p50 p99 bad < <(run_wrk "http://127.0.0.1:$PORT/" "$DUR" 1 -s "$WORK/list.lua")
    printf 'RESULT %-42s p50 %7.2f ms  p99 %7.2f ms  (%s req/s)\n' "$1" "$p50" "$p99" "$rps"
}
case_run "first page, created_at_asc" "" 0
case_run "every page in order (SDK .all()), created_at" "" 2
case_run "every page in order, name_asc" "&order_by=name_asc" 2
case_run "random page, created_at_asc" "" 1
case_run "random page, created_at_desc" "&order_by=created_at_desc" 1
case_run "random page, name_asc" "&order_by=name_asc" 1
case_run "first page, scope filter (any of 1)" "&token_scopes=write_only_logs" 0
case_run "random page, scope filter" "&token_scopes=write_only_logs" 1
