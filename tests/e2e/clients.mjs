// Real clients through the gateway, after checks.mjs: what the agents started by
// clients.sh delivered (vmagent, vmalert, a Prometheus server's remote_read and alert
// notifications, syslog-ng), and the one-shot clients run here (amtool, promtool,
// the OpenTelemetry JS exporter). Each is shown allowed with a token of the right
// scope and refused with a wrong one, and a refused client reports the verifier's
// JSON, never an HTML page. Prints PASS/FAIL lines and "N passed, M failed".
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = (k) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`clients.mjs: ${k} is not set`);
  return v;
};
const GW = env('E2E_GATEWAY');
const RUN = env('E2E_CLIENT_RUN');
const DIR = env('E2E_CLIENT_DIR');
const PROJECT_A = env('E2E_PROJECT_A');
const PORT = {
  metrics: Number(env('E2E_PORT_METRICS')),
  logs: Number(env('E2E_PORT_LOGS')),
  traces: Number(env('E2E_PORT_TRACES')),
  alerts: Number(env('E2E_PORT_ALERTS')),
  prometheus: Number(env('E2E_PORT_PROMETHEUS')),
  reader: Number(env('E2E_PORT_READER')),
  store: Number(env('E2E_PORT_STORE')),
};
const [tokWM, tokRM, tokAM, , , tokWT, tokRT] = env('E2E_CLIENT_TOKENS').split(' ');
const WAIT_MS = Number(process.env.E2E_CLIENT_WAIT_S || 20) * 1000;

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} [${GW}] clients: ${name}${!ok && detail ? `: ${detail}` : ''}`);
  return ok;
}
const oneLine = (s, n = 200) => String(s).replace(/\s+/g, ' ').slice(0, n);

function get(port, p, headers = {}) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: false, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}
const promResult = async (port, expr, headers) => {
  const r = await get(port, `/api/v1/query?query=${encodeURIComponent(expr)}`, headers);
  try {
    return JSON.parse(r.body).data.result;
  } catch {
    return null;
  }
};
const amAlerts = async (name) => {
  const r = await get(PORT.alerts, `/api/v2/alerts?filter=${encodeURIComponent(`alertname="${name}"`)}`,
    { Authorization: `Bearer ${tokAM}` });
  try {
    return JSON.parse(r.body);
  } catch {
    return [];
  }
};
const records = async () => {
  const r = await get(PORT.store, '/_e2e/records');
  try {
    return JSON.parse(r.body);
  } catch {
    return [];
  }
};
const log = (name) => {
  try {
    return readFileSync(path.join(DIR, `${name}.log`), 'utf8');
  } catch {
    return '';
  }
};
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15000, ...opts }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }));
  });
}

// Polls until every condition holds (or the deadline): the agents deliver meanwhile.
async function until(conds) {
  const t0 = Date.now();
  const state = {};
  while (Date.now() - t0 < WAIT_MS) {
    for (const [k, f] of Object.entries(conds)) if (!state[k]) state[k] = await f();
    if (Object.keys(conds).every((k) => state[k])) break;
    await sleep(300);
  }
  return { state, ms: Date.now() - t0 };
}

// A refused client must have seen the verifier's JSON, not an HTML page.
function jsonRefusal(name, text) {
  check(`${name} reports the JSON denial (permissions_denied), no HTML`,
    /permissions_denied/.test(text) && !/<html/i.test(text), oneLine(text.slice(-600), 600));
}

async function oneShotClients() {
  const gwM = `http://127.0.0.1:${PORT.metrics}`;
  const gwA = `http://127.0.0.1:${PORT.alerts}`;
  // promtool 2.42 has no --http.config.file for queries: the token is the URL's password.
  let r = await run('promtool', ['query', 'instant', `http://any:${tokRM}@127.0.0.1:${PORT.metrics}`, 'count(up{job="e2e-agent"})']);
  check('promtool query instant with read_only_metrics (basic-auth password)', r.code === 0 && /=>/.test(r.out), oneLine(r.out));
  r = await run('promtool', ['query', 'labels', `http://any:${tokRM}@127.0.0.1:${PORT.metrics}`, 'job']);
  check('promtool query labels with read_only_metrics', r.code === 0 && /e2e-agent/.test(r.out), oneLine(r.out));
  r = await run('promtool', ['query', 'instant', `http://any:${tokWM}@127.0.0.1:${PORT.metrics}`, 'up']);
  check('promtool query instant with write_only_metrics fails', r.code !== 0, oneLine(r.out));
  jsonRefusal('promtool', r.out);

  // amtool: the token in an http_config file (authorization.credentials).
  const amCfg = (tok, name) => {
    const f = path.join(DIR, `amtool-${name}.yml`);
    writeFileSync(f, `authorization:\n  credentials: "${tok}"\n`, { mode: 0o600 });
    return ['--alertmanager.url', gwA, '--http.config.file', f];
  };
  const ok = amCfg(tokAM, 'ok');
  const alert = `E2EAmtool_${RUN}`;
  r = await run('amtool', [...ok, 'alert', 'add', alert, 'severity=none', `run=${RUN}`]);
  check('amtool alert add', r.code === 0, oneLine(r.out));
  r = await run('amtool', [...ok, 'alert', 'query', `alertname=${alert}`]);
  check('amtool alert query finds it', r.code === 0 && r.out.includes(alert), oneLine(r.out));
  r = await run('amtool', [...ok, 'silence', 'add', `alertname=${alert}`, '--comment=e2e', '--duration=5m', '-a', 'e2e']);
  const sid = r.out.trim();
  check('amtool silence add', r.code === 0 && /^[0-9a-f-]{36}$/.test(sid), oneLine(r.out));
  r = await run('amtool', [...ok, 'silence', 'expire', sid]);
  check('amtool silence expire', r.code === 0, oneLine(r.out));
  r = await run('amtool', [...amCfg(tokRM, 'denied'), 'alert', 'query']);
  check('amtool alert query with read_only_metrics fails', r.code !== 0, oneLine(r.out));

  // The OpenTelemetry JS exporter to /v1/traces.
  const exp = path.join(here, 'otel', 'export.mjs');
  const url = `http://127.0.0.1:${PORT.traces}/v1/traces`;
  r = await run('node', [exp, url, tokWT, RUN]);
  check('OpenTelemetry exporter with write_only_traces: success', r.code === 0, oneLine(r.out));
  r = await run('node', [exp, url, tokRT, `${RUN}-denied`]);
  check('OpenTelemetry exporter with read_only_traces: failure reported', r.code === 2 && /403|Forbidden/.test(r.out), oneLine(r.out));
  void gwM;
}

