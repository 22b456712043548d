// Raw HTTP tests of every rule of /work/shared/spec/tokens-api.md, against the real binary.
// Every test uses fresh random project ids, so the suite also runs on a shared database
// (CT_TEST_DB_URI).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, createApiKey, withServerLog } from './lib/server.mjs';
import { request, tokensPath, tokenPath, query, show } from './lib/http.mjs';
import {
  SCOPES, canonical, expectStatus, expectJsonOk, expectJsonError, expectInvalidArg, expectNotFound,
  expectDenied, expectPermissionDenied, expectToken, byCreatedAsc, byNameAsc, cmp,
} from './lib/expect.mjs';

let srv;
const T = (name, fn) => it(name, { timeout: 60_000 }, withServerLog(() => srv, fn));

// ---- small helpers -------------------------------------------------------------------------

const create = (body, opts = {}) => request(srv, { method: 'POST', path: tokensPath(opts.region), body, ...opts });

async function mkToken(projectId, name = 'tok', scopes, opts = {}) {
  const body = { project_id: projectId, name };
  if (scopes !== undefined) body.token_scopes = scopes;
  const res = await create(body, opts);
  return expectToken(expectJsonOk(res), { project_id: projectId, name, secret: 'set' }, show(res));
}

/** A request that must be answered: a connection closed or reset without an answer fails clearly. */
async function answered(promise) {
  try {
    return await promise;
  } catch (err) {
    throw new Error(`the connection ended without an HTTP response (${err.message}). If the server did ` +
      'answer early, it must drain or linger before closing (RFC 9112 section 9.6), or clients see a reset');
  }
}

const list = (pairs, opts = {}) => request(srv, { path: tokensPath(opts.region) + query(pairs), ...opts });

async function listOk(pairs, opts) {
  const res = await list(pairs, opts);
  const body = expectJsonOk(res);
  assert.deepEqual(Object.keys(body).sort(), ['tokens', 'total_count'], show(res));
  assert.equal(typeof body.total_count, 'number', `total_count must be a JSON number\n${show(res)}`);
  assert.ok(Number.isInteger(body.total_count) && body.total_count >= 0, show(res));
  assert.ok(Array.isArray(body.tokens), show(res));
  assert.equal(res.headers['x-total-count'], undefined, `no X-Total-Count header\n${show(res)}`);
  for (const t of body.tokens) expectToken(t, { secret: 'null' }, show(res));
  return body;
}

/** Every token of a list query, fetched page by page with page_size `size`. */
async function allPages(pairs, size, opts) {
  const out = [];
  let total = null;
  for (let page = 1; page < 1000; page++) {
    const body = await listOk([...pairs, ['page', page], ['page_size', size]], opts);
    if (total === null) total = body.total_count;
    assert.equal(body.total_count, total, 'total_count is the same on every page');
    out.push(...body.tokens);
    if (body.tokens.length < size) break;
  }
  return { tokens: out, total };
}

const ids = (tokens) => tokens.map((t) => t.id);

// ---- suite ------------------------------------------------------------------------------------

