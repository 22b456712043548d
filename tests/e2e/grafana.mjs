// The requests Grafana's data sources send (Grafana is not packaged in Debian, so
// its request sets are replayed): Prometheus, Loki, Tempo and Alertmanager, from
// the connection test through the query editor, label browser, Explore, Logs
// Drilldown, the trace view and the alert list. Each set is sent with a token of
// the right scope (every request must pass the gateway: neither 401 nor 403) and
// with a token of the wrong one (every request 403). Called by checks.mjs.

const now = () => Math.floor(Date.now() / 1000);
const q = (s) => encodeURIComponent(s);
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

function prometheusSet() {
  const t = now();
  const range = `start=${t - 3600}&end=${t}`;
  return [
    ['GET', '/api/v1/status/buildinfo'],
    ['GET', `/api/v1/query?query=${q('1+1')}&time=${t}`], // "Save & test"
    ['POST', '/api/v1/query', `query=${q('up')}&time=${t}`],
    ['POST', '/api/v1/query_range', `query=${q('rate(up[5m])')}&${range}&step=15`],
    ['GET', `/api/v1/labels?${range}`],
    ['POST', '/api/v1/labels', range],
    ['GET', `/api/v1/label/__name__/values?${range}`],
    ['GET', `/api/v1/label/job/values?match[]=${q('up')}&${range}`],
    ['GET', `/api/v1/series?match[]=${q('up')}&${range}`],
    ['POST', '/api/v1/series', `match[]=${q('up')}&${range}`],
    ['GET', '/api/v1/metadata'],
    ['GET', `/api/v1/query_exemplars?query=${q('up')}&${range}`],
    ['GET', '/api/v1/rules'], // the alert list and rule browser
    ['GET', `/api/v1/format_query?query=${q('sum(up)')}`],
  ];
}

function lokiSet() {
  const ns = `${now()}000000000`;
  const range = `start=${ns}&end=${ns}`;
  const sel = q('{app="e2e"}');
  return [
    ['GET', `/loki/api/v1/labels?${range}`], // "Save & test"
    ['GET', '/loki/api/v1/status/buildinfo'],
    ['GET', `/loki/api/v1/label/app/values?${range}`],
    ['GET', `/loki/api/v1/series?match[]=${sel}&${range}`],
    ['GET', `/loki/api/v1/query_range?query=${sel}&limit=100&${range}&step=1&direction=backward`],
    ['GET', `/loki/api/v1/query?query=${q('count_over_time({app="e2e"}[5m])')}`],
    ['GET', `/loki/api/v1/index/stats?query=${sel}&${range}`],
    ['GET', `/loki/api/v1/index/volume?query=${sel}&${range}`],
    ['GET', `/loki/api/v1/index/volume_range?query=${sel}&${range}&step=60`],
    ['GET', `/loki/api/v1/patterns?query=${sel}&${range}`],
    ['GET', `/loki/api/v1/detected_labels?query=${sel}&${range}`],
    ['GET', `/loki/api/v1/detected_fields?query=${sel}&${range}`],
    ['GET', `/loki/api/v1/detected_field/level/values?query=${sel}&${range}`],
    ['GET', '/loki/api/v1/drilldown-limits'],
    ['GET', `/loki/api/v1/format_query?query=${sel}`],
    ['GET', '/prometheus/api/v1/rules'], // the alert list on a Loki data source
  ];
}

function tempoSet() {
  const t = now();
  return [
    ['GET', '/api/status/buildinfo'], // at start-up
    ['GET', '/api/echo'], // "Save & test"
    ['GET', '/api/search/tags'],
    ['GET', '/api/v2/search/tags?scope=resource'],
    ['GET', '/api/v2/search/tag/resource.service.name/values'],
    ['GET', `/api/search?q=${q('{}')}&limit=20&start=${t - 3600}&end=${t}`],
    ['GET', '/api/traces/0af7651916cd43dd8448eb211c80319c'],
    ['GET', '/api/v2/traces/0af7651916cd43dd8448eb211c80319c'],
    ['GET', `/api/metrics/query_range?q=${q('{} | rate()')}&start=${t - 3600}&end=${t}&step=60s`],
  ];
}

function alertmanagerSet(run) {
  const t = new Date();
  const silence = JSON.stringify({
    matchers: [{ name: 'alertname', value: `grafana-${run}`, isRegex: false, isEqual: true }],
    startsAt: t.toISOString(),
    endsAt: new Date(t.getTime() + 60_000).toISOString(),
    createdBy: 'e2e',
    comment: 'grafana request set',
  });
  return [
    ['GET', '/api/v2/status'], // "Save & test"
    ['GET', '/api/v2/alerts/groups?silenced=false&inhibited=false&active=true'],
    ['GET', `/api/v2/alerts?filter=${q('severity="none"')}`],
    ['GET', '/api/v2/silences'],
    ['GET', '/api/v2/receivers'],
    ['POST', '/api/v2/silences', silence, { 'Content-Type': 'application/json' }],
  ];
}

function silenceIdOf(res) {
  try {
    return JSON.parse(res.body).silenceID;
  } catch {
    return null;
  }
}

export async function checkGrafana({ PORT, t, request, check, RUN }) {
  const sets = [
    ['Prometheus', PORT.metrics, prometheusSet(), t.readM, t.writeM],
    ['Loki', PORT.logs, lokiSet(), t.readL, t.writeL],
    ['Tempo', PORT.traces, tempoSet(), t.readT, t.writeT],
    ['Alertmanager', PORT.alerts, alertmanagerSet(RUN), t.alerts, t.readM],
  ];
  for (const [name, port, reqs, right, wrong] of sets) {
    const send = (tok, [method, path, body, hdrs]) =>
      request(port, method, path, {
        headers: { Authorization: `Bearer ${tok.secret_key}`, ...(body ? hdrs || FORM : {}) },
        body: body ?? null,
      });
    const bad = [];
    const refusedBad = [];
    let silenceId = null;
    for (const r of reqs) {
      const res = await send(right, r);
      if ([0, 401, 403].includes(res.status) || res.status >= 500) bad.push(`${r[0]} ${r[1].split('?')[0]} -> ${res.status}`);
      if (r[1] === '/api/v2/silences' && r[0] === 'POST') silenceId = silenceIdOf(res);
      const denied = await send(wrong, r);
      if (denied.status !== 403) refusedBad.push(`${r[0]} ${r[1].split('?')[0]} -> ${denied.status}`);
    }
    check(`grafana ${name}: ${reqs.length} requests pass with ${right.scopes.join('+')}`, bad.length === 0, bad.join('; '));
    check(`grafana ${name}: ...all 403 with ${wrong.scopes.join('+')}`, refusedBad.length === 0, refusedBad.join('; '));
    if (silenceId) {
      const del = await request(port, 'DELETE', `/api/v2/silence/${silenceId}`, { headers: { Authorization: `Bearer ${right.secret_key}` } });
      check(`grafana ${name}: the silence it created is expired (DELETE /api/v2/silence/<id>)`, del.status === 200, `got ${del.status}`);
    }
  }
}
