#!/usr/bin/env bash
# End-to-end: cockpit-tokens behind a real gateway, in front of real data sources.
#   usage: tests/e2e/gateway.sh nginx|nginx-module|caddy REPO_ROOT
# Starts, on free 127.0.0.1 ports in a temp dir: cockpit-tokens (fr-par,nl-ams),
# Prometheus 2.42 (remote-write receiver), Alertmanager, the gateway rendered from
# deploy/<gateway>/ unchanged (nginx-module: deploy/nginx-module/, two workers deciding
# in the module over the service's shared index), recorder.mjs standing in for Loki and
# Tempo, and a Prometheus agent that remote-writes through the gateway (token as
# Bearer and as Basic password); for nginx and caddy also the agents of clients.sh
# (vmagent, vmalert, a remote-reading, alerting Prometheus, syslog-ng). Then runs
# checks.mjs, and clients.mjs (amtool, promtool, the OpenTelemetry exporter, and what
# the agents delivered). A trap stops everything; the suite scripts bound the whole
# run with timeout(1).
#   E2E_KEEP=1   keep the temp dir (logs, rendered configs) after a passing run
#   CT_BIN=...   the binary (default <root>/build/cockpit-tokens)
#   CT_NGINX_MODULE=...  the module (default <root>/build-nginx/ngx_http_cockpit_tokens_module.so)
#   E2E_CLIENTS=0        skip the real clients of clients.sh / clients.mjs
set -uo pipefail

gw=${1:?usage: $0 nginx|nginx-module|caddy REPO_ROOT}
root=$(cd "${2:?usage: $0 nginx|nginx-module|caddy REPO_ROOT}" && pwd) || exit 2
case $gw in nginx | nginx-module | caddy) ;; *) echo "usage: $0 nginx|nginx-module|caddy REPO_ROOT" >&2; exit 2 ;; esac
gw_cmd=${gw%-module}
module_so=${CT_NGINX_MODULE:-$root/build-nginx/ngx_http_cockpit_tokens_module.so}

# shellcheck source=tests/e2e/lib.sh
. "$root/tests/e2e/lib.sh"
t_start=$SECONDS
e2e_init "$gw"

# Hermetic: no configuration leaks in from the caller's environment.
for v in $(compgen -e); do
    case $v in COCKPIT_TOKENS_* | SCW_*) unset "$v" ;; esac
done

bin=${CT_BIN:-$root/build/cockpit-tokens}
[ -x "$bin" ] || e2e_fail "setup: $bin is not built (ninja -C $root/build)"
[ "$gw" != nginx-module ] || [ -f "$module_so" ] || e2e_fail "setup: $module_so is not built (make nginx-module)"
for cmd in node curl prometheus prometheus-alertmanager "$gw_cmd"; do
    command -v "$cmd" >/dev/null || e2e_fail "setup: $cmd is not installed (scripts/deps.sh test)"
done

read -r p_ct p_prom p_am p_agent p_metrics p_logs p_traces p_alerts p_rec p_mgmt p_store <<<"$(e2e_ports 11)"
[ -n "$p_store" ] || e2e_fail "setup: could not find free ports"
uuid() { cat /proc/sys/kernel/random/uuid; }
admin_key=$(uuid)
project_a=$(uuid)
project_b=$(uuid)
d=$E2E_DIR

# ---- cockpit-tokens ------------------------------------------------------------------
export COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$admin_key
# E2E_DB_URI runs the same scenario on another store (e.g. PostgreSQL); projects are
# fresh UUIDs, so a shared database does not disturb the checks.
ct_args=()
[ "$gw" = nginx-module ] && ct_args=(--shared-index "$d/index")
e2e_start cockpit-tokens "$bin" serve --listen "127.0.0.1:$p_ct" --db "${E2E_DB_URI:-sqlite:$d/tokens.db}" \
    --regions fr-par,nl-ams --access-log all --trusted-proxies 127.0.0.1 "${ct_args[@]}"
unset COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY

# ---- Prometheus (receiver) and Alertmanager ----------------------------------------------
printf 'global:\n  scrape_interval: 1m\n' >"$d/prometheus.yml"
e2e_start prometheus prometheus --config.file="$d/prometheus.yml" \
    --storage.tsdb.path="$d/prometheus-data" --web.listen-address="127.0.0.1:$p_prom" \
    --web.enable-remote-write-receiver --log.level=warn

cat >"$d/alertmanager.yml" <<'EOF'
route:
  receiver: blackhole
receivers:
  - name: blackhole
