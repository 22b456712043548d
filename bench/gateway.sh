#!/usr/bin/env bash
# Gateway benchmark: the same nginx serving the same small static file three ways,
# in the same run, interleaved round by round, same CPU placement:
#   none          no authentication at all (the ceiling)
#   auth_request  deploy/nginx's way: a keep-alive subrequest to /auth/verify
#   module        deploy/nginx-module's way: the module over the shared index
# nginx (one worker) and cockpit-tokens share core 0 under one CPU quota (so the
# verifier's CPU counts against auth_request, as it does on a real host); wrk runs on
# core 1. Then the same rounds pinned but without the quota, for latency. Each
# request carries a token as X-Token and asks GET /api/v1/query (read_only_metrics).
# Besides req/s and latency, each round counts the CPU time nginx and cockpit-tokens
# used (/proc/PID/stat): requests per CPU-second, and the CPU microseconds per request
# of nginx's worker and of cockpit-tokens apart, are the cost figures that stay
# meaningful when other work shares the machine.
# Each round runs the three once, in an order rotated from round to round (none,
# auth_request, module; then auth_request, module, none; ...), so neither a slow drift
# of the machine nor the position in a round favours one contender; the figures are
# medians over the rounds, and the ratios to none are printed with the goals.
# Goal: module >= 0.90 x none in req/s, p99 <= 1.2 x none.
# usage: bench/gateway.sh [TOKENS=100000] [ROUNDS=3] [SECONDS_PER_ROUND=5] [CONNS=50]
#   CT_NGINX_MODULE=... (default build-nginx/ngx_http_cockpit_tokens_module.so)
# About 2 minutes with the defaults (2 x 3 rounds x 3 contenders x 5 s, and set-up).
# Bounded: it stops itself (and everything it started) after 75 s of set-up plus the
# time its rounds need (171 s with the defaults).
if [ -z "${CT_BENCH_BOUNDED:-}" ]; then
    bound=$((75 + 2 * (${2:-3} * 3 * ${3:-5} + 3)))
    CT_BENCH_BOUNDED=1 exec timeout -k $((${3:-5} + 15)) "$bound" bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
trap 'exit 143' TERM INT # lib.sh's cleanup (EXIT) stops nginx and the server
TOKENS=${1:-100000} ROUNDS=${2:-3} DUR=${3:-5} CONNS=${4:-50}
MODULE=${CT_NGINX_MODULE:-$BENCH_ROOT/build-nginx/ngx_http_cockpit_tokens_module.so}
[ -f "$MODULE" ] || { echo "build the module first: make nginx-module" >&2; exit 1; }
DB=sqlite:$WORK/gateway.db
echo "== gateway benchmark: $TOKENS tokens, $ROUNDS rounds x ${DUR}s, $CONNS connections"

"$BIN" bulk-load --db "$DB" --count "$TOKENS" --projects 1000 --region fr-par \
    --scope read_only_metrics --secrets-out "$WORK/secrets" --secrets-sample 10 2>&1 |
    grep -v migration
CT_PORT=$(free_port)
"$BIN" serve --listen 127.0.0.1:"$CT_PORT" --db "$DB" --regions fr-par --access-log off \
    --log-level notice --shared-index "$WORK/index" 2>"$WORK/server.log" &
SPID=$!
wait_http "http://127.0.0.1:$CT_PORT/healthz" 120

P_NONE=$(free_port) P_AR=$(free_port) P_MOD=$(free_port)
dir=$WORK/nginx
mkdir -p "$dir/logs" "$dir/www/api/v1"
echo '{"status":"success"}' >"$dir/www/api/v1/query"
chmod -R a+rX "$WORK"
cat >"$dir/nginx.conf" <<CONF
load_module $MODULE;
worker_processes 1;
error_log $dir/logs/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    cockpit_tokens_index $WORK/index;
    cockpit_tokens_region fr-par;
    upstream cockpit_tokens { server 127.0.0.1:$CT_PORT; keepalive 64; }
    # Every contender adds one response header, so only the decision differs.
    server { listen 127.0.0.1:$P_NONE; root $dir/www; add_header X-Tenant none; }
    server {
        listen 127.0.0.1:$P_AR;
        root $dir/www;
        location = /_cockpit_verify {
            internal;
            proxy_pass http://cockpit_tokens/auth/verify;
            proxy_http_version 1.1;
            proxy_pass_request_body off;
            proxy_pass_request_headers off;
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Cockpit-Data-Source metrics;
            proxy_set_header X-Cockpit-Region fr-par;
            proxy_set_header X-Token \$http_x_token;
        }
        location / {
            auth_request /_cockpit_verify;
            auth_request_set \$cockpit_tenant \$upstream_http_x_scope_orgid;
            add_header X-Tenant \$cockpit_tenant;
        }
    }
    server {
        listen 127.0.0.1:$P_MOD;
        root $dir/www;
        location / {
            cockpit_tokens metrics;
            add_header X-Tenant \$cockpit_tokens_project;
        }
    }
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
wait_http "http://127.0.0.1:$P_NONE/api/v1/query"
NPID=$(cat "$dir/nginx.pid")

SECRET=$(awk 'NR==1 {print $3}' "$WORK/secrets")
H=(-H "X-Token: $SECRET")
for p in $P_NONE $P_AR $P_MOD; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$p/api/v1/query")
    [ "$code" = 200 ] || { echo "port $p answered $code, expected 200" >&2; curl -s "${H[@]}" "http://127.0.0.1:$p/api/v1/query" >&2; tail -5 "$dir/logs/error.log" >&2; exit 1; }
