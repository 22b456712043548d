#!/usr/bin/env bash
# Two builds compared in the same seconds: both servers run at once on core 0,
# each with its own wrk on core 1 and its own empty database, so a shared, noisy
# host slows both alike; prints each one's server CPU µs per completed request
# (/proc/PID/stat) and the ratio, per round. An A/A run of one binary reads
# 0.99-1.03. MODE: create (32 clients, durable creates) or get (8 clients, Get).
# PRELOAD=FILE PKEY=KEY start both from a copy of a database (made with
# `cockpit-tokens bulk-load`) whose API key is KEY.
# usage: bench/pair.sh MODE SECONDS ROUNDS BIN_A BIN_B
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode} DUR=${2:?seconds} ROUNDS=${3:?rounds} A=${4:?binary A} B=${5:?binary B}
HZ=$(getconf CLK_TCK)
start() { # start BIN TAG -> sets PID_TAG PORT_TAG KEY_TAG ID_TAG
  local bin=$1 tag=$2 data=$WORK/pair-$2
  mkdir -p $data; rm -f $data/p.db*
  [ -n "${PRELOAD:-}" ] && cp $PRELOAD $data/p.db
  local key=${PKEY:-$(cat /proc/sys/kernel/random/uuid)} port=$(free_port)
  COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$key "$bin" serve --listen 127.0.0.1:$port \
    --db sqlite:$data/p.db --regions fr-par --access-log off --log-level warning \
    --max-tokens-per-project 0 --workers 32 2> $WORK/server-$tag.log &
  local pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  taskset -a -p -c 0 $pid >/dev/null
  local base=http://127.0.0.1:$port/cockpit/v1/regions/fr-par
  local tok=$(curl -sf -H "X-Auth-Token: $key" -H 'Content-Type: application/json' \
    -d '{"project_id":"11111111-2222-4333-8444-555555555555","name":"bench","token_scopes":["read_only_metrics"]}' "$base/tokens")
  local id=$(printf '%s' "$tok" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  create_lua "$key" > $WORK/create-$tag.lua
  printf 'wrk.headers["X-Auth-Token"] = "%s"\n' "$key" > $WORK/get-$tag.lua
  eval "PID_$tag=$pid BASE_$tag=$base KEY_$tag=$key ID_$tag=$id"
}
start "$A" A; start "$B" B
args() { local t=$1; local base=BASE_$t key=KEY_$t id=ID_$t
  if [ $MODE = create ]; then echo "-c32 -s $WORK/create-$t.lua ${!base}/tokens"
  elif [ $MODE = get ]; then echo "-c8 -s $WORK/get-$t.lua ${!base}/tokens/${!id}"
  else echo "unknown mode $MODE" >&2; exit 2; fi; }
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
for r in $(seq 1 $ROUNDS); do
  a0=$(ticks $PID_A); b0=$(ticks $PID_B)
  taskset -c 1 wrk -t1 -d${DUR}s $(args A) > $WORK/wa.out & WA=$!
  taskset -c 1 wrk -t1 -d${DUR}s $(args B) > $WORK/wb.out & WB=$!
  wait $WA $WB; grep -h Non-2xx $WORK/wa.out $WORK/wb.out || true
  a1=$(ticks $PID_A); b1=$(ticks $PID_B)
  na=$(awk '/requests in/ {print $1}' $WORK/wa.out); nb=$(awk '/requests in/ {print $1}' $WORK/wb.out)
  awk -v a=$((a1-a0)) -v b=$((b1-b0)) -v na=$na -v nb=$nb -v hz=$HZ 'BEGIN{ca=a*1e6/hz/na; cb=b*1e6/hz/nb; printf "round: A %.1f us (%d req)  B %.1f us (%d req)  B/A %.3f\n", ca, na, cb, nb, cb/ca}'
done
kill $PID_A $PID_B; wait 2>/dev/null
