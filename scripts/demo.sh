#!/usr/bin/env bash
# `make demo`: the whole data path on this machine, for a newcomer. Needs a running
# cockpit-tokens (`make run` in another terminal) and a token with
# write_only_metrics (and read_only_metrics to query back). Starts, on 127.0.0.1:
#   - Prometheus as the metrics data source (remote-write receiver, PROMETHEUS_PORT)
#   - nginx as the gateway, from deploy/nginx/cockpit-tokens.conf.template
#     (metrics on GATEWAY_PORT; its other servers on the ports listed below)
#   - a Prometheus agent that scrapes itself and remote-writes through the gateway
#     with the token (Authorization: Bearer), on AGENT_PORT.
# Every port comes from a variable (defaults below) and is printed at start.
# SINGLE-TENANT: plain Prometheus ignores X-Scope-OrgID, so every project's token
# sees every project's metrics here. Use Mimir for tenant isolation (docs/SECURITY.md).
# Stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
token=${TOKEN:-}
verifier=${VERIFIER:-127.0.0.1:8080}
gateway_port=${GATEWAY_PORT:-19009} prom_port=${PROMETHEUS_PORT:-19090} agent_port=${AGENT_PORT:-19091}
logs_port=${LOGS_PORT:-19100} traces_port=${TRACES_PORT:-19318} alerts_port=${ALERTS_PORT:-19093}
mgmt_port=${MANAGEMENT_PORT:-19008} rec_port=${RECORDER_PORT:-19999}
if [ -z "$token" ]; then
    echo "usage: make demo TOKEN=<secret of a token with write_only_metrics and read_only_metrics>" >&2
    exit 2
fi
scripts/deps.sh demo >/dev/null
dir=$(mktemp -d /tmp/cockpit-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

mkdir -p "$dir/nginx/logs" "$dir/prom" "$dir/agent"
VERIFIER_ADDR=$verifier REGION=${REGION:-fr-par} \
METRICS_LISTEN=127.0.0.1:$gateway_port PROMETHEUS_ADDR=127.0.0.1:$prom_port \
LOGS_LISTEN=127.0.0.1:$logs_port LOKI_ADDR=127.0.0.1:$rec_port \
TRACES_LISTEN=127.0.0.1:$traces_port TEMPO_ADDR=127.0.0.1:$rec_port \
ALERTMANAGER_LISTEN=127.0.0.1:$alerts_port ALERTMANAGER_ADDR=127.0.0.1:$rec_port \
MANAGEMENT_LISTEN=127.0.0.1:$mgmt_port RECORDER_LISTEN=127.0.0.1:$rec_port \
    deploy/render.sh deploy/nginx/cockpit-tokens.conf.template > "$dir/nginx/gateway.conf"
cat > "$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/nginx/logs/error.log warn;
pid $dir/nginx/nginx.pid;
events { worker_connections 1024; }
http { access_log $dir/nginx/logs/access.log; include $dir/nginx/gateway.conf; }
CONF
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
prometheus --config.file=/dev/null --web.enable-remote-write-receiver \
    --web.listen-address=127.0.0.1:$prom_port --storage.tsdb.path="$dir/prom" \
    --log.level=warn 2>"$dir/prom.log" & pids+=($!)
cat > "$dir/agent.yml" <<YML
global: { scrape_interval: 5s }
scrape_configs:
  - job_name: demo-agent
    static_configs: [ { targets: ['127.0.0.1:$agent_port'] } ]
remote_write:
  - url: http://127.0.0.1:$gateway_port/api/v1/write
    authorization: { credentials: "$token" }
    queue_config: { batch_send_deadline: 2s }
YML
prometheus --enable-feature=agent --config.file="$dir/agent.yml" \
    --web.listen-address=127.0.0.1:$agent_port --storage.agent.path="$dir/agent" \
    --log.level=warn 2>"$dir/agent.log" & pids+=($!)
cat <<MSG

Gateway (nginx auth_request -> $verifier/auth/verify) on http://127.0.0.1:$gateway_port
Prometheus (the data source) on 127.0.0.1:$prom_port; an agent (127.0.0.1:$agent_port)
pushes its own metrics through the gateway every few seconds with your token.
nginx also binds the template's other servers: logs $logs_port, traces $traces_port,
alerts $alerts_port, management API $mgmt_port, test recorder $rec_port
(change any with GATEWAY_PORT=, PROMETHEUS_PORT=, AGENT_PORT=, LOGS_PORT=,
TRACES_PORT=, ALERTS_PORT=, MANAGEMENT_PORT=, RECORDER_PORT=; the verifier with VERIFIER=).

SINGLE-TENANT DEMO: plain Prometheus ignores X-Scope-OrgID, so a read token of any
project sees every project's metrics here. Tenant isolation needs Mimir (docs/SECURITY.md).

In another terminal, after ~15 s, query the metrics back through the gateway:

  curl -s -H "X-Token: \$TOKEN" 'http://127.0.0.1:$gateway_port/api/v1/query?query=up'

and see that nothing gets in without a token (401) or with a token that lacks the
scope (403):

  curl -s -o /dev/null -w '%{http_code}\n' 'http://127.0.0.1:$gateway_port/api/v1/query?query=up'

Ctrl-C stops the demo.
MSG
wait
