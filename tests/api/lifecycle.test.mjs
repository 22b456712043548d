// Token lifecycle over raw HTTP (ours, not Scaleway's: docs/API.md "Token lifecycle"):
// expires_at on Create and on every Token, expiry on /auth/verify, the expired= list filter,
// the server's lifetime limits. Fresh random project ids: also runs on a shared database.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, createApiKey, withServerLog } from './lib/server.mjs';
import { request, tokensPath, tokenPath, query, show } from './lib/http.mjs';
import { expectJsonOk, expectInvalidArg, expectNotFound, expectStatus, expectToken } from './lib/expect.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv;
const T = (name, fn) => it(name, { timeout: 60_000 }, withServerLog(() => srv, fn));

const create = (s, body) => request(s, { method: 'POST', path: tokensPath(), body });

async function mk(s, body) {
  const res = await create(s, { name: 'agent', token_scopes: ['read_only_metrics'], ...body });
  return expectToken(expectJsonOk(res), { secret: 'set' }, show(res));
}

const verify = (s, secret) => request(s, {
  path: '/auth/verify', auth: null,
  headers: { 'X-Token': secret, 'X-Cockpit-Scope': 'read_only_metrics', 'X-Cockpit-Region': 'fr-par' },
});

async function listed(s, pairs) {
  const res = await request(s, { path: tokensPath() + query(pairs) });
  return expectJsonOk(res);
}

const iso = (ms) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

describe('token lifecycle: expiry', () => {
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  T('expires_at with any offset is stored in UTC and shown on create, get and list', async () => {
    const p = randomUUID();
    const tok = await mk(srv, { project_id: p, expires_at: '2099-06-01T14:30:00.25+02:00' });
    assert.equal(tok.expires_at, '2099-06-01T12:30:00.250000Z');
    assert.equal(tok.last_used_at, null);
    const got = expectJsonOk(await request(srv, { path: tokenPath(tok.id) }));
    expectToken(got, { secret: 'null', expires_at: '2099-06-01T12:30:00.250000Z' });
    const page = await listed(srv, [['project_id', p]]);
    assert.equal(page.tokens[0].expires_at, '2099-06-01T12:30:00.250000Z');
    const never = await mk(srv, { project_id: p, expires_at: null });
    assert.equal(never.expires_at, null, 'null = never');
  });

  T('expires_at in the past, now, or not a timestamp -> 400 on expires_at', async () => {
    const p = randomUUID();
    expectInvalidArg(await create(srv, { project_id: p, name: 'abc', expires_at: '2020-01-01T00:00:00Z' }),
      'expires_at', 'constraint');
    expectInvalidArg(await create(srv, { project_id: p, name: 'abc', expires_at: 'tomorrow' }), 'expires_at', 'format');
    expectInvalidArg(await create(srv, { project_id: p, name: 'abc', expires_at: 4102444800 }), 'expires_at', 'format');
    assert.equal((await listed(srv, [['project_id', p]])).total_count, 0, 'nothing was created');
  });

  T('an expired token is refused (401, reason expired) but stays readable and listable', async () => {
    const p = randomUUID();
    const exp = Date.now() + 1500;
    const tok = await mk(srv, { project_id: p, expires_at: iso(exp) });
    const live = await mk(srv, { project_id: p, name: 'live' });
    assert.equal((await verify(srv, tok.secret_key)).status, 204, 'accepted before its expiry');
    await sleep(Math.max(0, exp - Date.now()) + 50);
    const res = await verify(srv, tok.secret_key);
    assert.equal(res.status, 401, show(res));
    assert.equal(res.json.reason, 'expired', show(res));
    assert.equal(res.json.method, 'token', show(res));
    assert.equal((await verify(srv, live.secret_key)).status, 204);
    expectJsonOk(await request(srv, { path: tokenPath(tok.id) }));
    const expired = await listed(srv, [['project_id', p], ['expired', 'true']]);
    assert.deepEqual(expired.tokens.map((t) => t.id), [tok.id]);
    assert.equal(expired.total_count, 1);
    const alive = await listed(srv, [['project_id', p], ['expired', 'false']]);
    assert.deepEqual(alive.tokens.map((t) => t.id), [live.id]);
    assert.equal(alive.total_count, 1);
    assert.equal((await listed(srv, [['project_id', p]])).total_count, 2);
    const metrics = await request(srv, { path: '/metrics', auth: null });
    assert.match(metrics.text, /cockpit_tokens_verify_decisions_total\{decision="expired"\} [1-9]/);
  });

  T('/metrics: tokens expiring within 7 days, per region', async () => {
    const gauge = async () => {
      const m = (await request(srv, { path: '/metrics', auth: null })).text;
      const hit = m.match(/^cockpit_tokens_tokens_expiring_7d\{region="fr-par"\} (\d+)$/m);
      assert.ok(hit, 'the gauge is exported for fr-par');
      return Number(hit[1]);
    };
    const p = randomUUID();
    const before = await gauge();
    await mk(srv, { project_id: p, expires_at: iso(Date.now() + 86400_000) });
    await mk(srv, { project_id: p, expires_at: iso(Date.now() + 30 * 86400_000) });
    await mk(srv, { project_id: p });
    assert.equal(await gauge(), before + 1, 'only the one expiring within 7 days');
  });

  T('expired= takes true or false only', async () => {
    for (const bad of ['yes', '1', 'TRUE']) {
      expectInvalidArg(await request(srv, { path: tokensPath() + query([['expired', bad]]) }), 'expired', 'constraint');
    }
  });
});