done
WRONG=${SECRET%?}A
[ "$WRONG" != "$SECRET" ] || WRONG=${SECRET%?}B
for p in $P_AR $P_MOD; do # and a wrong token is refused, or the comparison is void
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Token: $WRONG" "http://127.0.0.1:$p/api/v1/query")
    [ "$code" = 401 ] || { echo "port $p let a wrong token through ($code)" >&2; exit 1; }
done

cap_setup
cap_pid "$SPID"
cap_pid "$NPID"; for c in $(pgrep -P "$NPID"); do cap_pid "$c"; done

declare -A rps p50 p99 eff ngx_us svc_us
CLK_TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime (all threads)
WPID=$(pgrep -P "$NPID")                              # nginx's one worker
per_req() { # per_req TICKS REQ/S: CPU microseconds per request over a round
    awk -v t="$1" -v a="$2" -v d="$DUR" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t * 1e6 / hz / (a * d > 0 ? a * d : 1) }'
}
names=(none auth_request module)
declare -A port=([none]=$P_NONE [auth_request]=$P_AR [module]=$P_MOD)
rounds() { # rounds LABEL N: interleaved rounds, results appended to rps/p50/p99[LABEL:name]
    local label=$1 n=$2 r i name line
    for name in "${names[@]}"; do run_wrk "http://127.0.0.1:${port[$name]}/api/v1/query" 1 "$CONNS" "${H[@]}" >/dev/null; done
    for r in $(seq 1 "$n"); do
        line="$label round $r:"
        for i in 0 1 2; do
            name=${names[$(((r - 1 + i) % 3))]}
            w0=$(ticks "$WPID") s0=$(ticks "$SPID")
            read -r a b c bad < <(run_wrk "http://127.0.0.1:${port[$name]}/api/v1/query" "$DUR" "$CONNS" "${H[@]}")
            w1=$(ticks "$WPID") s1=$(ticks "$SPID")
            [ "$bad" = 0 ] || echo "warning: $bad non-2xx answers from $name"
            t=$((w1 - w0 + s1 - s0))
            e=$(awk -v a="$a" -v d="$DUR" -v hz="$CLK_TCK" -v t="$t" \
                'BEGIN { printf "%.0f", a * d * hz / (t > 1 ? t : 1) }')
            nu=$(per_req $((w1 - w0)) "$a") su=$(per_req $((s1 - s0)) "$a")
            rps[$label:$name]+="$a " p50[$label:$name]+="$b " p99[$label:$name]+="$c " eff[$label:$name]+="$e "
            ngx_us[$label:$name]+="$nu " svc_us[$label:$name]+="$su "
            line+=" $name $a req/s p99 ${c}ms $e req/cpu-s ${nu}+${su} us/req |"
        done
        echo "${line% |}"
    done
}
rounds capped "$ROUNDS"
# Latency without the quota (its throttling pauses dominate a capped p99).
uncap_pid "$SPID"; uncap_pid "$NPID"; for c in $(pgrep -P "$NPID"); do uncap_pid "$c"; done
rounds pinned "$ROUNDS"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
for label in capped pinned; do
    for name in "${names[@]}"; do
        # shellcheck disable=SC2086
        printf 'RESULT %-6s %-12s : %7.0f req/s  p50 %s ms  p99 %s ms  %7.0f req/cpu-s  CPU/req nginx %s us + cockpit-tokens %s us\n' \
            "$label" "$name" "$(median ${rps[$label:$name]})" "$(median ${p50[$label:$name]})" \
            "$(median ${p99[$label:$name]})" "$(median ${eff[$label:$name]})" \
            "$(median ${ngx_us[$label:$name]})" "$(median ${svc_us[$label:$name]})"
    done
    # shellcheck disable=SC2086
    {
        n_rps=$(median ${rps[$label:none]}) n_p99=$(median ${p99[$label:none]})
        n_eff=$(median ${eff[$label:none]})
        cpu() { awk -v a="$(median ${ngx_us[$label:$1]})" -v b="$(median ${svc_us[$label:$1]})" 'BEGIN { print a + b }'; }
        for name in module auth_request; do
            printf 'RESULT %-6s %-12s / none : req/s %s  p99 %s  req/cpu-s %s  CPU/req %s (+%s us)\n' \
                "$label" "$name" "$(ratio "$(median ${rps[$label:$name]})" "$n_rps")" \
                "$(ratio "$(median ${p99[$label:$name]})" "$n_p99")" \
                "$(ratio "$(median ${eff[$label:$name]})" "$n_eff")" \
                "$(ratio "$(cpu "$name")" "$(cpu none)")" \
                "$(awk -v a="$(cpu "$name")" -v b="$(cpu none)" 'BEGIN { printf "%.2f", a - b }')"
        done
        goal=$(awk -v r="$(ratio "$(median ${rps[$label:module]})" "$n_rps")" \
            -v l="$(ratio "$(median ${p99[$label:module]})" "$n_p99")" 'BEGIN {
                printf "req/s %.2f (goal >= 0.90: %s), p99 %.2f (goal <= 1.20: %s)", r,
                    (r >= 0.90 ? "met" : "not met"), l, (l <= 1.20 ? "met" : "not met") }')
        echo "GOAL   $label module / none: $goal"
    }
done