describe('raw HTTP API', () => {
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  describe('transport', () => {
    T('GET /healthz answers 200', async () => {
      const res = await request(srv, { path: '/healthz', auth: null });
      expectStatus(res, 200);
    });

    T('responses carry X-Request-Id and X-Content-Type-Options: nosniff (success and error)', async () => {
      const p = randomUUID();
      const ok = await create({ project_id: p, name: 'hdr' });
      const err = await request(srv, { path: tokenPath(randomUUID()) });
      const unauth = await request(srv, { path: tokensPath(), auth: null });
      for (const res of [ok, err, unauth]) {
        assert.ok(res.headers['x-request-id'] && res.headers['x-request-id'].length > 0,
          `X-Request-Id missing\n${show(res)}`);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', show(res));
      }
      assert.notEqual(ok.headers['x-request-id'], err.headers['x-request-id'], 'request ids differ');
    });

    T('header names are case-insensitive (x-auth-token, X-AUTH-TOKEN, content-type)', async () => {
      const p = randomUUID();
      for (const name of ['x-auth-token', 'X-AUTH-TOKEN', 'X-Auth-Token', 'x-AuTh-ToKeN']) {
        const res = await request(srv, {
          method: 'POST', path: tokensPath(), auth: null, contentType: null,
          headers: { [name]: srv.secretKey, 'content-type': 'application/json' },
          body: { project_id: p, name: 'case-test' },
        });
        expectJsonOk(res);
        const got = await request(srv, { path: tokenPath(res.json.id), auth: null, headers: { [name]: srv.secretKey } });
        expectJsonOk(got);
      }
    });
  });

  describe('create', () => {
    T('returns 200 and a Token with its secret, exact field order and formats', async () => {
      const p = randomUUID();
      const res = await create({ project_id: p, name: 'my-token', token_scopes: ['write_only_metrics', 'read_only_metrics'] });
      const tok = expectToken(expectJsonOk(res, 200), {
        project_id: p, name: 'my-token', scopes: ['read_only_metrics', 'write_only_metrics'],
        region: 'fr-par', secret: 'set',
      }, show(res));
      // exact bytes of the field order as sent on the wire
      const order = ['"id"', '"project_id"', '"name"', '"created_at"', '"updated_at"', '"scopes"', '"secret_key"', '"region"',
        '"expires_at"', '"last_used_at"']
        .map((k) => res.text.indexOf(k));
      assert.deepEqual([...order].sort((a, b) => a - b), order, `wire field order\n${show(res)}`);
      assert.ok(order.every((i) => i >= 0));
      assert.equal(tok.region, 'fr-par');
    });

    T('scopes are deduplicated and emitted in canonical enum order', async () => {
      const p = randomUUID();
      const reversed = [...SCOPES].reverse();
      const all = await mkToken(p, 'all-scopes', [...reversed, ...SCOPES]);
      assert.deepEqual(all.scopes, SCOPES);
      const some = await mkToken(p, 'some-scopes', ['write_only_traces', 'read_only_logs', 'write_only_traces',
        'full_access_alert_manager', 'read_only_logs']);
      assert.deepEqual(some.scopes, ['read_only_logs', 'full_access_alert_manager', 'write_only_traces']);
      for (const s of SCOPES) {
        const one = await mkToken(p, `one-${s.length}`, [s, s]);
        assert.deepEqual(one.scopes, [s]);
      }
      // and the same on Get
      const got = await request(srv, { path: tokenPath(some.id) });
      assert.deepEqual(expectJsonOk(got).scopes, ['read_only_logs', 'full_access_alert_manager', 'write_only_traces']);
    });

    T('the largest token (50-char name, all 9 scopes) round-trips through create, get and list', async () => {
      const p = randomUUID();
      const name = 'N'.repeat(25) + '-'.repeat(5) + '_'.repeat(5) + '9'.repeat(15);
      assert.equal(name.length, 50);
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await mkToken(p, name, [...SCOPES].reverse()));
      for (const t of made) {
        assert.deepEqual(t.scopes, SCOPES);
        const res = await request(srv, { path: tokenPath(t.id) });
        expectToken(expectJsonOk(res), { project_id: p, name, scopes: SCOPES, secret: 'null' }, show(res));
      }
      const l = await listOk([['project_id', p], ['page_size', 1000]]);
      assert.equal(l.total_count, 3);
      assert.deepEqual(ids(l.tokens), ids(made));
      for (const t of l.tokens) assert.deepEqual(t.scopes, SCOPES);
      const nl = await listOk([['project_id', p], ['token_scopes', 'write_only_traces']]);
      assert.equal(nl.tokens.length, 3);
    });

    T('token_scopes absent, null or [] give a token with no scope', async () => {
      const p = randomUUID();
      for (const body of [{ project_id: p, name: 'absent' }, { project_id: p, name: 'null', token_scopes: null },
        { project_id: p, name: 'empty', token_scopes: [] }]) {
        const res = await create(body);
        expectToken(expectJsonOk(res), { project_id: p, name: body.name, scopes: [], secret: 'set' }, show(res));
      }
    });

    T('every create returns a fresh id and a fresh 64-char secret', async () => {
      const p = randomUUID();
      const seenIds = new Set();
      const seenSecrets = new Set();
      for (let i = 0; i < 8; i++) {
        const t = await mkToken(p, 'same', ['read_only_metrics']);
        seenIds.add(t.id);
        seenSecrets.add(t.secret_key);
      }
      assert.equal(seenIds.size, 8);
      assert.equal(seenSecrets.size, 8);
    });

    T('Go client shape: token_scopes null -> 200 with "scopes":[]', async () => {
      const p = randomUUID();
      const res = await create(`{"project_id":"${p}","name":"x-y-z","token_scopes":null}`);
      expectToken(expectJsonOk(res), { project_id: p, name: 'x-y-z', scopes: [], secret: 'set' }, show(res));
      assert.ok(res.text.includes('"scopes":[]'), `scopes must be serialized as []\n${show(res)}`);
    });

    T('Go client shape: project_id "" with token_scopes null -> 400 required', async () => {
      const res = await create('{"project_id":"","name":"abc","token_scopes":null}');
      expectInvalidArg(res, 'project_id', 'required');
    });

    T('JS/Python shape: Content-Type application/json; charset=utf-8 is accepted', async () => {
      const p = randomUUID();
      const res = await create({ name: 'js-client', project_id: p, token_scopes: ['read_only_logs'] },
        { contentType: 'application/json; charset=utf-8' });
      expectToken(expectJsonOk(res), { project_id: p, name: 'js-client', scopes: ['read_only_logs'], secret: 'set' }, show(res));
    });

    T('any key order and whitespace in the body', async () => {
      const p = randomUUID();
      const body = `\r\n \t{ "token_scopes" :\n[ "write_only_logs" ,"read_only_metrics" ] ,\t"name"  : "spaced" ,\n "project_id":"${p}"  }\n\n`;
      const res = await create(body);
      expectToken(expectJsonOk(res), { project_id: p, name: 'spaced', scopes: ['read_only_metrics', 'write_only_logs'], secret: 'set' }, show(res));
    });

    T('name: 3 and 50 characters, [A-Za-z0-9-_] are accepted; duplicates are allowed', async () => {
      const p = randomUUID();
      const n50 = 'A'.repeat(20) + 'z'.repeat(20) + '0123456789';
      assert.equal(n50.length, 50);
      for (const name of ['abc', n50, 'a_b-C9', '---', '___', '123', 'Az_-09']) await mkToken(p, name);
      const a = await mkToken(p, 'twice');
      const b = await mkToken(p, 'twice');
      assert.notEqual(a.id, b.id);
      const l = await listOk([['project_id', p], ['page_size', 100]]);
      assert.equal(l.tokens.filter((t) => t.name === 'twice').length, 2);
    });

    T('name: too short, too long, bad characters -> 400 on argument "name"', async () => {
      const p = randomUUID();
      const bad = ['ab', 'a', 'A'.repeat(51), 'a'.repeat(200), 'has space', 'dot.ted', 'sl/ash', 'h\u00e9llo', 'tab\tx',
        'emoji\u{1F600}', 'semi;colon', '<script>'];
      for (const name of bad) {
        const res = await create({ project_id: p, name });
        expectInvalidArg(res, 'name', ['constraint', 'format']);
      }
      // An escaped NUL is valid JSON; rejecting it as a body error (house style) is fine too.
      expectInvalidArg(await create({ project_id: p, name: 'nul\u0000byte' }), /^(name|body)$/, ['constraint', 'format']);
      // nothing was created
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 0);
    });

    T('name: missing, null, "" or not a string -> 400 on argument "name"', async () => {
      const p = randomUUID();
      expectInvalidArg(await create({ project_id: p }), 'name', 'required');
      expectInvalidArg(await create({ project_id: p, name: null }), 'name', 'required');
      expectInvalidArg(await create({ project_id: p, name: '' }), 'name');
      expectInvalidArg(await create({ project_id: p, name: 12345 }), 'name');
      expectInvalidArg(await create({ project_id: p, name: ['abc'] }), 'name');
    });

    T('project_id "", null or missing -> 400 required', async () => {
      expectInvalidArg(await create({ project_id: '', name: 'abc' }), 'project_id', 'required');
      expectInvalidArg(await create({ project_id: null, name: 'abc' }), 'project_id', 'required');
      expectInvalidArg(await create({ name: 'abc' }), 'project_id', 'required');
    });

    T('project_id not a UUID -> 400 format', async () => {
      const u = randomUUID();
      for (const pid of ['not-a-uuid', '1234', u.replace(/-/g, ''), `{${u}}`, `${u}0`, u.slice(0, 35), ` ${u}`,
        'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz']) {
        expectInvalidArg(await create({ project_id: pid, name: 'abc' }), 'project_id', 'format');
      }
      expectInvalidArg(await create({ project_id: 42, name: 'abc' }), 'project_id');
    });

    T('token_scopes: an unknown value -> 400 constraint (unknown_scope included)', async () => {
      const p = randomUUID();
      for (const scopes of [['unknown_scope'], ['bogus'], ['read_only_metrics', 'nope'], ['READ_ONLY_METRICS'], ['']]) {
        expectInvalidArg(await create({ project_id: p, name: 'abc', token_scopes: scopes }), 'token_scopes', 'constraint');
      }
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 0, 'nothing created');
    });

    T('token_scopes of the wrong JSON type -> 400 on token_scopes', async () => {
      const p = randomUUID();
      for (const scopes of ['read_only_metrics', 5, { a: 1 }, [1], [null], [['read_only_metrics']]]) {
        expectInvalidArg(await create({ project_id: p, name: 'abc', token_scopes: scopes }), 'token_scopes');
      }
    });

    T('malformed JSON -> 400 invalid_arguments naming the body', async () => {
      const p = randomUUID();
      for (const body of ['{', 'not json', `{"project_id":"${p}","name":"abc",}`, `{"project_id":"${p}" "name":"abc"}`,
        `{"project_id":"${p}","name":"abc"} trailing`, Buffer.from([0xff, 0xfe, 0x7b])]) {
        const res = await create(body);
        expectInvalidArg(res, /body/i);
      }
    });

    T('a body that is not a JSON object, or empty -> 400 invalid_arguments', async () => {
      for (const body of ['[]', 'null', '"str"', '42', 'true', '']) {
        const res = await create(body);
        expectJsonError(res, 400, 'invalid_arguments');
        expectInvalidArg(res, /.+/);
      }
    });

    T('a 2 MiB body with Expect: 100-continue (as curl sends) -> 413 JSON', async () => {
      const p = randomUUID();
      const pad = 'x'.repeat(2 * 1024 * 1024);
      const res = await answered(create(`{"project_id":"${p}","name":"big","pad":"${pad}"}`, { expectContinue: true }));
      expectJsonError(res, 413);
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 0);
    });

    T('a 2 MiB body (Content-Length) -> 413 JSON', async () => {
      const p = randomUUID();
      const pad = 'x'.repeat(2 * 1024 * 1024);
      const res = await answered(create(`{"project_id":"${p}","name":"big","pad":"${pad}"}`));
      expectJsonError(res, 413);
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 0);
    });

    T('a 2 MiB chunked body (no Content-Length) -> 413 JSON', async () => {
      const p = randomUUID();
      const pad = ' '.repeat(2 * 1024 * 1024);
      const res = await answered(create(`{"project_id":"${p}",${pad}"name":"big"}`, { chunked: true }));
      expectJsonError(res, 413);
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 0);
    });

    T('a created token can be read back: same fields, secret_key null', async () => {
      const p = randomUUID();
      const t = await mkToken(p, 'roundtrip', ['full_access_logs_rules', 'read_only_traces']);
      const res = await request(srv, { path: tokenPath(t.id) });
      const got = expectToken(expectJsonOk(res), { secret: 'null' }, show(res));
      assert.deepEqual({ ...got, secret_key: t.secret_key }, t);
    });
  });

  describe('get and delete', () => {
    T('GET a token -> 200, Content-Type exactly application/json, secret_key null (present)', async () => {
      const p = randomUUID();
      const t = await mkToken(p, 'getme', ['read_only_metrics']);
      const res = await request(srv, { path: tokenPath(t.id) });
      const got = expectToken(expectJsonOk(res), { project_id: p, name: 'getme', scopes: ['read_only_metrics'],
        region: 'fr-par', secret: 'null' }, show(res));
      assert.ok(res.text.includes('"secret_key":null'), `secret_key present as null\n${show(res)}`);
      assert.equal(got.created_at, t.created_at);
      assert.equal(got.id, t.id);
    });

    T('token_id not a UUID -> 400 invalid_arguments token_id format (GET and DELETE)', async () => {
      const u = randomUUID();
      for (const id of ['abc', '1234', u.replace(/-/g, ''), `${u}0`, u.slice(1), 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz']) {
        for (const method of ['GET', 'DELETE']) {
          const res = await request(srv, { method, path: tokenPath(id) });
          expectInvalidArg(res, 'token_id', 'format');
        }
      }
    });

    T('unknown id -> 404 not_found body with resource "token" and resource_id (GET and DELETE)', async () => {
      const id = randomUUID();
      expectNotFound(await request(srv, { path: tokenPath(id) }), id);
      expectNotFound(await request(srv, { method: 'DELETE', path: tokenPath(id) }), id);
    });

    T('a token of fr-par fetched or deleted via nl-ams / pl-waw -> 404, and it survives', async () => {
      const p = randomUUID();
      const t = await mkToken(p, 'regional');
      for (const region of ['nl-ams', 'pl-waw']) {
        expectNotFound(await request(srv, { path: tokenPath(t.id, region) }), t.id);
        expectNotFound(await request(srv, { method: 'DELETE', path: tokenPath(t.id, region) }), t.id);
        const l = await listOk([['project_id', p]], { region });
        assert.equal(l.total_count, 0);
        assert.deepEqual(l.tokens, []);
      }
      expectJsonOk(await request(srv, { path: tokenPath(t.id) }));
    });

    T('tokens created in nl-ams carry region nl-ams and live only there', async () => {
      const p = randomUUID();
      const res = await create({ project_id: p, name: 'amsterdam' }, { region: 'nl-ams' });
      const t = expectToken(expectJsonOk(res), { region: 'nl-ams', secret: 'set' }, show(res));
      expectToken(expectJsonOk(await request(srv, { path: tokenPath(t.id, 'nl-ams') })), { region: 'nl-ams', secret: 'null' });
      expectNotFound(await request(srv, { path: tokenPath(t.id, 'fr-par') }), t.id);
      assert.equal((await listOk([['project_id', p]], { region: 'fr-par' })).total_count, 0);
      assert.equal((await listOk([['project_id', p]], { region: 'nl-ams' })).total_count, 1);
    });

    T('DELETE -> 204 with an empty body; then GET 404, second DELETE 404, gone from the list', async () => {
      const p = randomUUID();
      const keep = await mkToken(p, 'keep');
      const t = await mkToken(p, 'deleteme');
      const res = await request(srv, { method: 'DELETE', path: tokenPath(t.id) });
      expectStatus(res, 204);
      assert.equal(res.text, '', `204 must have no body\n${show(res)}`);
      assert.ok(res.headers['content-length'] === undefined || res.headers['content-length'] === '0', show(res));
      expectNotFound(await request(srv, { path: tokenPath(t.id) }), t.id);
      expectNotFound(await request(srv, { method: 'DELETE', path: tokenPath(t.id) }), t.id);
      const l = await listOk([['project_id', p]]);
      assert.equal(l.total_count, 1);
      assert.deepEqual(ids(l.tokens), [keep.id]);
    });

    T('GET and DELETE ignore a request body ({} as the Python client sends, or garbage)', async () => {
      const p = randomUUID();
      const t = await mkToken(p, 'bodies');
      expectJsonOk(await request(srv, { path: tokenPath(t.id), body: '{}' }));
      expectJsonOk(await request(srv, { path: tokenPath(t.id), body: 'garbage{' }));
      const l = await request(srv, { path: tokensPath() + query([['project_id', p]]), body: '{}' });
      assert.equal(expectJsonOk(l).total_count, 1);
      const l2 = await request(srv, { path: tokensPath() + query([['project_id', p]]), body: '{"project_id":"x"}' });
      assert.equal(expectJsonOk(l2).total_count, 1);
      const d = await request(srv, { method: 'DELETE', path: tokenPath(t.id), body: '{}' });
      expectStatus(d, 204);
      assert.equal(d.text, '');
      expectNotFound(await request(srv, { path: tokenPath(t.id) }), t.id);
    });
  });

  describe('routing', () => {
    T('unknown region -> 400 invalid_arguments argument_name "region" (all four operations)', async () => {
      const p = randomUUID();
      const id = randomUUID();
      for (const region of ['xx-abc', 'fr-par-1', 'FR-PAR', 'moon']) {
        expectInvalidArg(await create({ project_id: p, name: 'abc' }, { region }), 'region');
        expectInvalidArg(await list([['project_id', p]], { region }), 'region');
        expectInvalidArg(await request(srv, { path: tokenPath(id, region) }), 'region');
        expectInvalidArg(await request(srv, { method: 'DELETE', path: tokenPath(id, region) }), 'region');
      }
    });

    T('unknown path -> 404 JSON', async () => {
      const id = randomUUID();
      for (const path of ['/', '/nope', '/cockpit/v1/regions/fr-par/tokenz', `/cockpit/v1/regions/fr-par/tokens/${id}/extra`,
        '/cockpit/v2/regions/fr-par/tokens', '/cockpit/v1/tokens', '/cockpit/v1/regions/fr-par']) {
        const res = await request(srv, { path });
        expectJsonError(res, 404);
      }
    });

    T('wrong method on a known path -> 405 JSON', async () => {
      const p = randomUUID();
      const t = await mkToken(p, 'methods');
      const cases = [['PUT', tokenPath(t.id)], ['PATCH', tokenPath(t.id)], ['POST', tokenPath(t.id)],
        ['PATCH', tokensPath()], ['PUT', tokensPath()], ['DELETE', tokensPath()]];
      for (const [method, path] of cases) {
        const res = await request(srv, { method, path, body: { project_id: p, name: 'abc' } });
        expectJsonError(res, 405);
      }
      // the token is untouched
      const got = expectJsonOk(await request(srv, { path: tokenPath(t.id) }));
      assert.equal(got.name, 'methods');
      assert.equal((await listOk([['project_id', p]])).total_count, 1);
    });

    T('405 answers carry an Allow header (RFC 9110)', async () => {
      const t = await mkToken(randomUUID(), 'allow');
      const one = await request(srv, { method: 'PUT', path: tokenPath(t.id), body: '{}' });
      expectStatus(one, 405);
      const allowOne = String(one.headers.allow ?? '').toUpperCase();
      assert.ok(allowOne.includes('GET') && allowOne.includes('DELETE'), `Allow on a token\n${show(one)}`);
      const coll = await request(srv, { method: 'PATCH', path: tokensPath(), body: '{}' });
      expectStatus(coll, 405);
      const allowColl = String(coll.headers.allow ?? '').toUpperCase();
      assert.ok(allowColl.includes('GET') && allowColl.includes('POST'), `Allow on the collection\n${show(coll)}`);
    });
  });

  describe('list', () => {
    T('shape: {total_count:number, tokens:[Token]} with secret_key null, no X-Total-Count', async () => {
      const p = randomUUID();
      const a = await mkToken(p, 'one', ['read_only_logs', 'read_only_metrics']);
      const res = await list([['project_id', p]]);
      const body = await listOk([['project_id', p]]);
      assert.ok(/"total_count":\s*1[,}]/.test(res.text), `total_count is a JSON number\n${show(res)}`);
      assert.equal(body.total_count, 1);
      expectToken(body.tokens[0], { project_id: p, name: 'one', scopes: ['read_only_metrics', 'read_only_logs'],
        region: 'fr-par', secret: 'null' });
      assert.equal(body.tokens[0].id, a.id);
      assert.equal(body.tokens[0].created_at, a.created_at);
    });

    T('an empty project: total_count 0 and tokens []', async () => {
      const body = await listOk([['project_id', randomUUID()]]);
      assert.deepEqual(body, { total_count: 0, tokens: [] });
    });

    T('default page_size is 20; total_count exact; a page past the end is 200 [] with the same total', async () => {
      const p = randomUUID();
      const made = [];
      for (let i = 0; i < 25; i++) made.push(await mkToken(p, `t${String(i).padStart(2, '0')}`));
      const p1 = await listOk([['project_id', p]]);
      assert.equal(p1.total_count, 25);
      assert.equal(p1.tokens.length, 20);
      const p2 = await listOk([['project_id', p], ['page', 2]]);
      assert.equal(p2.total_count, 25);
      assert.equal(p2.tokens.length, 5);
      assert.deepEqual([...ids(p1.tokens), ...ids(p2.tokens)], ids([...made].sort(byCreatedAsc)));
      for (const page of [3, 4, 1000]) {
        const past = await listOk([['project_id', p], ['page', page]]);
        assert.deepEqual(past, { total_count: 25, tokens: [] });
      }
      const big = await listOk([['project_id', p], ['page_size', 1000]]);
      assert.equal(big.tokens.length, 25);
      const small = await listOk([['project_id', p], ['page_size', 1], ['page', 25]]);
      assert.equal(small.tokens.length, 1);
      assert.equal(small.total_count, 25);
    });

    T('page_size out of range or not a number -> 400 naming page_size', async () => {
      const p = randomUUID();
      for (const v of ['0', '1001', '-1', 'abc', '1.5', '10x', '99999999999999999999']) {
        expectInvalidArg(await list([['project_id', p], ['page_size', v]]), 'page_size');
      }
      await listOk([['project_id', p], ['page_size', 1]]);
      await listOk([['project_id', p], ['page_size', 1000]]);
    });

    T('page < 1 or not a number -> 400 naming page', async () => {
      const p = randomUUID();
      for (const v of ['0', '-1', 'abc', '1.5', '99999999999999999999']) {
        expectInvalidArg(await list([['project_id', p], ['page', v]]), 'page');
      }
    });

    T('order_by: created_at_asc (default), created_at_desc, name_asc, name_desc; unknown -> 400', async () => {
      const p = randomUUID();
      const made = [];
      for (const name of ['delta', 'alpha', 'charlie', 'bravo', 'echo', 'alpha']) made.push(await mkToken(p, name));
      const asc = [...made].sort(byCreatedAsc);
      const def = await listOk([['project_id', p]]);
      assert.deepEqual(ids(def.tokens), ids(asc), 'default order is created_at_asc');
      assert.deepEqual(ids((await listOk([['project_id', p], ['order_by', 'created_at_asc']])).tokens), ids(asc));
      const desc = (await listOk([['project_id', p], ['order_by', 'created_at_desc']])).tokens;
      assert.deepEqual(ids(desc), ids([...asc].reverse()));
      const na = (await listOk([['project_id', p], ['order_by', 'name_asc']])).tokens;
      assert.deepEqual(ids(na), ids([...made].sort(byNameAsc)));
      const nd = (await listOk([['project_id', p], ['order_by', 'name_desc']])).tokens;
      assert.deepEqual(nd.map((t) => t.name), ['echo', 'delta', 'charlie', 'bravo', 'alpha', 'alpha']);
      for (const v of ['created_at', 'name', 'CREATED_AT_ASC', 'id_asc', 'random']) {
        expectInvalidArg(await list([['project_id', p], ['order_by', v]]), 'order_by');
      }
    });

    T('ties break by id: same-named tokens come in id order, and paging is stable', async () => {
      const p = randomUUID();
      const made = [];
      for (let i = 0; i < 7; i++) made.push(await mkToken(p, 'dup'));
      made.push(await mkToken(p, 'aaa'));
      made.push(await mkToken(p, 'zzz'));
      const expectAsc = [...made].sort(byNameAsc);
      const full = (await listOk([['project_id', p], ['order_by', 'name_asc'], ['page_size', 1000]])).tokens;
      assert.deepEqual(ids(full), ids(expectAsc), 'name_asc, ties by id ascending');
      for (const order of ['name_asc', 'name_desc', 'created_at_asc', 'created_at_desc']) {
        const whole = (await listOk([['project_id', p], ['order_by', order], ['page_size', 1000]])).tokens;
        for (const size of [1, 2, 4]) {
          const paged = await allPages([['project_id', p], ['order_by', order]], size);
          assert.equal(paged.total, made.length);
          assert.deepEqual(ids(paged.tokens), ids(whole), `${order} page_size=${size}: pages concatenate to the whole`);
          assert.equal(new Set(ids(paged.tokens)).size, made.length, 'every token exactly once');
        }
        // repeated queries give the same order
        const again = (await listOk([['project_id', p], ['order_by', order], ['page_size', 1000]])).tokens;
        assert.deepEqual(ids(again), ids(whole));
      }
      // name_desc: names descending, and within the ties a consistent id order
      const nd = (await listOk([['project_id', p], ['order_by', 'name_desc'], ['page_size', 1000]])).tokens;
      assert.deepEqual(nd.map((t) => t.name), ['zzz', ...Array(7).fill('dup'), 'aaa']);
      const dupIds = nd.filter((t) => t.name === 'dup').map((t) => t.id);
      const sortedAsc = [...dupIds].sort(cmp);
      assert.ok(JSON.stringify(dupIds) === JSON.stringify(sortedAsc) ||
        JSON.stringify(dupIds) === JSON.stringify([...sortedAsc].reverse()), 'ties in name_desc ordered by id');
    });

    T('token_scopes filter: repeated key, any-of semantics', async () => {
      const p = randomUUID();
      const A = await mkToken(p, 'aaa', ['read_only_metrics']);
      const B = await mkToken(p, 'bbb', ['write_only_logs']);
      const C = await mkToken(p, 'ccc', ['write_only_logs', 'read_only_metrics']);
      await mkToken(p, 'ddd');
      const E = await mkToken(p, 'eee', SCOPES);
      const q = async (...scopes) => listOk([['project_id', p], ...scopes.map((s) => ['token_scopes', s]), ['page_size', 100]]);
      let r = await q('read_only_metrics');
      assert.deepEqual(ids(r.tokens), [A.id, C.id, E.id]);
      assert.equal(r.total_count, 3);
      r = await q('read_only_metrics', 'write_only_logs');
      assert.deepEqual(ids(r.tokens), [A.id, B.id, C.id, E.id], 'any-of, each token once');
      assert.equal(r.total_count, 4);
      r = await q('write_only_logs', 'write_only_logs');
      assert.deepEqual(ids(r.tokens), [B.id, C.id, E.id]);
      r = await q('read_only_traces');
      assert.deepEqual(ids(r.tokens), [E.id]);
      r = await listOk([['project_id', p], ['page_size', 100]]);
      assert.equal(r.total_count, 5, 'no filter: all');
      // paging within a filter
      r = await listOk([['project_id', p], ['token_scopes', 'read_only_metrics'], ['token_scopes', 'write_only_logs'],
        ['page_size', 3], ['page', 2]]);
      assert.equal(r.total_count, 4);
      assert.deepEqual(ids(r.tokens), [E.id]);
    });

    T('token_scopes filter with an unknown scope -> 400 naming token_scopes', async () => {
      const p = randomUUID();
      expectInvalidArg(await list([['project_id', p], ['token_scopes', 'bogus']]), 'token_scopes');
      expectInvalidArg(await list([['project_id', p], ['token_scopes', 'read_only_metrics'], ['token_scopes', 'unknown_scope']]),
        'token_scopes');
    });

    T('project_id filter; not a UUID -> 400 format', async () => {
      const p1 = randomUUID();
      const p2 = randomUUID();
      const a = await mkToken(p1, 'p1tok');
      const b = await mkToken(p2, 'p2tok');
      const r1 = await listOk([['project_id', p1]]);
      assert.deepEqual(ids(r1.tokens), [a.id]);
      const r2 = await listOk([['project_id', p2]]);
      assert.deepEqual(ids(r2.tokens), [b.id]);
      for (const v of ['nope', '123', p1.replace(/-/g, '')]) {
        expectInvalidArg(await list([['project_id', v]]), 'project_id', 'format');
      }
    });

    T('organization key, no project_id: tokens of every project in the region', async () => {
      const p1 = randomUUID();
      const p2 = randomUUID();
      const a = await mkToken(p1, 'orgwide');
      const b = await mkToken(p2, 'orgwide');
      const ams = await create({ project_id: p1, name: 'orgwide' }, { region: 'nl-ams' });
      expectJsonOk(ams);
      for (const pairs of [[], [['project_id', '']]]) {
        const r = await listOk([...pairs, ['order_by', 'created_at_desc'], ['page_size', 1000]]);
        assert.ok(r.total_count >= 2);
        const got = ids(r.tokens);
        assert.ok(got.includes(a.id) && got.includes(b.id), 'both projects listed');
        assert.ok(!got.includes(ams.json.id), 'other region not listed');
        assert.ok(r.tokens.every((t) => t.region === 'fr-par'));
      }
    });

    T('empty values mean absent (project_id=, token_scopes=, order_by=, page=, page_size=)', async () => {
      const p = randomUUID();
      const key = await createApiKey(srv.dbUri, [p]);
      const a = await mkToken(p, 'bbb', ['read_only_metrics']);
      const b = await mkToken(p, 'aaa');
      const opts = { auth: key.secret_key };
      for (const name of ['project_id', 'token_scopes', 'order_by', 'page', 'page_size']) {
        const r = await listOk([[name, '']], opts);
        assert.equal(r.total_count, 2, `${name}= means absent`);
        assert.deepEqual(ids(r.tokens), [a.id, b.id], `${name}=: default order`);
      }
    });

    T('unknown query keys are ignored', async () => {
      const p = randomUUID();
      const a = await mkToken(p, 'unknownq');
      const r = await listOk([['foo', 'bar'], ['project_id', p], ['organization_id', randomUUID()], ['name', 'zzz'], ['x', '']]);
      assert.deepEqual(ids(r.tokens), [a.id]);
    });

    T('Go client query: order_by=created_at_asc&page=1&project_id=&token_scopes=...', async () => {
      const p = randomUUID();
      const key = await createApiKey(srv.dbUri, [p]);
      const a = await mkToken(p, 'go-one', ['read_only_metrics']);
      await mkToken(p, 'go-two', ['write_only_logs']);
      const c = await mkToken(p, 'go-three', ['read_only_metrics', 'read_only_logs']);
      const path = `${tokensPath()}?order_by=created_at_asc&page=1&project_id=&token_scopes=read_only_metrics`;
      const res = await request(srv, { path, auth: key.secret_key });
      const body = expectJsonOk(res);
      assert.equal(body.total_count, 2, show(res));
      assert.deepEqual(ids(body.tokens), [a.id, c.id], show(res));
      const withPid = await request(srv, {
        path: `${tokensPath()}?order_by=created_at_asc&page=1&page_size=1&project_id=${p}`,
      });
      const b2 = expectJsonOk(withPid);
      assert.equal(b2.total_count, 3);
      assert.deepEqual(ids(b2.tokens), [a.id]);
    });

    T('list of another region sees none of fr-par tokens', async () => {
      const p = randomUUID();
      await mkToken(p, 'frpar-only');
      for (const region of ['nl-ams', 'pl-waw']) {
        assert.deepEqual(await listOk([['project_id', p]], { region }), { total_count: 0, tokens: [] });
      }
    });
  });

  describe('authentication and authorization', () => {
    let P1; let P2; let P3; let key;
    before(async () => {
      P1 = randomUUID(); P2 = randomUUID(); P3 = randomUUID();
      key = await createApiKey(srv.dbUri, [P1, P2]);
    });

    T('apikey create -o json prints access_key, secret_key, projects', async () => {
      assert.match(key.access_key, /^SCW[A-Z0-9]{17}$/);
      assert.match(key.secret_key, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
      assert.deepEqual([...key.projects].sort(), [P1, P2].sort());
    });

    T('a project-limited key creates in its projects; another project -> 403 permissions_denied write/token', async () => {
      const opts = { auth: key.secret_key };
      expectToken(expectJsonOk(await create({ project_id: P1, name: 'limited' }, opts)), { project_id: P1, secret: 'set' });
      expectToken(expectJsonOk(await create({ project_id: P2, name: 'limited' }, opts)), { project_id: P2, secret: 'set' });
      const res = await create({ project_id: P3, name: 'limited' }, opts);
      expectPermissionDenied(res, 'write');
      assert.deepEqual(res.json, { details: [{ action: 'write', resource: 'token' }], message: 'insufficient permissions',
        type: 'permissions_denied' });
      assert.equal((await listOk([['project_id', P3]])).total_count, 0, 'nothing created in P3');
    });

    T('a project-limited key listing another project -> 403 permissions_denied', async () => {
      const res = await list([['project_id', P3]], { auth: key.secret_key });
      expectPermissionDenied(res, ['read', 'list', 'write']);
    });

    T('a project-limited key listing without project_id sees exactly its projects', async () => {
      const mine = [];
      const a1 = await mkToken(P1, 'vis-p1'); mine.push(a1);
      const a2 = await mkToken(P2, 'vis-p2'); mine.push(a2);
      const other = await mkToken(P3, 'vis-p3');
      const all = await allPages([], 1000, { auth: key.secret_key });
      const got = ids(all.tokens);
      assert.ok(!got.includes(other.id), 'P3 token not visible');
      assert.ok(all.tokens.every((t) => t.project_id === P1 || t.project_id === P2), 'only P1/P2 tokens');
      assert.ok(got.includes(a1.id) && got.includes(a2.id));
      // exact: compare with the organization key's per-project counts
      const n1 = (await listOk([['project_id', P1]])).total_count;
      const n2 = (await listOk([['project_id', P2]])).total_count;
      assert.equal(all.total, n1 + n2);
      assert.equal(all.tokens.length, n1 + n2);
      // same with project_id= (empty means absent) and with an explicit granted project
      assert.equal((await listOk([['project_id', '']], { auth: key.secret_key })).total_count, n1 + n2);
      const only1 = await listOk([['project_id', P1], ['page_size', 1000]], { auth: key.secret_key });
      assert.equal(only1.total_count, n1);
      assert.ok(only1.tokens.every((t) => t.project_id === P1));
    });

    T('a project-limited key: get/delete of another project\'s token -> 404, never 403', async () => {
      const t = await mkToken(P3, 'hidden');
      expectNotFound(await request(srv, { path: tokenPath(t.id), auth: key.secret_key }), t.id);
      expectNotFound(await request(srv, { method: 'DELETE', path: tokenPath(t.id), auth: key.secret_key }), t.id);
      expectJsonOk(await request(srv, { path: tokenPath(t.id) })); // still there
    });

    T('a project-limited key gets and deletes its own tokens', async () => {
      const t = await mkToken(P1, 'own', [], { auth: key.secret_key });
      expectToken(expectJsonOk(await request(srv, { path: tokenPath(t.id), auth: key.secret_key })), { secret: 'null' });
      const d = await request(srv, { method: 'DELETE', path: tokenPath(t.id), auth: key.secret_key });
      expectStatus(d, 204);
      expectNotFound(await request(srv, { path: tokenPath(t.id) }), t.id);
    });

    T('missing X-Auth-Token -> 401 denied_authentication on every endpoint', async () => {
      const t = await mkToken(P1, 'noauth');
      const calls = [
        () => create({ project_id: P1, name: 'abc' }, { auth: null }),
        () => list([['project_id', P1]], { auth: null }),
        () => list([], { auth: null }),
        () => request(srv, { path: tokenPath(t.id), auth: null }),
        () => request(srv, { method: 'DELETE', path: tokenPath(t.id), auth: null }),
      ];
      for (const call of calls) expectDenied(await call(), ['not_found', 'invalid_argument']);
      expectJsonOk(await request(srv, { path: tokenPath(t.id) })); // not deleted
    });

    T('malformed X-Auth-Token -> 401 reason invalid_argument', async () => {
      const u = randomUUID();
      for (const bad of ['not-a-uuid', key.access_key, `${u}x`, u.replace(/-/g, ''), 'Bearer ' + u, '1234']) {
        const res = await list([['project_id', P1]], { auth: bad });
        expectDenied(res, 'invalid_argument');
        assert.deepEqual(res.json, { message: 'authentication is denied', method: 'api_key', reason: 'invalid_argument',
          type: 'denied_authentication' });
      }
    });

    T('unknown well-formed X-Auth-Token -> 401 reason not_found, exact body', async () => {
      const res = await list([['project_id', P1]], { auth: randomUUID() });
      expectDenied(res, 'not_found');
      assert.deepEqual(res.json, { message: 'authentication is denied', method: 'api_key', reason: 'not_found',
        type: 'denied_authentication' });
      const t = await mkToken(P1, 'unk');
      expectDenied(await request(srv, { path: tokenPath(t.id), auth: randomUUID() }), 'not_found');
      expectDenied(await request(srv, { method: 'DELETE', path: tokenPath(t.id), auth: randomUUID() }), 'not_found');
      expectDenied(await create({ project_id: P1, name: 'abc' }, { auth: randomUUID() }), 'not_found');
      expectJsonOk(await request(srv, { path: tokenPath(t.id) }));
    });

    T('authentication comes before body validation (unknown key + bad body -> 401)', async () => {
      expectDenied(await create('{', { auth: randomUUID() }), 'not_found');
      expectDenied(await create({ project_id: 'nope', name: 'a' }, { auth: randomUUID() }), 'not_found');
    });
  });
});
