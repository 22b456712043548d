#!/usr/bin/env bash
# Concurrency stress of the nginx module: two nginx workers decide from the shared
# index while the service creates and deletes tokens (enough churn to make the
# service rebuild the file several times). tests/e2e/module_stress.py drives it and
# checks every answer: a stable token is never refused, a new token is allowed on
# its first request after the create answered, a deleted token is refused from the
# first request after the delete answered, and both workers served. Then it fails
# the index closed in every way the module must refuse to vouch for (writer hung,
# stopped, file corrupt or truncated: 503) and restarts the service on the same file
# (nginx follows without a reload).
# Last, a token created with an expiry a few seconds ahead is refused once it passes.
#   usage: tests/e2e/module-stress.sh REPO_ROOT
#   CT_BIN, CT_NGINX_MODULE as for gateway.sh; STRESS_CYCLES (default 2000: enough tombstones for a rebuild).
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
# shellcheck source=tests/e2e/lib.sh
. "$root/tests/e2e/lib.sh"
e2e_init module-stress
for v in $(compgen -e); do
    case $v in COCKPIT_TOKENS_* | SCW_*) unset "$v" ;; esac
done
bin=${CT_BIN:-$root/build/cockpit-tokens}
module_so=${CT_NGINX_MODULE:-$root/build-nginx/ngx_http_cockpit_tokens_module.so}
[ -x "$bin" ] || e2e_fail "setup: $bin is not built"
[ -f "$module_so" ] || e2e_fail "setup: $module_so is not built (make nginx-module)"
read -r p_ct p_gw <<<"$(e2e_ports 2)"
[ -n "$p_gw" ] || e2e_fail "setup: could not find free ports"
d=$E2E_DIR
admin_key=$(cat /proc/sys/kernel/random/uuid)

COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$admin_key e2e_start cockpit-tokens "$bin" serve \
    --listen "127.0.0.1:$p_ct" --db "sqlite:$d/tokens.db" --regions fr-par \
    --shared-index "$d/index" --access-log off --max-tokens-per-project 0

# A static file behind the module: the access phase runs, no upstream is needed.
mkdir -p "$d/nginx" "$d/www/api/v1"
echo ok >"$d/www/api/v1/query"
chmod -R a+rX "$d/www"
cat >"$d/nginx/nginx.conf" <<EOF
load_module $module_so;
worker_processes 2;
error_log $d/nginx/error.log notice;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $d/nginx/client_body;
    proxy_temp_path $d/nginx/proxy;
    fastcgi_temp_path $d/nginx/fastcgi;
    uwsgi_temp_path $d/nginx/uwsgi;
    scgi_temp_path $d/nginx/scgi;
    cockpit_tokens_index $d/index;
    cockpit_tokens_region fr-par;
    cockpit_tokens_stale_after 2s;
    server {
        listen 127.0.0.1:$p_gw;
        keepalive_requests 100000;
        location / {
            cockpit_tokens metrics;
            root $d/www;
            default_type text/plain;
            add_header X-Worker \$pid always;
            add_header X-Tenant \$cockpit_tokens_project always;
        }
    }
}
EOF
nginx_args=(-p "$d/nginx/" -e "$d/nginx/error.log" -c "$d/nginx/nginx.conf"
    -g "daemon off; pid $d/nginx/nginx.pid;")
nginx -t -q "${nginx_args[@]}" >"$d/nginx-t.log" 2>&1 ||
    { cat "$d/nginx-t.log" >&2; e2e_fail "setup: nginx -t"; }
e2e_wait_http cockpit-tokens "http://127.0.0.1:$p_ct/healthz" 10
e2e_start nginx nginx "${nginx_args[@]}"

python3 "$root/tests/e2e/module_stress.py" "127.0.0.1:$p_ct" "127.0.0.1:$p_gw" "$admin_key" \
    "$d/index" "${STRESS_CYCLES:-2000}" "$d/stable.secret"
rc=$?
if [ $rc -ne 0 ]; then
    e2e_log_tail cockpit-tokens
    tail -n 20 "$d/nginx/error.log" >&2
    exit $rc
fi

