#!/usr/bin/env bash
# The README's newcomer path, as written: `make run`, create a token with curl and
# with the CLI, then `make demo` (Prometheus agent -> nginx -> Prometheus) and query
# the pushed metrics back through the gateway with the token. Bounded: 120 s.
set -uo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 120 "$0" "$@"
fi
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
cd "$root"
tmp=$(mktemp -d /tmp/ct-readme.XXXXXX)
pids=()
cleanup() {
    # setsid made each a process-group leader: stop the whole group (make, the
    # scripts, the server, nginx, the Prometheus pair).
    for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$2"; then echo "PASS $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid make -s run LISTEN=127.0.0.1:$port DB=sqlite:$tmp/readme.db > "$tmp/run.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
check "make run serves /healthz" 'curl -sf -o /dev/null http://127.0.0.1:$port/healthz'
check "make run prints how to reach it" 'grep -q "cockpit-tokens on http://127.0.0.1:$port" "$tmp/run.log"'
check "make run serves the web console it names" 'grep -q "Web console: http://127.0.0.1:$port/console/" "$tmp/run.log" && grep -q "<title>" <<<"$(curl -sf http://127.0.0.1:$port/console/)"'

export SCW_API_URL=http://127.0.0.1:$port
SCW_SECRET_KEY=$(cat var/bootstrap-secret-key)
export SCW_SECRET_KEY
export SCW_DEFAULT_PROJECT_ID=11111111-2222-4333-8444-555555555555 SCW_DEFAULT_REGION=fr-par
body=$(curl -s -X POST "$SCW_API_URL/cockpit/v1/regions/fr-par/tokens" -H "X-Auth-Token: $SCW_SECRET_KEY" \
    -d '{"project_id":"'$SCW_DEFAULT_PROJECT_ID'","name":"my-agent","token_scopes":["write_only_metrics","read_only_metrics"]}')
secret=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_key"])' 2>/dev/null)
check "curl creates a token and shows its secret" '[ ${#secret} -eq 64 ]'
out=$(./build/cockpit-tokens token create --name cli-agent --scope write_only_logs 2>&1)
check "the CLI creates a token with the SCW_* variables" 'printf "%s" "$out" | grep -q "write_only_logs"'
check "the CLI lists both" '[ $(./build/cockpit-tokens token list -o json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"total_count\"])") -ge 2 ]'

# Free ports for every server the demo binds (it takes them from variables).
read -r gw pp ap lp tp alp mp rp <<<"$(python3 -c '
import socket
ss = [socket.socket() for _ in range(8)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
VERIFIER=127.0.0.1:$port TOKEN=$secret GATEWAY_PORT=$gw PROMETHEUS_PORT=$pp AGENT_PORT=$ap \
    LOGS_PORT=$lp TRACES_PORT=$tp ALERTS_PORT=$alp MANAGEMENT_PORT=$mp RECORDER_PORT=$rp \
    setsid make -s demo > "$tmp/demo.log" 2>&1 &
pids+=($!)
got=""
for _ in $(seq 1 60); do
    got=$(curl -s -H "X-Token: $secret" "http://127.0.0.1:$gw/api/v1/query?query=up" 2>/dev/null)
    case $got in *demo-agent*) break ;; esac
    sleep 1
done
check "make demo: metrics pushed through nginx with the token come back through it" 'case $got in *demo-agent*) true ;; *) false ;; esac'
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gw/api/v1/query?query=up")
ports_listed() { local p; for p in "$@"; do grep -q "$p" "$tmp/demo.log" || return 1; done; }
check "make demo lists every port it binds" 'ports_listed $gw $pp $ap $lp $tp $alp $mp $rp'
check "make demo says it is single-tenant" 'grep -q "SINGLE-TENANT" "$tmp/demo.log"'
check "make demo: no token -> 401 at the gateway" '[ "$code" = 401 ]'
[ $fail -eq 0 ] || { echo "--- run.log"; tail -20 "$tmp/run.log"; echo "--- demo.log"; tail -20 "$tmp/demo.log"; }
echo "readme: $pass passed, $fail failed"
[ $fail -eq 0 ]
