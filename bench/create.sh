#!/usr/bin/env bash
# Durable creates/s: POST /tokens through the real server with 32 concurrent
# clients (group commit), against a naive one-row-per-fsync SQLite loop measured
# in the same run on the same disk. Interleaved rounds, medians; also the
# server's CPU per create (user + system time of its process over the round,
# /proc/PID/stat, divided by the creates answered).
# usage: bench/create.sh [ROUNDS=3] [SECONDS=8] [CLIENTS=32]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3} DUR=${2:-8} CLIENTS=${3:-32}
DATA=${BENCH_DATA_DIR:-$BENCH_ROOT/var/bench}   # on the same disk as a real deployment
mkdir -p "$DATA"; rm -f "$DATA"/create*.db* "$DATA"/naive*.db*
cc -O2 -o "$WORK/naive" "$BENCH_ROOT/bench/naive_sqlite.c" -lsqlite3
KEY=$(cat /proc/sys/kernel/random/uuid)
PORT=$(free_port)
COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$KEY "$BIN" serve --listen 127.0.0.1:"$PORT" \
    --db sqlite:"$DATA/create.db" --regions fr-par --access-log off --log-level warning \
    --max-tokens-per-project 0 --workers 32 2> "$WORK/server.log" &
PID=$!
HZ=$(getconf CLK_TCK)
server_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
wait_http "http://127.0.0.1:$PORT/healthz"
create_lua "$KEY" > "$WORK/create.lua"
echo "== durable creates/s: $CLIENTS clients through the API vs naive SQLite loop, $ROUNDS x ${DUR}s"
ours=() naive=() naive_full=() cpu=()
for r in $(seq 1 "$ROUNDS"); do
    n=$("$WORK/naive" "$DATA/naive-$r.db" "$DUR" | awk '{print $2}')
    # The same durable work as one API create (server schema and triggers, token +
    # audit row), one create per transaction: a database the server itself created.
    schema_copy "$DATA/create.db" "$DATA/naive-full-$r.db"
    nf=$("$WORK/naive" "$DATA/naive-full-$r.db" "$DUR" create | awk '{print $2}')
    naive_full+=("$nf")
    t0=$(server_ticks)
    read -r rps p50 p99 bad < <(run_wrk "http://127.0.0.1:$PORT/cockpit/v1/regions/fr-par/tokens" \
        "$DUR" "$CLIENTS" -s "$WORK/create.lua")
    t1=$(server_ticks)
    [ "$bad" = 0 ] || echo "warning: $bad non-2xx answers"
    done_n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    c=$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$done_n" 'BEGIN { printf "%.1f\n", d * 1e6 / hz / n }')
    ours+=("$rps"); naive+=("$n"); cpu+=("$c")
    echo "round $r: naive token-row loop $n/s | naive create loop $nf/s | API with group commit $rps creates/s (p50 ${p50}ms p99 ${p99}ms, server CPU ${c} us per create)"
done
o=$(median "${ours[@]}") n=$(median "${naive[@]}") nf=$(median "${naive_full[@]}")
stored=$(curl -s -H "X-Auth-Token: $KEY" "http://127.0.0.1:$PORT/cockpit/v1/regions/fr-par/tokens?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_count"])')
echo
echo "RESULT API creates/s (median)      : $o"
echo "RESULT naive fsync-per-row (median): $n   (one token row per transaction)"
echo "RESULT naive fsync-per-create      : $nf   (token + audit row, server schema)"
echo "RESULT ratio vs fsync-per-row      : $(python3 -c "print(f'{$o/$n:.2f}')")"
echo "RESULT ratio vs fsync-per-create   : $(python3 -c "print(f'{$o/$nf:.2f}')")"
echo "RESULT server CPU per create (median): $(median "${cpu[@]}") us  (rounds: ${cpu[*]})"
echo "RESULT tokens stored by the server : $stored"
rm -f "$DATA"/create*.db* "$DATA"/naive*.db*