describe('token lifecycle: server limits', () => {
  before(async () => {
    srv = await startServer({ extraArgs: ['--max-token-lifetime', '3600', '--default-token-lifetime', '600'] });
  });
  after(async () => { if (srv) await srv.stop(); });

  T('--default-token-lifetime applies without expires_at; --max-token-lifetime bounds it', async () => {
    const p = randomUUID();
    const t0 = Date.now();
    const tok = await mk(srv, { project_id: p });
    const ms = Date.parse(tok.expires_at) - t0;
    assert.ok(ms > 590_000 && ms < 610_000, `default lifetime 600 s, got ${ms} ms`);
    expectInvalidArg(await create(srv, { project_id: p, name: 'abc', expires_at: iso(Date.now() + 3700_000) }),
      'expires_at', 'constraint');
    await mk(srv, { project_id: p, expires_at: iso(Date.now() + 3000_000) });
  });
});

const rotate = (s, id, body, opts = {}) =>
  request(s, { method: 'POST', path: `${tokenPath(id)}/rotate`, body, ...opts });

describe('token lifecycle: rotation', () => {
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  T('rotate: a new token, both work during the grace, then only the new one', async () => {
    const p = randomUUID();
    const old = await mk(srv, { project_id: p, name: 'rotme', token_scopes: ['read_only_metrics', 'write_only_logs'] });
    const t0 = Date.now();
    const res = await rotate(srv, old.id, { grace_period: '1.5s' });
    const fresh = expectToken(expectJsonOk(res), {
      project_id: p, name: 'rotme', scopes: ['read_only_metrics', 'write_only_logs'], secret: 'set',
    }, show(res));
    assert.notEqual(fresh.id, old.id);
    assert.notEqual(fresh.secret_key, old.secret_key);
    assert.equal(fresh.expires_at, null, 'no expiry before, none after (no default lifetime)');
    const oldNow = expectJsonOk(await request(srv, { path: tokenPath(old.id) }));
    const cap = Date.parse(oldNow.expires_at) - t0;
    assert.ok(cap > 1000 && cap < 3000, `old expires_at is about now + 1.5 s (${cap} ms)`);
    assert.equal((await verify(srv, old.secret_key)).status, 204, 'old works during the grace');
    assert.equal((await verify(srv, fresh.secret_key)).status, 204, 'new works');
    await sleep(Math.max(0, Date.parse(oldNow.expires_at) - Date.now()) + 50);
    const denied = await verify(srv, old.secret_key);
    assert.equal(denied.status, 401);
    assert.equal(denied.json.reason, 'expired');
    assert.equal((await verify(srv, fresh.secret_key)).status, 204, 'new still works');
    // A rotated token can be rotated again; no body = no grace.
    const third = expectJsonOk(await rotate(srv, fresh.id));
    assert.equal((await verify(srv, fresh.secret_key)).status, 401, 'grace 0s: refused at once');
    assert.equal((await verify(srv, third.secret_key)).status, 204);
    const page = await listed(srv, [['project_id', p]]);
    assert.equal(page.total_count, 3, 'rotation keeps the old tokens until deleted');
  });

  T('rotate: bad grace_period -> 400; unknown token -> 404; GET -> 405', async () => {
    const p = randomUUID();
    const tok = await mk(srv, { project_id: p });
    for (const g of ['3600', '-1s', '1h', '', 'abc']) {
      expectInvalidArg(await rotate(srv, tok.id, { grace_period: g }), 'grace_period', 'format');
    }
    expectInvalidArg(await rotate(srv, tok.id, { grace_period: '604801s' }), 'grace_period', 'constraint');
    expectInvalidArg(await rotate(srv, tok.id, '{'), 'body', 'format');
    expectInvalidArg(await rotate(srv, 'not-a-uuid', {}), 'token_id', 'format');
    const unknown = randomUUID();
    expectNotFound(await rotate(srv, unknown, {}), unknown);
    expectStatus(await request(srv, { path: `${tokenPath(tok.id)}/rotate` }), 405);
    assert.equal((await listed(srv, [['project_id', p]])).total_count, 1, 'nothing was created');
  });

  T('rotate: a project-limited key rotates its own tokens; another project\'s is 404', async () => {
    const [p1, p2] = [randomUUID(), randomUUID()];
    const key = await createApiKey(srv.dbUri, [p1]);
    const mine = await mk(srv, { project_id: p1 });
    const theirs = await mk(srv, { project_id: p2 });
    expectNotFound(await rotate(srv, theirs.id, {}, { auth: key.secret_key }), theirs.id);
    expectJsonOk(await rotate(srv, mine.id, { grace_period: '60s' }, { auth: key.secret_key }));
  });
});