EOF
e2e_start alertmanager prometheus-alertmanager --config.file="$d/alertmanager.yml" \
    --storage.path="$d/alertmanager-data" --web.listen-address="127.0.0.1:$p_am" \
    --cluster.listen-address= --log.level=warn

# Loki and Tempo stand-in: echoes like the templates' recording upstream, and keeps
# what it received for the real clients' checks (clients.mjs).
e2e_start store node "$root/tests/e2e/recorder.mjs" "$p_store"

# ---- the gateway, from deploy/ unchanged ----------------------------------------------
export VERIFIER_ADDR=127.0.0.1:$p_ct REGION=fr-par
export PROMETHEUS_ADDR=127.0.0.1:$p_prom ALERTMANAGER_ADDR=127.0.0.1:$p_am
export LOKI_ADDR=127.0.0.1:$p_store TEMPO_ADDR=127.0.0.1:$p_store
if [ "$gw_cmd" = nginx ]; then
    export METRICS_LISTEN=127.0.0.1:$p_metrics LOGS_LISTEN=127.0.0.1:$p_logs
    export TRACES_LISTEN=127.0.0.1:$p_traces ALERTMANAGER_LISTEN=127.0.0.1:$p_alerts
    export RECORDER_LISTEN=127.0.0.1:$p_rec MANAGEMENT_LISTEN=127.0.0.1:$p_mgmt
    mkdir -p "$d/nginx"
    export SHARED_INDEX=$d/index
    "$root/deploy/render.sh" "$root/deploy/$gw/cockpit-tokens.conf.template" \
        >"$d/nginx/cockpit-tokens.conf" || e2e_fail "setup: rendering the $gw template"
    # What a distribution's nginx.conf provides around conf.d/*.conf, here in the temp dir
    # (and, for the module, modules-enabled/: its load_module line).
    load=
    workers=1
    [ "$gw" = nginx-module ] && load="load_module $module_so;" && workers=2
    cat >"$d/nginx/nginx.conf" <<EOF
$load
worker_processes $workers;
error_log $d/nginx/error.log notice;
events { worker_connections 256; }
http {
    access_log $d/nginx/access.log;
    client_body_temp_path $d/nginx/client_body;
    proxy_temp_path $d/nginx/proxy;
    fastcgi_temp_path $d/nginx/fastcgi;
    uwsgi_temp_path $d/nginx/uwsgi;
    scgi_temp_path $d/nginx/scgi;
    include $d/nginx/cockpit-tokens.conf;
}
EOF
    nginx_args=(-p "$d/nginx/" -e "$d/nginx/error.log" -c "$d/nginx/nginx.conf"
        -g "daemon off; pid $d/nginx/nginx.pid;")
    nginx -t -q "${nginx_args[@]}" >"$d/nginx-t.log" 2>&1 ||
        { cat "$d/nginx-t.log" >&2; e2e_fail "setup: nginx -t rejects the rendered template"; }
    e2e_start nginx nginx "${nginx_args[@]}"
else
    export CADDY_ADMIN=off BIND_ADDR=127.0.0.1
    export METRICS_PORT=$p_metrics LOGS_PORT=$p_logs TRACES_PORT=$p_traces
    export ALERTMANAGER_PORT=$p_alerts RECORDER_PORT=$p_rec MANAGEMENT_PORT=$p_mgmt
    "$root/deploy/render.sh" "$root/deploy/caddy/Caddyfile.template" \
        >"$d/Caddyfile" || e2e_fail "setup: rendering the Caddy template"
    mkdir -p "$d/caddy-home"
    e2e_start caddy env HOME="$d/caddy-home" XDG_DATA_HOME="$d/caddy-home/data" \
        XDG_CONFIG_HOME="$d/caddy-home/config" caddy run --config "$d/Caddyfile" --adapter caddyfile
fi

e2e_wait_http cockpit-tokens "http://127.0.0.1:$p_ct/healthz" 10
# cockpit-tokens binds with SO_REUSEPORT: a second server that raced us to the same
# port would share it silently and answer half the requests. Refuse to run then.
if command -v ss >/dev/null &&
    [ "$(ss -Hltn "sport = :$p_ct" 2>/dev/null | wc -l)" -gt 1 ]; then
    e2e_fail "setup: another process also listens on 127.0.0.1:$p_ct (SO_REUSEPORT); rerun"
fi
e2e_wait_http prometheus "http://127.0.0.1:$p_prom/-/ready" 20
e2e_wait_http alertmanager "http://127.0.0.1:$p_am/-/ready" 20
e2e_wait_http "$gw_cmd" "http://127.0.0.1:$p_rec/" 10
e2e_wait_http store "http://127.0.0.1:$p_store/_e2e/records" 10
echo "e2e: $gw and its data sources are up after $((SECONDS - t_start)) s (logs in $d)"

