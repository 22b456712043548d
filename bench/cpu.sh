#!/usr/bin/env bash
# Server CPU per request: user + system time of the server process
# (/proc/PID/stat utime + stime) before and after a wrk run, divided by the
# requests wrk completed. For /healthz, Get (GET /tokens/{id}), /auth/verify (the
# data plane, for scale) and durable creates (POST /tokens, 32 clients, group
# commit); and the naive reference on the same disk: one process doing one
# fsync'd create (token + audit row, the server's schema) per transaction
# (bench/naive_sqlite.c, its own getrusage). CPU time, unlike req/s, is little
# blurred by other load on the machine; the spread of the rounds is printed.
# usage: bench/cpu.sh [ROUNDS=3] [SECONDS=4]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3} DUR=${2:-4}
DATA=${BENCH_DATA_DIR:-$BENCH_ROOT/var/bench} # on the same disk as a real deployment
mkdir -p "$DATA"
rm -f "$DATA"/cpu*.db* "$DATA"/naive-cpu*.db*
cc -O2 -o "$WORK/naive" "$BENCH_ROOT/bench/naive_sqlite.c" -lsqlite3
KEY=$(cat /proc/sys/kernel/random/uuid)
PORT=$(free_port)
HZ=$(getconf CLK_TCK)
COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$KEY "$BIN" serve --listen 127.0.0.1:"$PORT" \
    --db sqlite:"$DATA/cpu.db" --regions fr-par --access-log off --log-level warning \
    --max-tokens-per-project 0 --workers 32 2> "$WORK/server.log" &
PID=$!
wait_http "http://127.0.0.1:$PORT/healthz"
taskset -a -p -c 0 "$PID" >/dev/null # wrk runs on core 1
BASE=http://127.0.0.1:$PORT/cockpit/v1/regions/fr-par
TOK=$(curl -sf -H "X-Auth-Token: $KEY" -H 'Content-Type: application/json' \
    -d '{"project_id":"11111111-2222-4333-8444-555555555555","name":"bench","token_scopes":["read_only_metrics"]}' \
    "$BASE/tokens")
ID=$(printf '%s' "$TOK" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
SECRET=$(printf '%s' "$TOK" | sed -n 's/.*"secret_key":"\([^"]*\)".*/\1/p')
create_lua "$KEY" > "$WORK/create.lua"

server_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# cpu_per_req CONNS URL [wrk args] -> server CPU us per completed request
cpu_per_req() {
    local conns=$1 url=$2; shift 2
    local t0 t1 n bad
    t0=$(server_ticks)
    taskset -c 1 wrk -t1 -c"$conns" -d"${DUR}s" "$@" "$url" > "$WORK/wrk.out" 2>&1
    t1=$(server_ticks)
    n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    bad=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    [ -z "$bad" ] || echo "warning: $bad non-2xx answers from $url" >&2
    awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f\n", d * 1e6 / hz / n }' 
}

echo "== server CPU us per request, $ROUNDS rounds x ${DUR}s (server on core 0, wrk on core 1)"
declare -A fig
for r in $(seq 1 "$ROUNDS"); do
    fig[healthz]+=" $(cpu_per_req 8 "http://127.0.0.1:$PORT/healthz")"
    fig[get]+=" $(cpu_per_req 8 "$BASE/tokens/$ID" -H "X-Auth-Token: $KEY")"
    fig[verify]+=" $(cpu_per_req 8 "http://127.0.0.1:$PORT/auth/verify" -H "X-Token: $SECRET" \
        -H "X-Cockpit-Scope: read_only_metrics")"
    fig[create]+=" $(cpu_per_req 32 "$BASE/tokens" -s "$WORK/create.lua")"
    # One process, one create per transaction and fsync, in a database the server created.
    schema_copy "$DATA/cpu.db" "$DATA/naive-cpu-$r.db"
    fig[naive]+=" $("$WORK/naive" "$DATA/naive-cpu-$r.db" "$DUR" create | awk '{print $4}')"
    echo "round $r: healthz ${fig[healthz]##* } | get ${fig[get]##* } | verify ${fig[verify]##* }" \
        "| create ${fig[create]##* } | naive fsync-per-create ${fig[naive]##* } (us CPU)"
done
echo
for k in healthz get verify create naive; do
    # shellcheck disable=SC2086 # the figures are words on purpose
    printf 'RESULT %-30s: median %6s us  (rounds:%s)\n' "$k CPU per request" \
        "$(median ${fig[$k]})" "${fig[$k]}"
done
# shellcheck disable=SC2086
echo "RESULT naive / create CPU ratio           : $(awk -v a="$(median ${fig[naive]})" \
    -v b="$(median ${fig[create]})" 'BEGIN { printf "%.2f\n", a / b }')"
rm -f "$DATA"/cpu*.db* "$DATA"/naive-cpu*.db*
