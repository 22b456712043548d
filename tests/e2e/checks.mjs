// The end-to-end scenario, run by tests/e2e/gateway.sh once every process is up:
// real Prometheus, Alertmanager and a recording upstream behind a gateway (nginx
// auth_request or Caddy forward_auth) that asks cockpit-tokens. Prints one
// PASS/FAIL line per check and "N passed, M failed"; exits 1 on any failure.
//
// Environment (set by gateway.sh): E2E_GATEWAY, E2E_API, E2E_ADMIN_KEY, E2E_PROJECT_A,
// E2E_PROJECT_B, E2E_PORT_{METRICS,LOGS,TRACES,ALERTS,PROMETHEUS}, E2E_AGENT_SECRET
// (the write token the agent uses; empty: no agent), E2E_AGENT_WAIT_S, E2E_PORT_MANAGEMENT
// (the gateway's management API), E2E_CT_LOG (cockpit-tokens' log file, access_log all,
// trusted_proxies = the gateway's address 127.0.0.1).
import fs from 'node:fs';
import http from 'node:http';
import { randomUUID } from 'node:crypto';

import { checkGrafana } from './grafana.mjs';
import { checkPaths } from './paths.mjs';
import { encodeWriteRequest, REMOTE_WRITE_HEADERS } from './remote-write.mjs';

const env = (k) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`checks.mjs: ${k} is not set`);
  return v;
};
const GW = env('E2E_GATEWAY');
const API = env('E2E_API');
const ADMIN_KEY = env('E2E_ADMIN_KEY');
const PROJECT_A = env('E2E_PROJECT_A');
const PROJECT_B = env('E2E_PROJECT_B');
const PORT = {
  metrics: Number(env('E2E_PORT_METRICS')),
  logs: Number(env('E2E_PORT_LOGS')),
  traces: Number(env('E2E_PORT_TRACES')),
  alerts: Number(env('E2E_PORT_ALERTS')),
  prometheus: Number(env('E2E_PORT_PROMETHEUS')),
  management: Number(process.env.E2E_PORT_MANAGEMENT || 0), // 0: the gateway serves none
  verifier: Number(new URL(API).port),
};
const AGENT_SECRET = process.env.E2E_AGENT_SECRET || '';
const AGENT_WAIT_MS = Number(process.env.E2E_AGENT_WAIT_S || 30) * 1000;
const RUN = randomUUID().slice(0, 8);

