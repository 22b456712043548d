// Ready-to-paste agent configurations for a new token's secret. The gateway is the
// reverse proxy that asks /auth/verify (see deploy/nginx): its URL is the operator's
// --console-gateway-url, or a placeholder that says to set it.

export const PLACEHOLDER = 'https://<your-gateway>';

const AGENTS = [
  { id: 'prometheus-bearer', name: 'Prometheus remote_write (bearer)', scope: 'write_only_metrics',
    text: (g, s) => `# prometheus.yml
remote_write:
  - url: ${g}/api/v1/push
    authorization:
      type: Bearer
      credentials: ${s}
` },
  { id: 'prometheus-basic', name: 'Prometheus remote_write (basic_auth)', scope: 'write_only_metrics',
    text: (g, s) => `# prometheus.yml
remote_write:
  - url: ${g}/api/v1/push
    basic_auth:
      username: token   # any user: the secret is the password
      password: ${s}
` },
  { id: 'alloy', name: 'Grafana Alloy', scope: 'write_only_metrics',
    text: (g, s) => `// config.alloy
prometheus.remote_write "cockpit" {
  endpoint {
    url = "${g}/api/v1/push"
    bearer_token = "${s}"
  }
}

loki.write "cockpit" {
  endpoint {
    url = "${g}/loki/api/v1/push"
    bearer_token = "${s}"
  }
}
` },
  { id: 'promtail', name: 'Promtail', scope: 'write_only_logs',
    text: (g, s) => `# promtail.yml
clients:
  - url: ${g}/loki/api/v1/push
    tenant_id: ${s}   # sent as X-Scope-OrgID; the gateway replaces it with the project
` },
  { id: 'fluent-bit', name: 'Fluent Bit', scope: 'write_only_logs',
    text: (g, s) => {
      const u = new URL(g.includes('<') ? 'https://your-gateway' : g);
      const host = g.includes('<') ? '<your-gateway>' : u.hostname;
      const tls = u.protocol === 'https:' ? 'on' : 'off';
      const port = u.port || (u.protocol === 'https:' ? 443 : 80);
      return `# fluent-bit.conf
[OUTPUT]
    name        loki
    match       *
    host        ${host}
    port        ${port}
    tls         ${tls}
    uri         /loki/api/v1/push
    bearer_token ${s}
`;
    } },
  { id: 'otel', name: 'OpenTelemetry Collector', scope: 'write_only_traces',
    text: (g, s) => `# otel-collector.yaml
exporters:
  otlphttp/cockpit:
    endpoint: ${g}/otlp
    headers:
      X-Token: ${s}

service:
  pipelines:
    traces:
      exporters: [otlphttp/cockpit]
` },
];

export const agents = () => AGENTS.map(({ id, name }) => ({ id, name }));

/** The agent that best fits a token's scopes. */
export function suggested(scopes) {
  return (AGENTS.find((a) => scopes.includes(a.scope)) ?? AGENTS[0]).id;
}

/** The snippet for agent id, filled with gateway (or the placeholder) and secret. */
export function snippet(id, gateway, secret) {
  const a = AGENTS.find((x) => x.id === id) ?? AGENTS[0];
  const g = (gateway || PLACEHOLDER).replace(/\/+$/, '');
  return a.text(g, secret);
}
