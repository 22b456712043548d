#!/usr/bin/env bash
# Data-plane benchmark: /auth/verify with 1,000,000 tokens loaded, against nginx
# answering `return 204` in the same run, same CPU cap, interleaved rounds.
# Prints req/s, p50/p99, the ratio to nginx, RSS per token and start-up time; then
# the same server with last-use tracking on (flushing every second, the worst
# case) against a second one with it off, interleaved: the ratio on/off.
# usage: bench/verify.sh [TOKENS=1000000] [ROUNDS=5] [SECONDS_PER_ROUND=8] [CONNS=50]
source "$(dirname "$0")/lib.sh"
TOKENS=${1:-1000000} ROUNDS=${2:-5} DUR=${3:-8} CONNS=${4:-50}
DB=sqlite:$WORK/verify.db
echo "== verify benchmark: $TOKENS tokens, $ROUNDS rounds x ${DUR}s, $CONNS connections"

start_server() { # start_server PORT [LAST_USED_INTERVAL] -> sets SPID
    local port=$1
    "$BIN" serve --listen 127.0.0.1:"$port" --db "$DB" --regions fr-par --access-log off \
        --log-level notice --last-used-interval "${2:-1}" 2> "$WORK/server.log" &
    SPID=$!
    wait_http "http://127.0.0.1:$port/healthz" 120
}

PORT=$(free_port)
start_server "$PORT"
rss_empty=$(rss_kb "$SPID")
kill "$SPID"; wait "$SPID" 2>/dev/null || true

t0=$(date +%s.%N)
"$BIN" bulk-load --db "$DB" --count "$TOKENS" --projects 10000 --region fr-par \
    --scope write_only_metrics --scope read_only_metrics \
    --secrets-out "$WORK/secrets" --secrets-sample 100 2>&1 | grep -v migration
t1=$(date +%s.%N)
echo "load: $TOKENS tokens in $(python3 -c "print(f'{$t1-$t0:.1f}')") s (admin bulk path, same token code as the API)"

start_server "$PORT"
startup_ms=$(sed -n 's/.*startup_ms=\([0-9]*\).*/\1/p' "$WORK/server.log")
rss_full=$(rss_kb "$SPID")
echo "start-up with $TOKENS tokens: ${startup_ms} ms (open store + load index)"
echo "rss: empty ${rss_empty} KiB, loaded ${rss_full} KiB -> $(( (rss_full - rss_empty) * 1024 / TOKENS )) bytes per token"

NPORT=$(free_port)
start_nginx_204 "$NPORT"
NPID=$(cat "$WORK/nginx/nginx.pid")
cap_setup
cap_pid "$SPID"
cap_pid "$NPID"; for c in $(pgrep -P "$NPID"); do cap_pid "$c"; done

SECRET=$(awk 'NR==1 {print $3}' "$WORK/secrets")
H=(-H "X-Token: $SECRET" -H "X-Cockpit-Region: fr-par" -H "X-Cockpit-Data-Source: metrics"
   -H "X-Original-Method: POST" -H "X-Original-URI: /api/v1/push")
code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$PORT/auth/verify")
[ "$code" = 204 ] || { echo "verify answered $code, expected 204" >&2; exit 1; }

run_wrk "http://127.0.0.1:$PORT/auth/verify" 2 "$CONNS" "${H[@]}" >/dev/null   # warm-up
run_wrk "http://127.0.0.1:$NPORT/" 2 "$CONNS" >/dev/null
ours_rps=() ours_p50=() ours_p99=() ng_rps=() ng_p50=() ng_p99=()
for r in $(seq 1 "$ROUNDS"); do
    read -r rps p50 p99 bad < <(run_wrk "http://127.0.0.1:$NPORT/" "$DUR" "$CONNS")
    ng_rps+=("$rps"); ng_p50+=("$p50"); ng_p99+=("$p99")
    read -r rps2 p502 p992 bad2 < <(run_wrk "http://127.0.0.1:$PORT/auth/verify" "$DUR" "$CONNS" "${H[@]}")
    [ "$bad2" = 0 ] || echo "warning: $bad2 non-2xx answers from /auth/verify"
    ours_rps+=("$rps2"); ours_p50+=("$p502"); ours_p99+=("$p992")
    echo "round $r: nginx $rps req/s p50 ${p50}ms p99 ${p99}ms | verify $rps2 req/s p50 ${p502}ms p99 ${p992}ms"
