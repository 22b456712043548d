# shellcheck shell=bash
# The agents people run, started through the gateway before checks.mjs so that they
# deliver while it runs; tests/e2e/clients.mjs then checks what arrived and runs the
# one-shot clients (amtool, promtool, the OpenTelemetry exporter). Sourced by
# gateway.sh (its e2e_start, ports, $d and trap). Each long-running client gets a
# token of the right scope, and a second destination with a token of the wrong one:
#   vmagent    scrapes itself, remote-writes (-remoteWrite.headers=X-Token:...)
#   vmalert    queries (read), notifies Alertmanager, writes ALERTS (write)
#   reader     a Prometheus server: remote_read through the gateway (and a second
#              remote_read with a write token, for queries with e2e="denied"), and
#              alert notifications to Alertmanager through it
#   syslog-ng  http() to Loki's push path, JSON body
# Needs: $root $d $p_ct $p_metrics $p_logs $p_alerts $project_a and the admin header
# file $d/admin.header; sets E2E_CLIENT_* for clients.mjs.

read -r p_vmagent p_vmalert p_reader <<<"$(e2e_ports 3)"
[ -n "$p_reader" ] || e2e_fail "setup: could not find free ports for the clients"
for cmd in vmagent vmalert syslog-ng amtool promtool; do
    command -v "$cmd" >/dev/null || e2e_fail "setup: $cmd is not installed (scripts/deps.sh test)"
done
client_run=$(cat /proc/sys/kernel/random/uuid)
client_run=${client_run:0:8}

# Prints the secret of a new fr-par token of project A with the given scopes.
client_token() {
    local name=$1 scopes=$2 resp
    resp=$(curl -sS -m 5 -X POST -H @"$d/admin.header" -H 'Content-Type: application/json' \
        -d "{\"project_id\":\"$project_a\",\"name\":\"$name-$client_run\",\"token_scopes\":$scopes}" \
        "http://127.0.0.1:$p_ct/cockpit/v1/regions/fr-par/tokens")
    node -e 'const j = JSON.parse(process.argv[1]); if (!j.secret_key) process.exit(1);
        console.log(j.secret_key)' "$resp" 2>/dev/null || e2e_fail "setup: creating token $name: $resp"
}
tok_wm=$(client_token clients-write-metrics '["write_only_metrics"]')
tok_rm=$(client_token clients-read-metrics '["read_only_metrics"]')
tok_am=$(client_token clients-alerts '["full_access_alert_manager"]')
tok_wl=$(client_token clients-write-logs '["write_only_logs"]')
tok_rl=$(client_token clients-read-logs '["read_only_logs"]')
tok_wt=$(client_token clients-write-traces '["write_only_traces"]')
tok_rt=$(client_token clients-read-traces '["read_only_traces"]')
gw_metrics=http://127.0.0.1:$p_metrics
gw_alerts=http://127.0.0.1:$p_alerts

# ---- vmagent: one queue with the write token, one with a read token ------------------------
cat >"$d/vmagent-scrape.yml" <<EOF
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: e2e-vmagent
    static_configs: [{targets: ["127.0.0.1:$p_vmagent"], labels: {run: "$client_run"}}]
EOF
e2e_start vmagent vmagent -httpListenAddr="127.0.0.1:$p_vmagent" -promscrape.config="$d/vmagent-scrape.yml" \
    -remoteWrite.tmpDataPath="$d/vmagent-data" -remoteWrite.flushInterval=500ms \
    -remoteWrite.url="$gw_metrics/api/v1/write" -remoteWrite.headers="X-Token: $tok_wm" \
    -remoteWrite.url="$gw_metrics/api/v1/write?denied=1" -remoteWrite.headers="X-Token: $tok_rm" \
    -loggerLevel=WARN

# ---- vmalert: a rule that always fires; a second notifier with a metrics token -------------
cat >"$d/vmalert-rules.yml" <<EOF
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EVmalert_$client_run
        expr: vector(1)
        labels: {severity: none, run: "$client_run"}
EOF
e2e_start vmalert vmalert -httpListenAddr="127.0.0.1:$p_vmalert" -rule="$d/vmalert-rules.yml" \
    -datasource.url="$gw_metrics" -datasource.bearerToken="$tok_rm" \
    -notifier.url="$gw_alerts" -notifier.bearerToken="$tok_am" \
    -notifier.url="$gw_alerts" -notifier.bearerToken="$tok_rm" \
    -remoteWrite.url="$gw_metrics" -remoteWrite.bearerToken="$tok_wm" -remoteWrite.flushInterval=500ms \
    -evaluationInterval=1s -loggerLevel=WARN

# ---- a Prometheus server that reads remotely and notifies through the gateway ---------------
(
    umask 077
    cat >"$d/reader-rules.yml" <<EOF
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EPrometheus_$client_run
        expr: vector(1)
        labels: {severity: none, run: "$client_run"}
EOF
    cat >"$d/reader.yml" <<EOF
global: {scrape_interval: 1m, evaluation_interval: 1s}
rule_files: ["$d/reader-rules.yml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:$p_alerts"]}]
      authorization: {credentials: "$tok_am"}
remote_read:
  - url: $gw_metrics/api/v1/read
    name: allowed
    read_recent: true
    authorization: {credentials: "$tok_rm"}
  # Asked only by queries that carry e2e="denied": a write token cannot read.
  - url: $gw_metrics/api/v1/read
    name: denied
    read_recent: true
    required_matchers: {e2e: denied}
    authorization: {credentials: "$tok_wm"}
EOF
)
# It finds its Alertmanager a few seconds after its first evaluation, and drops what
# fired before: resend every second rather than after the default minute.
e2e_start reader prometheus --config.file="$d/reader.yml" --storage.tsdb.path="$d/reader-data" \
    --web.listen-address="127.0.0.1:$p_reader" --rules.alert.resend-delay=1s --log.level=warn

# ---- syslog-ng: http() to the logs push path, with the write token and a read token --------
for i in 1 2 3; do echo "e2e syslog-ng line $i run=$client_run"; done >"$d/syslog-ng-in.log"
loki_body='{"streams":[{"stream":{"app":"syslog-ng","run":"'$client_run'","dest":"DEST"},"values":[["${R_UNIXTIME}000000000","${MESSAGE}"]]}]}'
(
    umask 077
    {
        echo '@version: 3.38'
        echo "source s_file { file(\"$d/syslog-ng-in.log\" flags(no-parse) follow-freq(0.2)); };"
        for dest in allowed denied; do
            tok=$tok_wl
            [ $dest = denied ] && tok=$tok_rl
            echo "destination d_$dest { http(url(\"http://127.0.0.1:$p_logs/loki/api/v1/push\") method(\"POST\") persist-name(\"loki-$dest\")"
            echo "    headers(\"Content-Type: application/json\", \"X-Token: $tok\")"
            echo "    body('${loki_body/DEST/$dest}')); };"
            echo "log { source(s_file); destination(d_$dest); };"
        done
    } >"$d/syslog-ng.conf"
)
e2e_start syslog-ng syslog-ng -F -e -f "$d/syslog-ng.conf" --persist-file="$d/syslog-ng.persist" \
    --pidfile="$d/syslog-ng.pid" --control="$d/syslog-ng.ctl" --no-caps

export E2E_CLIENT_RUN=$client_run E2E_CLIENT_DIR=$d E2E_PORT_READER=$p_reader
export E2E_CLIENT_TOKENS="$tok_wm $tok_rm $tok_am $tok_wl $tok_rl $tok_wt $tok_rt"