# ---- the real sender: a Prometheus agent, started once its token exists ------------------
(umask 077 && printf 'X-Auth-Token: %s\n' "$admin_key" >"$d/admin.header")
resp=$(curl -sS -m 5 -X POST -H @"$d/admin.header" -H 'Content-Type: application/json' \
    -d "{\"project_id\":\"$project_a\",\"name\":\"e2e-agent\",\"token_scopes\":[\"write_only_metrics\"]}" \
    "http://127.0.0.1:$p_ct/cockpit/v1/regions/fr-par/tokens")
agent_secret=$(node -e 'const j = JSON.parse(process.argv[1]); if (!j.secret_key) process.exit(1);
    console.log(j.secret_key)' "$resp" 2>/dev/null) || e2e_fail "setup: creating the agent token: $resp"

(
    umask 077
    cat >"$d/agent.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: e2e-agent
    static_configs:
      - targets: ["127.0.0.1:$p_agent"]
EOF
    # Only bearer and basic: Debian's Prometheus 2.42.0+ds drops remote_write
    # `headers` (prometheus/prometheus#13030), so a real agent cannot send X-Token or
    # X-Scope-OrgID here; checks.mjs covers those two forms with its own remote-write
    # requests, accepted by the real Prometheus.
    for form in bearer basic; do
        cat <<EOF
  - url: http://127.0.0.1:$p_metrics/api/v1/write
    name: $form
    remote_timeout: 5s
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}
    metadata_config: {send: false}
    write_relabel_configs:
      - {target_label: form, replacement: $form}
EOF
        case $form in
        bearer) printf '    authorization: {credentials: "%s"}\n' "$agent_secret" ;;
        basic) printf '    basic_auth: {username: agent, password: "%s"}\n' "$agent_secret" ;;
        esac
    done | { echo "remote_write:"; cat; } >>"$d/agent.yml"
)
e2e_start agent prometheus --enable-feature=agent --config.file="$d/agent.yml" \
    --storage.agent.path="$d/agent-data" --web.listen-address="127.0.0.1:$p_agent" \
    --storage.remote.flush-deadline=1s --log.level=warn

# ---- the agents people run (clients.sh), through nginx and Caddy ------------------------
# E2E_CLIENTS=0 skips them; the module's scenario (nginx-module) runs without them.
clients=${E2E_CLIENTS:-1}
[ "$gw" = nginx-module ] && clients=0
if [ "$clients" = 1 ]; then
    # shellcheck source=tests/e2e/clients.sh
    . "$root/tests/e2e/clients.sh"
fi

# ---- the checks ----------------------------------------------------------------------
export E2E_GATEWAY=$gw E2E_API=http://127.0.0.1:$p_ct E2E_ADMIN_KEY=$admin_key
export E2E_PROJECT_A=$project_a E2E_PROJECT_B=$project_b
export E2E_PORT_METRICS=$p_metrics E2E_PORT_LOGS=$p_logs E2E_PORT_TRACES=$p_traces
export E2E_PORT_ALERTS=$p_alerts E2E_PORT_PROMETHEUS=$p_prom E2E_PORT_STORE=$p_store
# The management API through the gateway, where its template serves one (not the module's).
tpl=$root/deploy/$gw/cockpit-tokens.conf.template
[ "$gw" = caddy ] && tpl=$root/deploy/caddy/Caddyfile.template
grep -q 'MANAGEMENT_' "$tpl" && export E2E_PORT_MANAGEMENT=$p_mgmt
export E2E_CT_LOG=$d/cockpit-tokens.log
export E2E_AGENT_SECRET=$agent_secret E2E_AGENT_WAIT_S=${E2E_AGENT_WAIT_S:-25}
node "$root/tests/e2e/checks.mjs"
rc=$?
if [ "$clients" = 1 ]; then
    node "$root/tests/e2e/clients.mjs" || rc=1
    # While the gateway still answers: vmalert flushes on exit, and would otherwise
    # retry against a gateway stopped at the same time.
    e2e_stop syslog-ng reader vmalert vmagent
fi
echo "e2e: $gw scenario took $((SECONDS - t_start)) s"
if [ $rc -ne 0 ]; then
    for n in "$gw_cmd" cockpit-tokens agent; do e2e_log_tail "$n"; done
    if [ "$clients" = 1 ]; then
        for n in vmagent vmalert reader syslog-ng; do e2e_log_tail "$n"; done
    fi
    [ "$gw_cmd" = nginx ] && tail -n 25 "$d/nginx/error.log" >&2
fi
exit $rc
