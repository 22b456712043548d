// Checks that what agents and Grafana send gets through the gateway as it should:
// long GET queries, the paths the map gained, rule/alert listings with a read
// token, and JSON (never HTML) denials that say why. Called by checks.mjs with its
// helpers and tokens; one request per check, no waiting.

const isJson = (r) => {
  try {
    return (r.headers['content-type'] || '').startsWith('application/json') && typeof JSON.parse(r.body) === 'object';
  } catch {
    return false;
  }
};
const reasonOf = (r) => {
  try {
    return JSON.parse(r.body).details?.[0]?.reason;
  } catch {
    return undefined;
  }
};

// A PromQL / LogQL selector of about `bytes` characters: long, and still valid.
function longSelector(label, bytes) {
  const alts = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const v = `value-${i}`;
    alts.push(v);
    n += v.length + 1;
  }
  return `{${label}=~"${alts.join('|')}"}`;
}

export async function checkPaths({ GW, PORT, t, request, check, expectStatus, brief, echo }) {
  const xt = (s) => ({ 'X-Token': s });
  const get = (port, path, secret, extra = {}) => request(port, 'GET', path, { headers: { ...xt(secret), ...extra } });

  // ---- 1. long GET queries: 16 KB query strings through the gateway --------------
  {
    const sel = longSelector('job', 16 * 1024);
    const path = `/api/v1/query?query=${encodeURIComponent(`count(up${sel})`)}`;
    const res = await get(PORT.metrics, path, t.readM.secret_key);
    check(`long query: ${path.length}-byte GET /api/v1/query -> 200 from Prometheus`,
      res.status === 200 && /"status":"success"/.test(res.body), `got ${brief(res)}`);
    expectStatus('long query: ...and 403 with a write token', await get(PORT.metrics, path, t.writeM.secret_key), 403);
  }
  {
    const path = `/loki/api/v1/query_range?query=${encodeURIComponent(longSelector('app', 16 * 1024))}&limit=5`;
    const res = await get(PORT.logs, path, t.readL.secret_key);
    check(`long query: ${path.length}-byte Loki query_range -> 200, the upstream gets the whole URI`,
      res.status === 200 && echo(res).uri === path, `got ${res.status}, uri of ${(echo(res).uri || '').length} bytes`);
  }
  {
    // Past the gateway's request-line limit (32 KiB): a JSON 414 from nginx (either
    // template); Go's
    // own 431 in front of Caddy (its max_header_size counts line and headers).
    const path = `/api/v1/query?query=${'x'.repeat(40 * 1024)}`;
    const res = await get(PORT.metrics, path, t.readM.secret_key);
    if (GW !== 'caddy') {
      check('long query: a 40 KiB request line -> 414 JSON', res.status === 414 && isJson(res), `got ${brief(res)}`);
    } else {
      expectStatus('long query: a 40 KiB request line', res, 431);
    }
  }

  {
    const res = await request(PORT.metrics, 'GET', '/api/v1/query?query=up',
      { headers: { ...xt(t.readM.secret_key), 'X-Pad': 'p'.repeat(40 * 1024) } });
    if (GW !== 'caddy') {
      check('long header: a 40 KiB header line -> 400 JSON', res.status === 400 && isJson(res), `got ${brief(res)}`);
    } else {
      expectStatus('long header: a 40 KiB header line', res, 431);
    }
  }

  // ---- 4. denials are JSON and say why --------------------------------------------
  {
    const res = await request(PORT.metrics, 'GET', '/api/v1/query?query=up', {});
    check('json: no token -> 401 application/json denied_authentication',
      res.status === 401 && isJson(res) && JSON.parse(res.body).type === 'denied_authentication', `got ${brief(res)}`);
  }
  {
    const res = await get(PORT.metrics, '/api/v1/query?query=up', t.writeM.secret_key);
    check('json: write token queries -> 403 JSON with reason missing_scope',
      res.status === 403 && isJson(res) && reasonOf(res) === 'missing_scope', `got ${brief(res)}`);
  }
  {
    const res = await get(PORT.metrics, '/api/v1/admin/tsdb/snapshot', t.readM.secret_key);
    check('json: a path outside the map -> 403 JSON with reason path_unknown',
      res.status === 403 && isJson(res) && reasonOf(res) === 'path_unknown', `got ${brief(res)}`);
  }
  {
    const res = await get(PORT.metrics, '/api/v1/query?query=up', t.amsM.secret_key);
    check('json: a token of another region -> 403 JSON with reason wrong_region',
      res.status === 403 && isJson(res) && reasonOf(res) === 'wrong_region', `got ${brief(res)}`);
  }
  {
    // Credentials too large for the verifier's buffer: it answers 431, which nginx's
    // auth_request reports as 500; the template turns that into a JSON 503. Caddy
    // refuses such headers itself; the module decides in nginx.
    const big = { 'X-Token': 'a'.repeat(30000), Authorization: `Bearer ${'b'.repeat(30000)}` };
    const res = await request(PORT.metrics, 'GET', '/api/v1/query?query=up', { headers: big });
    if (GW === 'nginx') {
      check('json: verifier cannot answer -> 503 JSON service_unavailable',
        res.status === 503 && isJson(res) && JSON.parse(res.body).type === 'service_unavailable', `got ${brief(res)}`);
    } else if (GW === 'nginx-module') {
      // No verifier hop: the module reads them and finds no valid token.
      check('json: 60 KB of credential headers -> 401 JSON', res.status === 401 && isJson(res), `got ${brief(res)}`);
    } else {
      expectStatus('json: 60 KB of credential headers', res, 431);
    }
  }

  // ---- 2. paths the map gained ------------------------------------------------------
  const logsRead = [
    '/loki/api/v1/detected_field/service_name/values',
    '/loki/api/v1/drilldown-limits',
    '/loki/api/v1/status/buildinfo',
    '/loki/api/v1/format_query?query=%7Bapp%3D%22x%22%7D',
  ];
  for (const p of logsRead) {
    expectStatus(`paths: read_only_logs GET ${p}`, await get(PORT.logs, p, t.readL.secret_key), 200);
    expectStatus(`paths: write_only_logs GET ${p}`, await get(PORT.logs, p, t.writeL.secret_key), 403);
  }
  expectStatus('paths: read_only_traces GET /api/status/buildinfo',
    await get(PORT.traces, '/api/status/buildinfo', t.readT.secret_key), 200);
  for (const p of ['/api/traces', '/api/v1/spans', '/api/v2/spans']) {
    const post = (s) => request(PORT.traces, 'POST', p, { headers: { ...xt(s), 'Content-Type': 'application/json' }, body: '[]' });
    expectStatus(`paths: write_only_traces POST ${p}`, await post(t.writeT.secret_key), 200);
    expectStatus(`paths: read_only_traces POST ${p}`, await post(t.readT.secret_key), 403);
  }
  {
    // Prometheus 2.42 has no OTLP receiver (it came in 2.47): the gateway lets the
    // write token through and Prometheus answers 404; a read token stops at 403.
    const post = (s) => request(PORT.metrics, 'POST', '/api/v1/otlp/v1/metrics',
      { headers: { ...xt(s), 'Content-Type': 'application/x-protobuf' }, body: '' });
    const res = await post(t.writeM.secret_key);
    check('paths: write_only_metrics POST /api/v1/otlp/v1/metrics passes the gateway',
      ![401, 403].includes(res.status) && res.status !== 0, `got ${brief(res)}`);
    expectStatus('paths: read_only_metrics POST /api/v1/otlp/v1/metrics', await post(t.readM.secret_key), 403);
  }

  // ---- 3. rule and alert listings are reads; the rulers' configuration is not --------
  {
    const res = await get(PORT.metrics, '/api/v1/rules', t.readM.secret_key);
    check('rules: read_only_metrics GET /api/v1/rules -> 200 from Prometheus',
      res.status === 200 && /"groups"/.test(res.body), `got ${brief(res)}`);
    expectStatus('rules: write_only_metrics GET /api/v1/rules', await get(PORT.metrics, '/api/v1/rules', t.writeM.secret_key), 403);
    expectStatus('rules: read_only_metrics POST /api/v1/rules',
      await request(PORT.metrics, 'POST', '/api/v1/rules', { headers: xt(t.readM.secret_key) }), 403);
  }
  for (const p of ['/prometheus/api/v1/rules', '/prometheus/api/v1/alerts']) {
    expectStatus(`rules: read_only_logs GET ${p} (Loki)`, await get(PORT.logs, p, t.readL.secret_key), 200);
  }
  expectStatus('rules: read_only_logs GET /loki/api/v1/rules (ruler configuration)',
    await get(PORT.logs, '/loki/api/v1/rules', t.readL.secret_key), 403);
  expectStatus('rules: full_access_logs_rules GET /loki/api/v1/rules',
    await get(PORT.logs, '/loki/api/v1/rules', t.allLogs.secret_key), 200);
}
