#!/usr/bin/env bash
# `make demo`: the whole data path on this machine, for a newcomer. Needs a running
# cockpit-tokens (`make run` in another terminal) and a token with
# write_only_metrics (and read_only_metrics to query back). Starts, on 127.0.0.1:
#   - Prometheus 2.42 as the metrics data source (remote-write receiver, :19090)
#   - nginx as the gateway, from deploy/nginx/cockpit-tokens.conf.template (:19009)
#   - a Prometheus agent that scrapes itself and remote-writes through the gateway
#     with the token (Authorization: Bearer).
# Stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
token=${TOKEN:-}
verifier=${VERIFIER:-127.0.0.1:8080}
if [ -z "$token" ]; then
    echo "usage: make demo TOKEN=<secret of a token with write_only_metrics and read_only_metrics>" >&2
    exit 2
fi
scripts/deps.sh test >/dev/null
dir=$(mktemp -d /tmp/cockpit-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

mkdir -p "$dir/nginx/logs" "$dir/prom" "$dir/agent"
VERIFIER_ADDR=$verifier REGION=${REGION:-fr-par} \
METRICS_LISTEN=127.0.0.1:19009 PROMETHEUS_ADDR=127.0.0.1:19090 \
LOGS_LISTEN=127.0.0.1:19100 LOKI_ADDR=127.0.0.1:19999 \
TRACES_LISTEN=127.0.0.1:19318 TEMPO_ADDR=127.0.0.1:19999 \
ALERTMANAGER_LISTEN=127.0.0.1:19093 ALERTMANAGER_ADDR=127.0.0.1:19094 \
RECORDER_LISTEN=127.0.0.1:19999 \
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
    --web.listen-address=127.0.0.1:19090 --storage.tsdb.path="$dir/prom" \
    --log.level=warn 2>"$dir/prom.log" & pids+=($!)
cat > "$dir/agent.yml" <<YML
global: { scrape_interval: 5s }
scrape_configs:
  - job_name: demo-agent
    static_configs: [ { targets: ['127.0.0.1:19091'] } ]
remote_write:
  - url: http://127.0.0.1:19009/api/v1/write
    authorization: { credentials: "$token" }
    queue_config: { batch_send_deadline: 2s }
YML
prometheus --enable-feature=agent --config.file="$dir/agent.yml" \
    --web.listen-address=127.0.0.1:19091 --storage.agent.path="$dir/agent" \
    --log.level=warn 2>"$dir/agent.log" & pids+=($!)
cat <<MSG

Gateway (nginx auth_request -> $verifier/auth/verify) on http://127.0.0.1:19009
Prometheus (the data source) on 127.0.0.1:19090; an agent pushes its own metrics
through the gateway every few seconds with your token. In another terminal, after
~15 s, query them back through the gateway:

  curl -s -H "X-Token: \$TOKEN" 'http://127.0.0.1:19009/api/v1/query?query=up'

and see that nothing gets in without a token (401) or with a token that lacks the
scope (403):

  curl -s -o /dev/null -w '%{http_code}\n' 'http://127.0.0.1:19009/api/v1/query?query=up'

Ctrl-C stops the demo.
MSG
wait