// ---- reporting ------------------------------------------------------------------

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`PASS [${GW}] ${name}`);
  } else {
    failed++;
    console.log(`FAIL [${GW}] ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}
const brief = (r) => `${r.status}${r.error ? ` (${r.error})` : ''} ${r.body.slice(0, 160).replace(/\s+/g, ' ')}`;

// The gateway's denial carries the body /auth/verify gives for the same decision
// (same status, same JSON, key order aside): the module's and nginx's bodies are
// written in their configuration, so this is what keeps them from drifting.
const canonical = (v) => (Array.isArray(v) ? v.map(canonical)
  : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])])) : v);
async function sameDenialAsVerifier(name, gwRes, verifyHeaders) {
  const v = await request(PORT.verifier, 'GET', '/auth/verify', { headers: verifyHeaders });
  let same = false;
  try {
    same = gwRes.status === v.status &&
      JSON.stringify(canonical(JSON.parse(gwRes.body))) === JSON.stringify(canonical(JSON.parse(v.body)));
  } catch { same = false; }
  check(name, same, `gateway ${brief(gwRes)} | verifier ${brief(v)}`);
}

function expectStatus(name, r, want) {
  const wants = Array.isArray(want) ? want : [want];
  return check(`${name} -> ${wants.join('|')}`, wants.includes(r.status), `got ${brief(r)}`);
}

// ---- HTTP: node:http, so that the path goes out exactly as written (no URL
// normalisation of dot segments or escapes, unlike fetch) ---------------------------

// from: the local source address (127.0.0.2, 127.0.0.3: other loopback "clients").
function request(port, method, path, { headers = {}, body = null, timeoutMs = 5000, from } = {}) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers, agent: false, timeout: timeoutMs, localAddress: from },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', (e) => resolve({ status: 0, headers: {}, body: '', error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, headers: {}, body: '', error: e.message }));
    req.end(body ?? undefined);
  });
}

// ---- credentials in the four documented forms -------------------------------------

const basic = (user, secret) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
const FORMS = {
  x_token: (s) => ({ 'X-Token': s }),
  bearer: (s) => ({ Authorization: `Bearer ${s}` }),
  basic: (s) => ({ Authorization: basic('any-user', s) }),
  basic_empty_user: (s) => ({ Authorization: basic('', s) }),
  x_scope_orgid: (s) => ({ 'X-Scope-OrgID': s }),
};
const xt = FORMS.x_token;

// ---- the management API -----------------------------------------------------------

async function createToken(region, project, scopes, name) {
  const body = JSON.stringify({ project_id: project, name: `${name}-${RUN}`, token_scopes: scopes });
  const r = await request(PORT.verifier, 'POST', `/cockpit/v1/regions/${region}/tokens`, {
    headers: { 'X-Auth-Token': ADMIN_KEY, 'Content-Type': 'application/json' },
    body,
  });
  let tok = null;
  try {
    tok = JSON.parse(r.body);
  } catch {
    /* reported below */
  }
  if (r.status !== 200 || !tok?.secret_key || !tok?.id) {
    throw new Error(`creating token ${name} (${scopes}) in ${region}: ${brief(r)}`);
  }
  return tok;
}

const deleteToken = (region, id) =>
  request(PORT.verifier, 'DELETE', `/cockpit/v1/regions/${region}/tokens/${id}`, {
    headers: { 'X-Auth-Token': ADMIN_KEY },
  });

// ---- metrics helpers --------------------------------------------------------------

function push(headers, series, path = '/api/v1/write', port = PORT.metrics) {
  return request(port, 'POST', path, {
    headers: { ...REMOTE_WRITE_HEADERS, ...headers },
    body: encodeWriteRequest(series),
  });
}
const crafted = (form, value) => [
  { labels: { __name__: 'e2e_crafted', run: RUN, form, gateway: GW }, value, timestampMs: Date.now() },
];

function query(headers, promql, port = PORT.metrics) {
  return request(port, 'GET', `/api/v1/query?query=${encodeURIComponent(promql)}`, { headers });
}
function resultOf(r) {
  try {
    const j = JSON.parse(r.body);
    return j.status === 'success' ? j.data.result : null;
  } catch {
    return null;
  }
}

// The recording upstream's echo: "key=value" lines.
function echo(r) {
  const out = {};
  for (const line of r.body.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// ---- the scenario -----------------------------------------------------------------

async function main() {
  const fr = 'fr-par';
  const t = {
    writeM: await createToken(fr, PROJECT_A, ['write_only_metrics'], 'write-metrics'),
    readM: await createToken(fr, PROJECT_A, ['read_only_metrics'], 'read-metrics'),
    writeL: await createToken(fr, PROJECT_A, ['write_only_logs'], 'write-logs'),
    readL: await createToken(fr, PROJECT_A, ['read_only_logs'], 'read-logs'),
    allLogs: await createToken(fr, PROJECT_A, ['write_only_logs', 'read_only_logs', 'full_access_logs_rules'], 'all-logs'),
    writeLB: await createToken(fr, PROJECT_B, ['write_only_logs'], 'write-logs-b'),
    writeT: await createToken(fr, PROJECT_A, ['write_only_traces'], 'write-traces'),
    readT: await createToken(fr, PROJECT_A, ['read_only_traces'], 'read-traces'),
    alerts: await createToken(fr, PROJECT_A, ['full_access_alert_manager'], 'alerts'),
    doomed: await createToken(fr, PROJECT_A, ['write_only_metrics', 'read_only_metrics'], 'doomed'),
    amsM: await createToken('nl-ams', PROJECT_A, ['write_only_metrics', 'read_only_metrics'], 'ams-metrics'),
  };
  const w = t.writeM.secret_key;
  const r = t.readM.secret_key;

  // -- the encoder itself, straight to Prometheus (no gateway) --
  expectStatus('control: crafted remote-write accepted by Prometheus directly',
    await push({}, crafted('direct', 1), '/api/v1/write', PORT.prometheus), 204);

  // -- metrics write through the gateway, every token form --
  let value = 10;
  const pushedForms = {};
  for (const [form, hdr] of Object.entries(FORMS)) {
    pushedForms[form] = ++value;
    expectStatus(`metrics: write_only_metrics token as ${form} pushes`, await push(hdr(w), crafted(form, value)), 204);
  }
  // Prometheus decodes %77rite to write: the verifier must too, and ask for the write scope.
  expectStatus('metrics: push to /api/v1/%77rite with the write token',
    await push(xt(w), crafted('encoded', 99), '/api/v1/%77rite'), 204);

  // -- read back through the gateway --
  const got = resultOf(await query(xt(r), `e2e_crafted{run="${RUN}",gateway="${GW}"}`));
  const byForm = Object.fromEntries((got || []).map((s) => [s.metric.form, Number(s.value[1])]));
  for (const [form, v] of Object.entries(pushedForms)) {
    check(`metrics: read_only_metrics token finds the ${form} sample via /api/v1/query`, byForm[form] === v,
      `result ${JSON.stringify(got)}`);
  }
  check('metrics: the %77rite push landed', byForm.encoded === 99, `result ${JSON.stringify(got)}`);
  for (const [form, hdr] of Object.entries(FORMS)) {
    const q = await query(hdr(r), `e2e_crafted{run="${RUN}",form="x_token"}`);
    check(`metrics: read_only_metrics token as ${form} queries -> 200 with data`,
      q.status === 200 && resultOf(q)?.length === 1, `got ${brief(q)}`);
  }
  const fed = await request(PORT.metrics, 'GET', `/federate?match[]=${encodeURIComponent(`e2e_crafted{run="${RUN}"}`)}`,
    { headers: xt(r) });
  check('metrics: GET /federate with the read token -> 200 with the series',
    fed.status === 200 && fed.body.includes('e2e_crafted'), `got ${brief(fed)}`);

  // -- metrics denials --
  expectStatus('metrics: read_only_metrics token cannot push', await push(xt(r), crafted('denied', 1)), 403);
  expectStatus('metrics: read token cannot push to /api/v1/%77rite either',
    await push(xt(r), crafted('denied', 1), '/api/v1/%77rite'), 403);
  expectStatus('metrics: client X-Cockpit-Scope cannot lower the required scope',
    await push({ ...xt(r), 'X-Cockpit-Scope': 'read_only_metrics' }, crafted('denied', 1)), 403);
  expectStatus('metrics: client X-Original-URI cannot disguise a push',
    await push({ ...xt(r), 'X-Original-URI': '/api/v1/query', 'X-Original-Method': 'GET' }, crafted('denied', 1)), 403);
  expectStatus('metrics: client X-Cockpit-Data-Source cannot switch family',
    await push({ ...xt(t.alerts.secret_key), 'X-Cockpit-Data-Source': 'alert_manager' }, crafted('denied', 1)), 403);
  expectStatus('metrics: dot segments in the path are refused',
    await push(xt(w), crafted('denied', 1), '/api/v1/query/../write'), 403);
  {
    // An absolute-form request-target: whatever the gateway passes as the URI, the
    // push must not get through on a read token.
    const res = await push(xt(r), crafted('denied', 1), `http://127.0.0.1:${PORT.metrics}/api/v1/write`);
    check('metrics: absolute-form request-target cannot disguise a push -> 403|400', [403, 400].includes(res.status),
      `got ${brief(res)}`);
  }
  expectStatus('metrics: write_only_metrics token cannot query', await query(xt(w), 'up'), 403);
  expectStatus('metrics: a logs token cannot push metrics', await push(xt(t.writeL.secret_key), crafted('denied', 1)), 403);
  {
    const res = await push({}, crafted('denied', 1));
    expectStatus('metrics: no token, push', res, 401);
    // Caddy passes the verifier's answer through; nginx sends its X-Cockpit-Error.
    check("metrics: the verifier's JSON error body reaches the client",
      /^\{.*"type"\s*:\s*"[a-z_]+"/s.test(res.body), `got ${brief(res)}`);
    await sameDenialAsVerifier('metrics: no token -> the body /auth/verify gives', res,
      { 'X-Cockpit-Scope': 'write_only_metrics', 'X-Cockpit-Region': 'fr-par' });
    const q = await query(xt(w), 'up');
    await sameDenialAsVerifier('metrics: missing scope -> the body /auth/verify gives', q,
      { ...xt(w), 'X-Cockpit-Scope': 'read_only_metrics', 'X-Cockpit-Region': 'fr-par' });
    const a = await push(xt(t.amsM.secret_key), crafted('ams', 1));
    await sameDenialAsVerifier('metrics: wrong region -> the body /auth/verify gives', a,
      { ...xt(t.amsM.secret_key), 'X-Cockpit-Scope': 'write_only_metrics', 'X-Cockpit-Region': 'fr-par' });
  }
  expectStatus('metrics: no token, query', await query({}, 'up'), 401);
  const flipped = w.slice(0, 10) + (w[10] === 'A' ? 'B' : 'A') + w.slice(11);
  expectStatus('metrics: a token with one character changed', await push(xt(flipped), crafted('denied', 1)), 401);
  expectStatus('metrics: a project id in X-Scope-OrgID is no token', await query({ 'X-Scope-OrgID': PROJECT_A }, 'up'), 401);
  const none = resultOf(await query(xt(r), `e2e_crafted{run="${RUN}",form="denied"}`));
  check('metrics: no denied push reached Prometheus', Array.isArray(none) && none.length === 0, JSON.stringify(none));

  // -- region: an nl-ams token at the fr-par gateway --
  const ams = t.amsM.secret_key;
  expectStatus('region: nl-ams token pushes through the fr-par gateway', await push(xt(ams), crafted('ams', 1)), 403);
  expectStatus('region: ...also when the client claims X-Cockpit-Region: nl-ams',
    await push({ ...xt(ams), 'X-Cockpit-Region': 'nl-ams' }, crafted('ams', 1)), 403);
  expectStatus('region: nl-ams token queries through the fr-par gateway', await query(xt(ams), 'up'), 403);
  expectStatus('region: control: the same token is valid for nl-ams at the verifier',
    await request(PORT.verifier, 'GET', '/auth/verify', {
      headers: { ...xt(ams), 'X-Cockpit-Region': 'nl-ams', 'X-Cockpit-Scope': 'write_only_metrics' },
    }), 204);

  // -- deletion takes effect at once --
  const d = t.doomed.secret_key;
  expectStatus('delete: token works before deletion', await push(xt(d), crafted('doomed', 1)), 204);
  expectStatus('delete: DELETE through the API', await deleteToken(fr, t.doomed.id), 204);
  expectStatus('delete: very next push with the deleted token', await push(xt(d), crafted('doomed', 2)), 401);
  expectStatus('delete: query with the deleted token', await query(xt(d), 'up'), 401);

  // -- tenant header: the verifier's answer, never the client's --
  const logsPush = (headers, path = '/loki/api/v1/push') =>
    request(PORT.logs, 'POST', path, {
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ streams: [{ stream: { app: 'e2e' }, values: [[`${Date.now()}000000`, 'hello']] }] }),
    });
  const wl = t.writeL.secret_key;
  for (const [form, hdr] of Object.entries({ x_token: xt, bearer: FORMS.bearer, basic: FORMS.basic })) {
    const res = await logsPush({ ...hdr(wl), 'X-Scope-OrgID': PROJECT_B });
    const e = echo(res);
    check(`tenant: ${form} token of A + client X-Scope-OrgID of B -> upstream tenant is A`,
      res.status === 200 && e.tenant === PROJECT_A, `got ${brief(res)}`);
    check(`tenant: ${form}: the secret does not reach the upstream`,
      res.status === 200 && !res.body.includes(wl) && e.x_token === '' && e.authorization === '', `got ${brief(res)}`);
  }
  {
    const res = await logsPush({ 'X-Scope-OrgID': wl });
    const e = echo(res);
    check('tenant: token sent as X-Scope-OrgID -> upstream tenant is the project, not the secret',
      res.status === 200 && e.tenant === PROJECT_A && !res.body.includes(wl), `got ${brief(res)}`);
    check('tenant: the upstream gets the token id', e.token_id === t.writeL.id, `got ${brief(res)}`);
  }
  {
    const res = await logsPush({ ...xt(t.writeLB.secret_key), 'X-Scope-OrgID': PROJECT_A });
    check("tenant: project B's token -> upstream tenant is B", res.status === 200 && echo(res).tenant === PROJECT_B,
      `got ${brief(res)}`);
  }
  {
    // Two projects push, interleaved, on one keep-alive-less gateway: each push reaches the
    // (tenant-aware) upstream under its own project, never the other's.
    const tenants = [];
    for (let i = 0; i < 3; i++) {
      for (const tok of [wl, t.writeLB.secret_key]) tenants.push(echo(await logsPush(xt(tok))).tenant);
    }
    const want = [PROJECT_A, PROJECT_B, PROJECT_A, PROJECT_B, PROJECT_A, PROJECT_B];
    check('tenant: pushes of projects A and B arrive under tenants A and B',
      JSON.stringify(tenants) === JSON.stringify(want), `got ${tenants.join(',')}`);
  }
  {
    // What docs/SECURITY.md says of plain Prometheus, proven: it ignores X-Scope-OrgID, so a
    // read token of project B sees project A's series. Tenant isolation needs Mimir (or
    // Cortex, Loki, Tempo) behind the gateway.
    const rB = await createToken(fr, PROJECT_B, ['read_only_metrics'], 'read-metrics-b');
    const got = resultOf(await query(xt(rB.secret_key), `e2e_crafted{run="${RUN}"}`)) || [];
    check("single-tenant Prometheus: B's read token sees A's series (as documented)", got.length > 0,
      `got ${JSON.stringify(got).slice(0, 160)}`);
  }

  // -- logs: the built-in path map (no explicit scope in the gateway config) --
  const rl = t.readL.secret_key;
  const qr = `/loki/api/v1/query_range?query=${encodeURIComponent('{app="e2e"}')}&limit=5`;
  {
    const res = await logsPush(xt(wl));
    expectStatus('logs: write_only_logs pushes /loki/api/v1/push', res, 200);
    check('logs: the upstream saw the push URI', echo(res).uri === '/loki/api/v1/push', `got ${brief(res)}`);
  }
  expectStatus('logs: read_only_logs cannot push', await logsPush(xt(rl)), 403);
  {
    const res = await request(PORT.logs, 'GET', qr, { headers: xt(rl) });
    expectStatus('logs: read_only_logs queries /loki/api/v1/query_range', res, 200);
    check('logs: the upstream saw the query URI with its query string', echo(res).uri === qr, `got ${brief(res)}`);
  }
  expectStatus('logs: write_only_logs cannot query', await request(PORT.logs, 'GET', qr, { headers: xt(wl) }), 403);
  expectStatus('logs: read token cannot push to the encoded /loki/api/v1/%70ush',
    await logsPush(xt(rl), '/loki/api/v1/%70ush'), 403);
  expectStatus('logs: write token can push to the encoded /loki/api/v1/%70ush',
    await logsPush(xt(wl), '/loki/api/v1/%70ush'), 200);
  expectStatus('logs: client X-Cockpit-Scope cannot lower the required scope',
    await logsPush({ ...xt(rl), 'X-Cockpit-Scope': 'read_only_logs' }), 403);
  expectStatus('logs: read_only_logs cannot read rules',
    await request(PORT.logs, 'GET', '/loki/api/v1/rules', { headers: xt(rl) }), 403);
  expectStatus('logs: unknown endpoint refused even with every logs scope',
    await logsPush(xt(t.allLogs.secret_key), '/loki/api/v1/delete'), 403);
  expectStatus('logs: dot segments refused even with every logs scope',
    await request(PORT.logs, 'GET', '/loki/api/v1/push/../query', { headers: xt(t.allLogs.secret_key) }), 403);
  expectStatus('logs: a metrics token cannot push logs', await logsPush(xt(w)), 403);
  expectStatus('logs: no token', await logsPush({}), 401);

  // -- traces --
  const otlp = (headers, path = '/otlp/v1/traces', method = 'POST') =>
    request(PORT.traces, method, path, { headers: { 'Content-Type': 'application/json', ...headers }, body: '{}' });
  expectStatus('traces: write_only_traces POST /otlp/v1/traces', await otlp(xt(t.writeT.secret_key)), 200);
  expectStatus('traces: read_only_traces cannot POST /otlp/v1/traces', await otlp(xt(t.readT.secret_key)), 403);
  expectStatus('traces: read_only_traces GET /api/traces/<id>',
    await request(PORT.traces, 'GET', '/api/traces/0af7651916cd43dd8448eb211c80319c', { headers: xt(t.readT.secret_key) }), 200);
  expectStatus('traces: write_only_traces cannot GET /api/traces/<id>',
    await request(PORT.traces, 'GET', '/api/traces/0af7651916cd43dd8448eb211c80319c', { headers: xt(t.writeT.secret_key) }), 403);
  expectStatus('traces: read_only_traces cannot POST /api/traces (Jaeger collector path)',
    await otlp(xt(t.readT.secret_key), '/api/traces'), 403);

  // -- Alertmanager --
  const alertName = `E2E_${GW}_${RUN}`;
  const alertBody = JSON.stringify([{ labels: { alertname: alertName, severity: 'none' }, annotations: { run: RUN } }]);
  const postAlert = (headers) => request(PORT.alerts, 'POST', '/api/v2/alerts', {
    headers: { 'Content-Type': 'application/json', ...headers },
    body: alertBody,
  });
  expectStatus('alertmanager: a metrics token cannot POST /api/v2/alerts', await postAlert(xt(w)), 403);
  expectStatus('alertmanager: no token', await postAlert({}), 401);
  expectStatus('alertmanager: full_access_alert_manager POSTs /api/v2/alerts', await postAlert(xt(t.alerts.secret_key)), 200);
  {
    const res = await request(PORT.alerts, 'GET', `/api/v2/alerts?filter=${encodeURIComponent(`alertname="${alertName}"`)}`,
      { headers: FORMS.bearer(t.alerts.secret_key) });
    check('alertmanager: GET /api/v2/alerts shows the alert', res.status === 200 && res.body.includes(alertName),
      `got ${brief(res)}`);
  }
  expectStatus('alertmanager: a metrics token cannot GET /api/v2/alerts',
    await request(PORT.alerts, 'GET', '/api/v2/alerts', { headers: xt(r) }), 403);

  await checkPaths({ GW, PORT, t, request, check, expectStatus, brief, echo });
  await checkGrafana({ PORT, t, request, check, RUN });

  // -- a real sender: Prometheus in agent mode, one remote_write queue per token form
  // it can send (see gateway.sh: Debian's 2.42 drops custom remote_write headers) --
  if (AGENT_SECRET) {
    const want = ['bearer', 'basic'];
    const t0 = Date.now();
    const deadline = Date.now() + AGENT_WAIT_MS;
    let seen = new Set();
    let last = null;
    while (Date.now() < deadline) {
      last = await query(xt(r), 'count by (form) (up{job="e2e-agent"})');
      seen = new Set((resultOf(last) || []).map((s) => s.metric.form));
      if (want.every((f) => seen.has(f))) break;
      await sleep(500);
    }
    for (const f of want) {
      check(`agent: Prometheus agent remote_write with the token as ${f} arrives (${Date.now() - t0} ms)`, seen.has(f),
        `seen ${[...seen].join(',') || 'none'} after ${AGENT_WAIT_MS / 1000} s; last ${last ? brief(last) : '-'}`);
    }
  }
}