async function main() {
  await oneShotClients();
  const otel = (await records()).filter((x) => x.uri === '/v1/traces');
  check('OpenTelemetry: the spans reached Tempo with the project as tenant',
    otel.some((x) => x.tenant === PROJECT_A && x.body.includes(`e2e-otel-${RUN}-3`) && !x.x_token),
    JSON.stringify(otel.map((x) => [x.tenant, x.body.length])));
  check('OpenTelemetry: nothing from the refused exporter arrived', !otel.some((x) => x.body.includes(`${RUN}-denied`)));

  const alertsOf = async (name) => (await amAlerts(name)).length > 0;
  const { state, ms } = await until({
    vmagent: async () => ((await promResult(PORT.prometheus, `count(up{job="e2e-vmagent",run="${RUN}"})`)) || []).length > 0,
    vmalertAm: () => alertsOf(`E2EVmalert_${RUN}`),
    vmalertWrite: async () => ((await promResult(PORT.prometheus, `ALERTS{alertname="E2EVmalert_${RUN}"}`)) || []).length > 0,
    readerAm: () => alertsOf(`E2EPrometheus_${RUN}`),
    readerRead: async () => ((await promResult(PORT.reader, 'count(up{job="e2e-agent"})')) || []).length > 0,
    syslog: async () => (await records()).filter((x) => x.uri === '/loki/api/v1/push' && x.body.includes(`"run":"${RUN}"`)
      && x.body.includes('"dest":"allowed"') && x.tenant === PROJECT_A).length >= 1,
    vmagentDenied: async () => /403/.test(log('vmagent')),
    vmalertDenied: async () => /403/.test(log('vmalert')),
  });
  console.log(`# clients: agents delivered after ${ms} ms`);
  check('vmagent remote-writes with -remoteWrite.headers=X-Token (its own metrics in Prometheus)', state.vmagent);
  check('vmagent: the queue with read_only_metrics gets 403', state.vmagentDenied, oneLine(log('vmagent').slice(-400)));
  jsonRefusal('vmagent', log('vmagent'));
  check('vmalert: its alert reached Alertmanager (-notifier.bearerToken)', state.vmalertAm);
  check('vmalert: ALERTS written to Prometheus (-remoteWrite.bearerToken) after querying (-datasource.bearerToken)', state.vmalertWrite);
  check('vmalert: the notifier with read_only_metrics gets 403', state.vmalertDenied, oneLine(log('vmalert').slice(-400)));
  check('Prometheus: alert notifications reach Alertmanager (alerting.authorization)', state.readerAm, oneLine(log('reader').slice(-400)));
  check('Prometheus: remote_read through the gateway returns the receiver\'s series', state.readerRead, oneLine(log('reader').slice(-400)));
  {
    const r = await get(PORT.reader, `/api/v1/query?query=${encodeURIComponent('count(up{e2e="denied"})')}`);
    check('Prometheus: remote_read with write_only_metrics is refused (403)', /403/.test(r.body), oneLine(r.body));
    jsonRefusal('Prometheus remote_read', r.body.replace(/\\"/g, '"'));
  }
  const pushes = (await records()).filter((x) => x.uri === '/loki/api/v1/push' && x.body.includes(`"run":"${RUN}"`));
  check('syslog-ng http(): its lines reached Loki\'s push path with the project as tenant', state.syslog,
    oneLine(JSON.stringify(pushes.slice(0, 2)) + log('syslog-ng').slice(-300), 500));
  check('syslog-ng http(): nothing sent with read_only_logs arrived', !pushes.some((x) => x.body.includes('"dest":"denied"')));
  check('syslog-ng http(): the destination with read_only_logs got 403', /403/.test(log('syslog-ng')), oneLine(log('syslog-ng').slice(-400)));
}

try {
  await main();
} catch (e) {
  check('ran to the end', false, e.stack || String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