describe('token lifecycle: last use', () => {
  before(async () => { srv = await startServer({ extraArgs: ['--last-used-interval', '1'] }); });
  after(async () => { if (srv) await srv.stop(); });

  T('last_used_at appears within the interval and survives a restart', async () => {
    const p = randomUUID();
    const tok = await mk(srv, { project_id: p });
    const unused = await mk(srv, { project_id: p, name: 'unused' });
    const before = Math.floor(Date.now() / 1000) * 1000;
    assert.equal((await verify(srv, tok.secret_key)).status, 204);
    let got;
    for (let i = 0; i < 40; i++) { // the interval is 1 s: allow 4 s on a loaded machine
      got = expectJsonOk(await request(srv, { path: tokenPath(tok.id) }));
      if (got.last_used_at) break;
      await sleep(100);
    }
    assert.notEqual(got.last_used_at, null, 'last_used_at written within the interval');
    assert.match(got.last_used_at, /\.000000Z$/, 'whole seconds');
    const at = Date.parse(got.last_used_at);
    assert.ok(at >= before && at <= Date.now(), `last_used_at ${got.last_used_at} is the verify's second`);
    const list = await listed(srv, [['project_id', p], ['order_by', 'name_asc']]);
    assert.deepEqual(list.tokens.map((t) => t.last_used_at), [got.last_used_at, null]);
    await srv.restart();
    const again = expectJsonOk(await request(srv, { path: tokenPath(tok.id) }));
    assert.equal(again.last_used_at, got.last_used_at, 'kept across a restart');
    assert.equal(expectJsonOk(await request(srv, { path: tokenPath(unused.id) })).last_used_at, null);
  });
});