// ---- client addresses behind the gateway (trusted_proxies = the gateway) --------------

async function proxiedClients() {
  const bad = { 'X-Auth-Token': randomUUID() };
  const good = { 'X-Auth-Token': ADMIN_KEY };
  const list = '/cockpit/v1/regions/fr-par/tokens?page_size=1';
  const mgmt = (headers, from) => request(PORT.management, 'GET', list, { headers, from });
  expectStatus('management through the gateway: the admin key lists', await mgmt(good, '127.0.0.3'), 200);
  let last = null;
  for (let i = 0; i < 25; i++) last = await mgmt(bad, '127.0.0.2'); // auth_fail_limit 20
  expectStatus('proxied clients: 25 bad keys from 127.0.0.2 through the gateway', last, 429);
  expectStatus('proxied clients: 127.0.0.2 is locked out, even with the right key', await mgmt(good, '127.0.0.2'), 429);
  expectStatus('proxied clients: another client (127.0.0.3) through the same gateway is not',
    await mgmt(good, '127.0.0.3'), 200);
  expectStatus('proxied clients: a direct local caller is not', await request(PORT.verifier, 'GET', list, { headers: good }), 200);
  // A client cannot pick its own address: it is only believed from a trusted peer.
  const forged = { ...good, 'X-Forwarded-For': '127.0.0.9', 'X-Real-IP': '127.0.0.9' };
  expectStatus('proxied clients: X-Forwarded-For from the locked-out client does not unlock it',
    await mgmt(forged, '127.0.0.2'), 429);
  expectStatus('data plane: no token from 127.0.0.4 through the gateway',
    await request(PORT.metrics, 'GET', '/api/v1/query?query=up', { from: '127.0.0.4' }), 401);
  await sleep(200); // the access log line is written at completion
  const log = fs.readFileSync(env('E2E_CT_LOG'), 'utf8');
  check('access log names the client behind the gateway (management)',
    /route=tokens status=429 .*client=127\.0\.0\.2/.test(log), 'no route=tokens status=429 line with client=127.0.0.2');
  check('access log names the client behind the gateway (/auth/verify)',
    /route=verify status=401 .*client=127\.0\.0\.4/.test(log), 'no route=verify status=401 line with client=127.0.0.4');
}

try {
  await main();
  if (PORT.management) await proxiedClients();
} catch (e) {
  check('scenario ran to the end', false, e.stack || String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