# ---- fail closed, then recover ----------------------------------------------------------
passed=0
failed=0
(umask 077 && printf 'X-Token: %s\n' "$(cat "$d/stable.secret")" >"$d/stable.header")
status() { curl -s -o /dev/null -w '%{http_code}' -m 3 -H @"$d/stable.header" "http://127.0.0.1:$p_gw/api/v1/query"; }
expect() { # expect NAME WANT [SECONDS]: the stable token's status becomes WANT within SECONDS
    local name=$1 want=$2 deadline=$((SECONDS + ${3:-4})) got
    while :; do
        got=$(status)
        [ "$got" = "$want" ] && break
        [ $SECONDS -ge $deadline ] && break
        sleep 0.2
    done
    if [ "$got" = "$want" ]; then
        echo "PASS module-stress: $name -> $want"
        passed=$((passed + 1))
    else
        echo "FAIL module-stress: $name -> $want: got $got"
        failed=$((failed + 1))
    fi
}
count() { grep -c "cannot vouch ($1)" "$d/nginx/error.log"; }
logged() { # logged REASON BEFORE: within 4 s (asking meanwhile), a worker logs once more
    # (more than BEFORE times) that it cannot vouch for REASON
    local deadline=$((SECONDS + 4))
    until [ "$(count "$1")" -gt "$2" ] || [ $SECONDS -ge $deadline ]; do
        status >/dev/null
        sleep 0.2
    done
    if [ "$(count "$1")" -gt "$2" ]; then
        echo "PASS module-stress: nginx logged \"cannot vouch ($1)\""
        passed=$((passed + 1))
    else
        echo "FAIL module-stress: nginx did not log \"cannot vouch ($1)\""
        failed=$((failed + 1))
    fi
}
ct_pid=${E2E_PIDS[0]}
expect "control: stable token" 200
n=$(count stale)
kill -STOP "$ct_pid"
expect "service hung (no heartbeat for > stale_after 2s)" 503
logged stale "$n"
kill -CONT "$ct_pid"
expect "service resumed" 200
cp "$d/index" "$d/index.copy"
kill -TERM "$ct_pid"
wait "$ct_pid" 2>/dev/null
expect "service stopped (file left, heartbeat ages out)" 503
# The stopped writer's file is stale already: each bad file must be found corrupt.
n=$(count corrupt)
head -c 8192 /dev/urandom >"$d/index.junk" && mv "$d/index.junk" "$d/index"
logged corrupt "$n"
expect "garbage file" 503
n=$(count stale)
cp "$d/index.copy" "$d/index.ok" && mv "$d/index.ok" "$d/index"
logged stale "$n" # a good but unstamped file again: stale, no longer corrupt
n=$(count corrupt)
head -c 100000 "$d/index.copy" >"$d/index.cut" && mv "$d/index.cut" "$d/index"
logged corrupt "$n"
expect "truncated file" 503
COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$admin_key e2e_start cockpit-tokens-2 "$bin" serve \
    --listen "127.0.0.1:$p_ct" --db "sqlite:$d/tokens.db" --regions fr-par \
    --shared-index "$d/index" --access-log off --max-tokens-per-project 0
e2e_wait_http cockpit-tokens-2 "http://127.0.0.1:$p_ct/healthz" 10
expect "service restarted on the same path: nginx follows without a reload" 200

# ---- expiry: refused by the module from its expiry on, without any write ------------
exp=$(date -u -d "@$(($(date +%s) + 6))" +%Y-%m-%dT%H:%M:%SZ)
(umask 077 && printf 'X-Auth-Token: %s\n' "$admin_key" >"$d/admin.header")
resp=$(curl -s -m 5 -X POST -H @"$d/admin.header" -H 'Content-Type: application/json' \
    -d "{\"project_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"name\":\"expiring\",\"token_scopes\":[\"read_only_metrics\"],\"expires_at\":\"$exp\"}" \
    "http://127.0.0.1:$p_ct/cockpit/v1/regions/fr-par/tokens")
secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_key"])' "$resp" 2>/dev/null)
if [ -n "$secret" ]; then
    (umask 077 && printf 'X-Token: %s\n' "$secret" >"$d/stable.header")
    expect "token expiring in 5-6 s, before its expiry" 200 1
    expect "the same token once expired (401 from the module, no write)" 401 10
else
    echo "FAIL module-stress: creating an expiring token: $resp"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] || { tail -n 20 "$d/nginx/error.log" >&2; exit 1; }