done
# Latency without the quota (whose throttling pauses dominate a capped p99): both
# servers get all of core 0, wrk core 1, interleaved.
uncap_pid "$SPID"; uncap_pid "$NPID"; for c in $(pgrep -P "$NPID"); do uncap_pid "$c"; done
lo_p50=() lo_p99=() ln_p50=() ln_p99=() lo_rps=() ln_rps=()
for r in $(seq 1 3); do
    read -r rps p50 p99 bad < <(run_wrk "http://127.0.0.1:$NPORT/" "$DUR" "$CONNS")
    ln_rps+=("$rps"); ln_p50+=("$p50"); ln_p99+=("$p99")
    read -r rps2 p502 p992 bad2 < <(run_wrk "http://127.0.0.1:$PORT/auth/verify" "$DUR" "$CONNS" "${H[@]}")
    lo_rps+=("$rps2"); lo_p50+=("$p502"); lo_p99+=("$p992")
    echo "uncapped round $r: nginx $rps req/s p50 ${p50}ms p99 ${p99}ms | verify $rps2 req/s p50 ${p502}ms p99 ${p992}ms"
done
# Last-use tracking: this server records uses and writes them every second; a
# second one, on a copy of the database (one server per SQLite file), records
# none. Same cap, interleaved rounds.
ON_PID=$SPID
OPORT=$(free_port)
sqlite3 "$WORK/verify.db" ".backup '$WORK/verify-off.db'"
DB=sqlite:$WORK/verify-off.db start_server "$OPORT" 0
OFF_PID=$SPID SPID=$ON_PID
cap_pid "$ON_PID"; cap_pid "$OFF_PID"
run_wrk "http://127.0.0.1:$OPORT/auth/verify" 2 "$CONNS" "${H[@]}" >/dev/null   # warm-up
# Requests per CPU-second of the server (utime + stime over the round) is the
# figure that survives a shared machine; req/s is reported beside it.
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
per_cpu() { # per_cpu PID PORT -> "req/s requests-per-cpu-second"
    local t0 t1 rps
    t0=$(cpu_ticks "$1")
    read -r rps _ _ _ < <(run_wrk "http://127.0.0.1:$2/auth/verify" "$DUR" "$CONNS" "${H[@]}")
    t1=$(cpu_ticks "$1")
    echo "$rps $(python3 -c "print(f'{$rps * $DUR * $(getconf CLK_TCK) / max(1, $t1 - $t0):.0f}')")"
}
on_rps=() off_rps=() on_cpu=() off_cpu=()
for r in $(seq 1 "$ROUNDS"); do
    read -r rps_off cpu_off < <(per_cpu "$OFF_PID" "$OPORT")
    read -r rps_on cpu_on < <(per_cpu "$ON_PID" "$PORT")
    off_rps+=("$rps_off"); on_rps+=("$rps_on"); off_cpu+=("$cpu_off"); on_cpu+=("$cpu_on")
    echo "last-use round $r: on $rps_on req/s, $cpu_on req/cpu-s | off $rps_off req/s, $cpu_off req/cpu-s"
done
kill "$OFF_PID"; wait "$OFF_PID" 2>/dev/null || true
lu_on=$(median "${on_rps[@]}") lu_off=$(median "${off_rps[@]}")
lc_on=$(median "${on_cpu[@]}") lc_off=$(median "${off_cpu[@]}")

o=$(median "${ours_rps[@]}") n=$(median "${ng_rps[@]}")
echo
echo "RESULT verify req/s (median)      : $o"
echo "RESULT nginx return 204 (median)  : $n"
echo "RESULT ratio verify/nginx          : $(python3 -c "print(f'{$o/$n:.2f}')")"
echo "RESULT verify p50 / p99 (median)  : $(median "${ours_p50[@]}") ms / $(median "${ours_p99[@]}") ms"
echo "RESULT nginx p50 / p99 (median)   : $(median "${ng_p50[@]}") ms / $(median "${ng_p99[@]}") ms"
echo "RESULT uncapped verify p50 / p99   : $(median "${lo_p50[@]}") ms / $(median "${lo_p99[@]}") ms ($(median "${lo_rps[@]}") req/s)"
echo "RESULT uncapped nginx p50 / p99    : $(median "${ln_p50[@]}") ms / $(median "${ln_p99[@]}") ms ($(median "${ln_rps[@]}") req/s)"
echo "RESULT last use on / off (median) : $lu_on / $lu_off req/s, ratio $(python3 -c "print(f'{$lu_on/$lu_off:.3f}')")"
echo "RESULT last use on / off, req/cpu-s: $lc_on / $lc_off, ratio $(python3 -c "print(f'{$lc_on/$lc_off:.3f}')")"
echo "RESULT bytes per token (RSS)       : $(( (rss_full - rss_empty) * 1024 / TOKENS ))"
echo "RESULT start-up with $TOKENS tokens: ${startup_ms} ms"
