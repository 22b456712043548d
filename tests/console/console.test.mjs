// The web console in a real browser: Debian's chromium driven by playwright-core, with
// axe-core on every screen. The steps share one page and run in order, as a person would
// use the console. Any page error, console error (other than the network lines Chromium
// prints for expected non-2xx answers), CSP violation or request to another origin fails
// the run. Screenshots of each screen (desktop and 375 px, light and dark) go to
// CT_CONSOLE_OUT (default <repo>/build/console-test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { BIN, REPO_ROOT, createApiKey, startServer } from '../api/lib/server.mjs';

const require = createRequire(import.meta.url);
const AXE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
const OUT = process.env.CT_CONSOLE_OUT || path.join(REPO_ROOT, 'build', 'console-test');
const CHROMIUM = process.env.CT_CHROMIUM || '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
const ASSET_BUDGET = 150 * 1024;

const P_EMPTY = randomUUID(); // a project with no token: the empty state
const P_MANY = randomUUID(); // 23 tokens: three pages of 10
const GATEWAY = 'https://gateway.test.example';

let srv;
let browser;
let context;
let page;
let base;
const problems = []; // page errors, console errors, CSP violations, foreign requests
const assetBytes = new Map();

async function apiCall(method, p, body) {
  const res = await fetch(`${srv.url}${p}`, {
    method, headers: { 'X-Auth-Token': srv.secretKey, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
}

/** True when this build serves the lifecycle routes (token rotation, expiry). */
const hasLifecycle = () => new Promise((resolve, reject) => execFile(BIN, ['routes'], { timeout: 15_000 },
  (err, out) => (err ? reject(err) : resolve(out.includes('/rotate')))));
let lifecycle = false;

const SEEDED = [];
async function seed() {
  // 23 tokens, created one after the other (distinct created_at), names not in creation
  // order, scopes varied so the filter has something to select.
  const names = ['kepler', 'alloy-eu', 'vector', 'zeta-logs', 'beta', 'fluent', 'otel-a', 'promtail',
    'grafana', 'mimir-w', 'loki-r', 'tempo', 'alpha', 'delta', 'omega', 'sigma', 'gamma',
    'lambda', 'theta', 'iota', 'epsilon', 'nova', 'rho'];
  for (const [i, name] of names.entries()) {
    const scopes = i % 3 === 0 ? ['write_only_logs'] : ['write_only_metrics', 'read_only_metrics'];
    const body = { project_id: P_MANY, name, token_scopes: scopes };
    if (lifecycle && i % 4 === 1) body.expires_at = new Date(Date.now() + (20 + 3 * i) * 86400e3).toISOString();
    const r = await apiCall('POST', '/cockpit/v1/regions/fr-par/tokens', body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    SEEDED.push(r.json);
  }
}

async function shot(name) {
  const dark = await page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches);
  const suffix = dark ? '-dark' : '';
  await page.evaluate(() => document.activeElement?.blur()); // no focus ring in the pictures
  await page.screenshot({ path: path.join(OUT, `${name}-desktop${suffix}.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: path.join(OUT, `${name}-375${suffix}.png`) });
  await axeCheck(`${name} at 375 px${suffix}`);
  await page.setViewportSize(DESKTOP);
}

/** No serious or critical axe violation on what the page shows now. */
async function axeCheck(label) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on ${label}: ${JSON.stringify(bad, null, 1)}`);
}

const dialog = () => page.getByRole('dialog');
const projectField = () => page.getByRole('combobox', { name: 'Project ID' });
const rows = () => page.locator('#tbody tr');
const rowNames = () => page.locator('#tbody th .name').allTextContents();
const totalText = () => page.locator('#total').textContent();

before(async () => {
  await mkdir(OUT, { recursive: true });
  srv = await startServer({ extraArgs: ['--console-gateway-url', GATEWAY] });
  base = srv.url;
  lifecycle = await hasLifecycle();
  await seed();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  context = await browser.newContext({ viewport: DESKTOP, permissions: ['clipboard-read', 'clipboard-write'] });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  // Reported by the page itself: CSP violations (they never reach the console otherwise).
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page = await context.newPage();
  page.setDefaultTimeout(5000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    // Chromium reports every non-2xx fetch this way, expected or not.
    if (/^Failed to load resource: the server responded with a status of (4\d\d|5\d\d)/.test(t)) return;
    problems.push(`console error: ${t}`);
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== base && u.protocol !== 'data:') problems.push(`request to another origin: ${r.url()}`);
  });
  page.on('response', async (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/console/') && !u.pathname.startsWith('/console/api/') && r.status() === 200) {
      assetBytes.set(u.pathname, (await r.body()).length);
    }
  });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  process.stdout.write(`console: screenshots in ${OUT}\n`);
});

test('served with a strict CSP, nosniff, no-referrer and ETags; /console redirects', async () => {
  const res = await fetch(`${base}/console/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const csp = res.headers.get('content-security-policy');
  for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(d), `CSP lacks ${d}: ${csp}`);
  }
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  const etag = res.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{20}"$/);
  const again = await fetch(`${base}/console/`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await again.arrayBuffer()).byteLength, 0);
  const js = await fetch(`${base}/console/app.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const redirect = await fetch(`${base}/console`, { redirect: 'manual' });
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get('location'), '/console/');
  assert.equal((await fetch(`${base}/console/nothing.js`)).status, 404);
  assert.equal((await fetch(`${base}/console/api/session`)).status, 401);
});

test('sign in: a wrong key shows the API message, a good one opens the token list', async () => {
  await page.goto(`${base}/console/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await axeCheck('sign in');
  await shot('signin');
  const key = page.getByLabel('API key');
  assert.equal(await key.getAttribute('type'), 'password');
  await key.fill(randomUUID());
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-error').filter({ hasText: 'Authentication is denied: unknown key.' }).waitFor();
  await key.fill('not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-error').filter({ hasText: 'not a valid key' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');

  await key.fill(srv.secretKey);
  await key.press('Enter');
  await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();
  assert.equal(await page.evaluate(() => Object.values(sessionStorage).join()), srv.secretKey);
  assert.equal(await page.evaluate((k) => Object.values(localStorage).includes(k), srv.secretKey), false);
  assert.deepEqual(await context.cookies(), []);
  const regions = await page.getByLabel('Region').locator('option').allTextContents();
  assert.deepEqual(regions, ['fr-par', 'nl-ams', 'pl-waw']);
});

test('empty state, then a Create dialog that shows the API error for an invalid name', async () => {
  await projectField().fill(P_EMPTY);
  await projectField().press('Enter');
  await page.getByRole('heading', { name: 'No tokens here yet' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('cockpit-tokens.project')), P_EMPTY);
  await axeCheck('empty state');
  await shot('empty');

  const opener = page.getByRole('button', { name: 'Create token' }).first();
  await opener.click();
  await dialog().getByRole('heading', { name: 'Create token' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'create-name', 'focus moves into the dialog');
  await page.keyboard.press('Escape');
  await dialog().waitFor({ state: 'hidden' });
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, 'focus returns to the opener');

  await opener.click();
  await dialog().getByLabel('Name').fill('no spaces allowed');
  await dialog().getByRole('button', { name: 'Create', exact: true }).click();
  await dialog().getByText('must be 3 to 50 characters of A-Z a-z 0-9 - _').waitFor();
  assert.equal(await dialog().getByLabel('Name').getAttribute('aria-invalid'), 'true');
  await axeCheck('create form with an error');
  await shot('create');
});

test('create with two scopes: the secret is shown once, copied, and works', async () => {
  const d = dialog();
  await d.getByLabel('Name').fill('prometheus-prod');
  await d.getByRole('checkbox', { name: /write_only_metrics/ }).check();
  await d.getByRole('checkbox', { name: /read_only_logs/ }).check();
  assert.match(await d.getByRole('checkbox', { name: /write_only_metrics/ }).evaluate((e) => e.labels[0].textContent), /Push metrics/);
  await d.getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('heading', { name: 'Token created' }).waitFor();
  const secretBox = page.getByRole('textbox', { name: 'Secret key' });
  const secret = await secretBox.inputValue();
  assert.match(secret, /^[A-Za-z0-9_-]{64}$/);
  assert.equal(await secretBox.getAttribute('readonly'), '');
  await page.getByText('This is the only time it is shown').waitFor();

  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await page.getByRole('button', { name: 'Copied', exact: true }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);

  const snippetText = () => page.locator('#snippet').textContent();
  assert.ok((await snippetText()).includes(`url: ${GATEWAY}/api/v1/push`), await snippetText());
  assert.ok((await snippetText()).includes(`credentials: ${secret}`));
  for (const [agent, want] of [['Prometheus remote_write (basic_auth)', 'basic_auth:'],
    ['Grafana Alloy', 'prometheus.remote_write'], ['Promtail', `tenant_id: ${secret}`],
    ['Fluent Bit', `bearer_token ${secret}`], ['OpenTelemetry Collector', 'otlphttp']]) {
    await page.getByLabel('Agent').selectOption({ label: agent });
    assert.ok((await snippetText()).includes(want), `${agent}: ${await snippetText()}`);
  }
  await page.getByRole('button', { name: 'Copy snippet' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), await snippetText());
  await axeCheck('secret shown once');
  await shot('secret');

  // The secret really authenticates an agent at the gateway's verifier.
  const v = await fetch(`${base}/auth/verify`, { headers: { 'X-Token': secret, 'X-Cockpit-Scope': 'write_only_metrics', 'X-Cockpit-Region': 'fr-par' } });
  assert.equal(v.status, 204);

  await page.getByRole('button', { name: 'Done' }).click();
  await dialog().waitFor({ state: 'hidden' });
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page');
  assert.equal(await page.evaluate((s) => [...Object.values(sessionStorage), ...Object.values(localStorage)].some((v) => v.includes(s)), secret), false);
  assert.deepEqual(await rowNames(), ['prometheus-prod']);
  const chips = await page.locator('#tbody .chip').evaluateAll((els) => els.map((e) => e.title));
  assert.deepEqual(chips, ['write_only_metrics', 'read_only_logs']);

  await page.reload();
  await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();
  await rows().first().waitFor();
  assert.deepEqual(await rowNames(), ['prometheus-prod'], 'still signed in after a reload');
  assert.ok(!(await page.content()).includes(secret), 'a reload shows no secret');
  assert.equal(await page.locator('#secret-key').inputValue(), '');
});

test('the ID copy button copies the full id', async () => {
  const id = await page.locator('#tbody .col-id code').first().getAttribute('title');
  await page.getByRole('button', { name: 'Copy ID of prometheus-prod' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), id);
});

test('paging across pages, with a page size choice and the total', async () => {
  await projectField().fill(P_MANY);
  await projectField().press('Enter');
  await page.locator('#total').filter({ hasText: 'of 23 tokens' }).waitFor();
  await page.getByLabel('Rows per page').selectOption('10');
  await page.locator('#total').filter({ hasText: '1–10 of 23 tokens' }).waitFor();
  const newestFirst = SEEDED.map((t) => t.name).reverse();
  assert.deepEqual(await rowNames(), newestFirst.slice(0, 10));
  await axeCheck('list');
  await shot('list');
  await page.emulateMedia({ colorScheme: 'dark' });
  await axeCheck('list, dark');
  await shot('list');
  await page.emulateMedia({ colorScheme: 'light' });

  await page.getByRole('button', { name: 'Page 2' }).click();
  await page.locator('#total').filter({ hasText: '11–20 of 23 tokens' }).waitFor();
  assert.deepEqual(await rowNames(), newestFirst.slice(10, 20));
  assert.equal(await page.getByRole('button', { name: 'Page 2' }).getAttribute('aria-current'), 'page');
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.locator('#total').filter({ hasText: '21–23 of 23 tokens' }).waitFor();
  assert.deepEqual(await rowNames(), newestFirst.slice(20));
  assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
});

test('sorting by the Name and Created headers, both ways', async () => {
  const byName = SEEDED.map((t) => t.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const created = SEEDED.map((t) => t.name);
  const header = (name) => page.getByRole('columnheader', { name });
  const check = async (label, sort, want) => {
    await page.locator(`th[aria-sort="${sort}"]`).filter({ hasText: label }).waitFor();
    await page.locator('#total').filter({ hasText: '1–10 of 23' }).waitFor();
    assert.deepEqual(await rowNames(), want.slice(0, 10), `${label} ${sort}`);
  };
  await header('Name').getByRole('button').click();
  await check('Name', 'ascending', byName);
  await header('Name').getByRole('button').press('Enter'); // the keyboard works as well
  await check('Name', 'descending', [...byName].reverse());
  await header('Created').getByRole('button').click();
  await check('Created', 'descending', [...created].reverse());
  await header('Created').getByRole('button').click();
  await check('Created', 'ascending', created);
});

test('the scope filter', async () => {
  await page.getByLabel('Scope', { exact: true }).selectOption('write_only_logs');
  const want = SEEDED.filter((t) => t.scopes.includes('write_only_logs')).map((t) => t.name);
  await page.locator('#total').filter({ hasText: `of ${want.length} tokens` }).waitFor();
  assert.deepEqual(await rowNames(), want);
  for (const titles of await page.locator('#tbody .chips').evaluateAll((uls) => uls.map((u) => [...u.querySelectorAll('.chip')].map((c) => c.title)))) {
    assert.ok(titles.includes('write_only_logs'), titles.join());
  }
  await page.getByLabel('Scope', { exact: true }).selectOption('');
  await page.locator('#total').filter({ hasText: 'of 23 tokens' }).waitFor();
});

test('delete with confirmation: the row goes and the total drops', async () => {
  const victim = (await rowNames())[0];
  const opener = page.getByRole('button', { name: `Delete ${victim}` });
  await opener.click();
  await dialog().getByRole('heading', { name: `Delete ${victim}?` }).waitFor();
  await axeCheck('delete confirmation');
  await shot('delete');
  await dialog().getByRole('button', { name: 'Cancel' }).click();
  await dialog().waitFor({ state: 'hidden' });
  assert.ok((await rowNames()).includes(victim), 'cancel deletes nothing');
  // By keyboard: the dialog opens on its safe choice (Cancel); Tab reaches Delete.
  await opener.focus();
  await page.keyboard.press('Enter');
  await dialog().getByRole('button', { name: 'Cancel' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Delete');
  await page.keyboard.press('Enter');
  await dialog().waitFor({ state: 'hidden' });
  await page.locator('#total').filter({ hasText: 'of 22 tokens' }).waitFor();
  assert.ok(!(await rowNames()).includes(victim));
  const id = SEEDED.find((t) => t.name === victim).id;
  assert.equal((await apiCall('GET', `/cockpit/v1/regions/fr-par/tokens/${id}`)).status, 404);
  await page.getByRole('status').filter({ hasText: `Token ${victim} deleted.` }).waitFor();
});

// Lifecycle (expiry, last use, rotation) where the server has it: the console shows the
// columns when the API returns the fields, and a Rotate button when the route exists.
test('lifecycle: expiry and last-use columns, expiry on create, rotate with a grace period', async (t) => {
  const session = (await apiCall('GET', '/console/api/session')).json;
  assert.equal(session.features.includes('rotate'), lifecycle, 'the session names the rotate feature iff the route is served');
  if (!lifecycle) {
    t.skip('this server has no token lifecycle (no rotate route)');
    return;
  }
  const project = randomUUID();
  const soon = new Date(Date.now() + 10 * 86400e3).toISOString();
  const r = await apiCall('POST', '/cockpit/v1/regions/fr-par/tokens',
    { project_id: project, name: 'expiring', token_scopes: ['read_only_traces'], expires_at: soon });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await projectField().fill(project);
  await projectField().press('Enter');
  await page.locator('#total').filter({ hasText: '1–1 of 1 token' }).waitFor();
  for (const name of ['Expires', 'Last used']) await page.getByRole('columnheader', { name }).waitFor();
  assert.equal(await page.locator('#tbody .col-expires').textContent(), 'in 10 days');
  assert.equal(await page.locator('#tbody .col-used').textContent(), 'Not yet');

  // Create with an expiry choice.
  await page.getByRole('button', { name: 'Create token' }).first().click();
  await dialog().getByLabel('Name').fill('with-expiry');
  await dialog().getByRole('checkbox', { name: /write_only_traces/ }).check();
  await dialog().getByLabel('Expires').selectOption({ label: 'In 30 days' });
  await dialog().getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('heading', { name: 'Token created' }).waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  await page.locator('#total').filter({ hasText: 'of 2 tokens' }).waitFor();
  const listed = (await apiCall('GET', `/cockpit/v1/regions/fr-par/tokens?project_id=${project}&order_by=name_asc`)).json.tokens;
  const withExpiry = listed.find((x) => x.name === 'with-expiry');
  const days = (Date.parse(withExpiry.expires_at) - Date.now()) / 86400e3;
  assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);

  // Rotate with a one-hour grace: a new secret, shown once; both work during the grace.
  await page.getByRole('button', { name: 'Rotate expiring' }).click();
  await dialog().getByRole('heading', { name: 'Rotate expiring?' }).waitFor();
  await axeCheck('rotate confirmation');
  await shot('rotate');
  await dialog().getByLabel('Old secret keeps working for').selectOption({ label: '1 hour' });
  await dialog().getByRole('button', { name: 'Rotate', exact: true }).click();
  await page.getByRole('heading', { name: 'Token rotated' }).waitFor();
  const secret = await page.getByRole('textbox', { name: 'Secret key' }).inputValue();
  assert.match(secret, /^[A-Za-z0-9_-]{64}$/);
  const v = await fetch(`${base}/auth/verify`, { headers: { 'X-Token': secret, 'X-Cockpit-Scope': 'read_only_traces', 'X-Cockpit-Region': 'fr-par' } });
  assert.equal(v.status, 204);
  await page.getByRole('button', { name: 'Done' }).click();
  await page.locator('#total').filter({ hasText: 'of 3 tokens' }).waitFor();
  const graced = (await page.locator('#tbody tr').filter({ hasText: 'expiring' }).locator('.col-expires').allTextContents()).sort();
  assert.deepEqual(graced, ['in 1 hour', 'in 10 days'].sort(), graced.join());
  assert.ok(!(await page.content()).includes(secret));

  // Rotating with no grace expires the old token at once: the Status filter finds it.
  await page.getByRole('button', { name: 'Rotate with-expiry' }).click();
  await dialog().getByLabel('Old secret keeps working for').selectOption({ label: 'No grace: stops at once' });
  await dialog().getByRole('button', { name: 'Rotate', exact: true }).click();
  await page.getByRole('heading', { name: 'Token rotated' }).waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  await page.locator('#total').filter({ hasText: 'of 4 tokens' }).waitFor();
  await page.getByLabel('Status').selectOption({ label: 'Expired' });
  await page.locator('#total').filter({ hasText: '1–1 of 1 token' }).waitFor();
  assert.deepEqual(await rowNames(), ['with-expiry']);
  assert.match(await page.locator('#tbody .col-expires').textContent(), /^Expired /);
  await page.getByLabel('Status').selectOption({ label: 'Active' });
  await page.locator('#total').filter({ hasText: '1–3 of 3 tokens' }).waitFor();
  await page.getByLabel('Status').selectOption({ label: 'Any status' });
  await page.locator('#total').filter({ hasText: 'of 4 tokens' }).waitFor();
  await axeCheck('list with lifecycle columns');
  await shot('lifecycle');
});

test('a lost connection says so', async () => {
  const nameSort = page.getByRole('columnheader', { name: 'Name' }).getByRole('button');
  await context.route('**/cockpit/v1/**', (r) => r.abort('internetdisconnected'));
  await nameSort.click();
  await page.getByRole('alert').filter({ hasText: 'Cannot reach the server' }).waitFor();
  await context.unroute('**/cockpit/v1/**');
  await nameSort.click();
  await page.locator('#banner').waitFor({ state: 'hidden' });
  // The aborted request's console line is Chromium's, not the page's fault.
  for (let i = problems.length - 1; i >= 0; i--) {
    if (/net::ERR_INTERNET_DISCONNECTED/.test(problems[i])) problems.splice(i, 1);
  }
});

test('sign out forgets the key', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.getByLabel('API key').inputValue(), '');
});

test('a key limited to one project starts there, and is told when it asks for another', async () => {
  const own = randomUUID();
  const key = await createApiKey(srv.dbUri, [own]);
  const r = await fetch(`${base}/cockpit/v1/regions/fr-par/tokens`, { method: 'POST',
    headers: { 'X-Auth-Token': key.secret_key }, body: JSON.stringify({ project_id: own, name: 'own-agent' }) });
  assert.equal(r.status, 200);
  const p = await context.newPage(); // a new tab: its own sessionStorage, the same localStorage
  p.setDefaultTimeout(5000);
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    await p.goto(`${base}/console/`);
    await p.getByLabel('API key').fill(key.secret_key);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('#total').filter({ hasText: '1–1 of 1 token' }).waitFor();
    const field = p.getByRole('combobox', { name: 'Project ID' });
    assert.equal(await field.inputValue(), own);
    assert.deepEqual(await p.locator('#tbody th .name').allTextContents(), ['own-agent']);
    await field.fill(P_MANY);
    await field.press('Enter');
    await p.locator('#project-error').filter({ hasText: 'This API key may not act on that project.' }).waitFor();
    assert.equal(await field.getAttribute('aria-invalid'), 'true');

    // The key is revoked while the tab is open: the next call signs the tab out, saying why.
    await new Promise((resolve, reject) => execFile(BIN, ['apikey', 'delete', key.access_key, '--db', srv.dbUri],
      { timeout: 15_000 }, (err) => (err ? reject(err) : resolve())));
    await field.fill(own);
    await field.press('Enter');
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.locator('#signin-error').filter({ hasText: 'You were signed out: Authentication is denied: unknown key.' }).waitFor();
    assert.equal(await p.evaluate(() => sessionStorage.length), 0);
  } finally {
    await p.close();
  }
});

test('429 after repeated failures shows when to retry', async () => {
  const strict = await startServer({ extraArgs: ['--auth-fail-limit', '1', '--auth-fail-window', '120'] });
  try {
    const p = await context.newPage();
    p.setDefaultTimeout(5000);
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await p.goto(`${strict.url}/console/`);
    for (let i = 0; i < 2; i++) {
      await p.getByLabel('API key').fill(randomUUID());
      await p.getByRole('button', { name: 'Sign in' }).click();
    }
    await p.locator('#signin-error').filter({ hasText: /Too many failed sign-in attempts.*Try again in \d+ s\./ }).waitFor();
    await p.close();
  } finally {
    await strict.stop();
  }
});

test('the console is small, and nothing went wrong in the page', async () => {
  const total = [...assetBytes.values()].reduce((a, b) => a + b, 0);
  assert.ok(assetBytes.has('/console/app.js') && assetBytes.has('/console/style.css'), [...assetBytes.keys()].join());
  assert.ok(total <= ASSET_BUDGET, `console assets ${total} bytes > ${ASSET_BUDGET}`);
  process.stdout.write(`console: ${assetBytes.size} assets, ${total} bytes\n`);
  assert.deepEqual(problems, []);
});

test('--console off: no console, no session endpoint', async () => {
  const off = await startServer({ extraArgs: ['--console', 'off'] });
  try {
    for (const p of ['/console/', '/console/app.js', '/console']) {
      assert.equal((await fetch(`${off.url}${p}`, { redirect: 'manual' })).status, 404, p);
    }
    const s = await fetch(`${off.url}/console/api/session`, { headers: { 'X-Auth-Token': off.secretKey } });
    assert.equal(s.status, 404);
    assert.equal((await fetch(`${off.url}/healthz`)).status, 200);
  } finally {
    await off.stop();
  }
});
