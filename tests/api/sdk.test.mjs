// The official Scaleway JS SDK, unchanged, pointed at our server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { createClient, Errors } from '@scaleway/sdk-client';
import { Cockpitv1 } from '@scaleway/sdk-cockpit';

import { startServer, createApiKey, withServerLog, fakeAccessKey } from './lib/server.mjs';
import { SCOPES, SECRET, UUID_V4_LOWER, canonical, cmp } from './lib/expect.mjs';

let srv;
const T = (name, fn) => it(name, { timeout: 60_000 }, withServerLog(() => srv, fn));

function api({ secretKey = srv.secretKey, projectId, region = 'fr-par' } = {}) {
  const client = createClient({
    accessKey: fakeAccessKey(),
    secretKey,
    apiURL: srv.url, // no trailing slash: the SDK refuses one
    defaultProjectId: projectId,
    defaultRegion: region,
  });
  return new Cockpitv1.RegionalAPI(client);
}

/** Checks an SDK Token (camelCase, Dates). secret: 'set' | 'null'. */
function expectSdkToken(tok, want = {}) {
  const where = `\ntoken: ${JSON.stringify(tok)}`;
  assert.match(tok.id, UUID_V4_LOWER, where);
  assert.ok(tok.createdAt instanceof Date && !Number.isNaN(tok.createdAt.getTime()), `createdAt is a Date${where}`);
  assert.ok(tok.updatedAt instanceof Date, `updatedAt is a Date${where}`);
  assert.equal(tok.updatedAt.getTime(), tok.createdAt.getTime(), where);
  assert.ok(Math.abs(Date.now() - tok.createdAt.getTime()) < 10 * 60_000, `createdAt near now${where}`);
  assert.ok(Array.isArray(tok.scopes), where);
  assert.deepEqual(tok.scopes, canonical(tok.scopes), where);
  if (want.projectId !== undefined) assert.equal(tok.projectId, want.projectId, where);
  if (want.name !== undefined) assert.equal(tok.name, want.name, where);
  if (want.scopes !== undefined) assert.deepEqual(tok.scopes, want.scopes, where);
  assert.equal(tok.region, want.region ?? 'fr-par', where);
  if (want.secret === 'set') assert.match(tok.secretKey, SECRET, where);
  if (want.secret === 'null') assert.ok(tok.secretKey === null || tok.secretKey === undefined, `no secret on get/list${where}`);
  return tok;
}

/** assert.rejects with a typed SDK error; `check(err)` for more. */
async function rejectsWith(promise, Type, check = () => {}) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Type, `expected ${Type.name}, got ${err?.name}: ${err?.message}\nbody: ${JSON.stringify(err?.body)}`);
    assert.ok(err instanceof Errors.ScalewayError);
    check(err);
    return true;
  });
}

const byCreated = (a, b) => (a.createdAt - b.createdAt) || cmp(a.id, b.id);
const byName = (a, b) => cmp(a.name, b.name) || cmp(a.id, b.id);
const ids = (l) => l.map((t) => t.id);

describe('official JS SDK (@scaleway/sdk-cockpit)', () => {
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  T('createToken returns the token with its secret; getToken returns it without', async () => {
    const p = randomUUID();
    const cockpit = api({ projectId: p });
    const tok = await cockpit.createToken({ name: 'sdk-token', tokenScopes: ['write_only_metrics', 'read_only_metrics', 'write_only_metrics'] });
    expectSdkToken(tok, { projectId: p, name: 'sdk-token', scopes: ['read_only_metrics', 'write_only_metrics'], secret: 'set' });
    const got = await cockpit.getToken({ tokenId: tok.id });
    expectSdkToken(got, { projectId: p, name: 'sdk-token', scopes: ['read_only_metrics', 'write_only_metrics'], secret: 'null' });
    assert.equal(got.secretKey, null, 'secret_key is null (present) on get');
    assert.equal(got.createdAt.getTime(), tok.createdAt.getTime());
    assert.equal(got.id, tok.id);
  });

  T('createToken without tokenScopes, with every scope, with an explicit projectId', async () => {
    const p = randomUUID();
    const other = randomUUID();
    const cockpit = api({ projectId: p });
    const none = await cockpit.createToken({ name: 'no-scope' });
    expectSdkToken(none, { projectId: p, scopes: [], secret: 'set' });
    const all = await cockpit.createToken({ name: 'all-scopes', tokenScopes: [...SCOPES].reverse() });
    expectSdkToken(all, { scopes: SCOPES, secret: 'set' });
    const elsewhere = await cockpit.createToken({ name: 'elsewhere', projectId: other });
    expectSdkToken(elsewhere, { projectId: other, secret: 'set' });
    assert.notEqual(none.secretKey, all.secretKey);
  });

  T('listTokens pages of 3 and .all() over 25 tokens: each once, in creation order', async () => {
    const p = randomUUID();
    const cockpit = api({ projectId: p });
    const made = [];
    for (let i = 0; i < 25; i++) made.push(await cockpit.createToken({ name: `page-${String(i).padStart(2, '0')}` }));
    const first = await cockpit.listTokens({ pageSize: 3 });
    assert.equal(first.totalCount, 25);
    assert.equal(typeof first.totalCount, 'number');
    assert.equal(first.tokens.length, 3);
    for (const t of first.tokens) expectSdkToken(t, { projectId: p, secret: 'null' });
    const all = await cockpit.listTokens({ pageSize: 3 }).all();
    assert.equal(all.length, 25);
    assert.deepEqual(ids(all), ids(made), 'every token once, in creation order');
    for (const t of all) expectSdkToken(t, { projectId: p, secret: 'null' });
    // async iteration page by page
    const pages = [];
    for await (const page of cockpit.listTokens({ pageSize: 3 })) pages.push(page);
    assert.equal(pages.length, 9);
    assert.deepEqual(ids(pages.flat()), ids(made));
    // default page size (20)
    const dflt = await cockpit.listTokens();
    assert.equal(dflt.tokens.length, 20);
    assert.equal(dflt.totalCount, 25);
    assert.deepEqual(ids(await cockpit.listTokens().all()), ids(made));
  });

  T('listTokens with every orderBy, through .all() with small pages', async () => {
    const p = randomUUID();
    const cockpit = api({ projectId: p });
    const made = [];
    for (const name of ['kilo', 'alpha', 'kilo', 'zulu', 'bravo', 'kilo', 'mike']) made.push(await cockpit.createToken({ name }));
    const asc = [...made].sort(byCreated);
    assert.deepEqual(ids(await cockpit.listTokens({ orderBy: 'created_at_asc', pageSize: 2 }).all()), ids(asc));
    assert.deepEqual(ids(await cockpit.listTokens({ orderBy: 'created_at_desc', pageSize: 2 }).all()), ids([...asc].reverse()));
    const nameAsc = await cockpit.listTokens({ orderBy: 'name_asc', pageSize: 2 }).all();
    assert.deepEqual(ids(nameAsc), ids([...made].sort(byName)));
    const nameDesc = await cockpit.listTokens({ orderBy: 'name_desc', pageSize: 2 }).all();
    assert.deepEqual(nameDesc.map((t) => t.name), ['zulu', 'mike', 'kilo', 'kilo', 'kilo', 'bravo', 'alpha']);
    assert.equal(new Set(ids(nameDesc)).size, 7);
  });

  T('listTokens filters by tokenScopes (any of) and projectId', async () => {
    const p = randomUUID();
    const q = randomUUID();
    const cockpit = api({ projectId: p });
    const a = await cockpit.createToken({ name: 'logs', tokenScopes: ['read_only_logs'] });
    const b = await cockpit.createToken({ name: 'traces', tokenScopes: ['write_only_traces'] });
    await cockpit.createToken({ name: 'metrics', tokenScopes: ['read_only_metrics'] });
    const d = await cockpit.createToken({ name: 'q-logs', tokenScopes: ['read_only_logs'], projectId: q });
    const r1 = await cockpit.listTokens({ tokenScopes: ['read_only_logs'] });
    assert.equal(r1.totalCount, 1);
    assert.deepEqual(ids(r1.tokens), [a.id]);
    const r2 = await cockpit.listTokens({ tokenScopes: ['read_only_logs', 'write_only_traces'] });
    assert.equal(r2.totalCount, 2);
    assert.deepEqual(ids(r2.tokens), [a.id, b.id]);
    const r3 = await cockpit.listTokens({ projectId: q });
    assert.deepEqual(ids(r3.tokens), [d.id]);
    const r4 = await cockpit.listTokens({ tokenScopes: ['full_access_alert_manager'] });
    assert.equal(r4.totalCount, 0);
    assert.deepEqual(r4.tokens, []);
    assert.deepEqual(await cockpit.listTokens({ tokenScopes: ['full_access_alert_manager'] }).all(), []);
  });

  T('deleteToken, then getToken and deleteToken -> ResourceNotFoundError', async () => {
    const p = randomUUID();
    const cockpit = api({ projectId: p });
    const tok = await cockpit.createToken({ name: 'to-delete' });
    const res = await cockpit.deleteToken({ tokenId: tok.id });
    assert.equal(res, undefined);
    const check = (err) => {
      assert.equal(err.status, 404);
      assert.equal(err.resource, 'token');
      assert.equal(err.resourceId, tok.id);
    };
    await rejectsWith(cockpit.getToken({ tokenId: tok.id }), Errors.ResourceNotFoundError, check);
    await rejectsWith(cockpit.deleteToken({ tokenId: tok.id }), Errors.ResourceNotFoundError, check);
    assert.equal((await cockpit.listTokens()).totalCount, 0);
  });

  T('invalid arguments -> InvalidArgumentsError naming the argument', async () => {
    const p = randomUUID();
    const cockpit = api({ projectId: p });
    const arg = (name, reasons) => (err) => {
      assert.equal(err.status, 400);
      const d = err.details.find((x) => x.argumentName === name);
      assert.ok(d, `details name ${name}: ${JSON.stringify(err.details)}`);
      if (reasons) assert.ok(reasons.includes(d.reason), `reason ${d.reason} in ${reasons}`);
    };
    await rejectsWith(cockpit.createToken({ name: 'ab' }), Errors.InvalidArgumentsError, arg('name', ['constraint', 'format']));
    await rejectsWith(cockpit.createToken({ name: 'x'.repeat(51) }), Errors.InvalidArgumentsError, arg('name', ['constraint', 'format']));
    await rejectsWith(cockpit.createToken({ name: 'bad name!' }), Errors.InvalidArgumentsError, arg('name', ['constraint', 'format']));
    await rejectsWith(cockpit.createToken({ name: 'abc', projectId: 'not-a-uuid' }), Errors.InvalidArgumentsError, arg('project_id', ['format']));
    await rejectsWith(cockpit.createToken({ name: 'abc', tokenScopes: ['unknown_scope'] }), Errors.InvalidArgumentsError,
      arg('token_scopes', ['constraint']));
    await rejectsWith(cockpit.listTokens({ pageSize: 1001 }), Errors.InvalidArgumentsError, arg('page_size'));
    await rejectsWith(cockpit.listTokens({ page: 0 }), Errors.InvalidArgumentsError, arg('page'));
    await rejectsWith(cockpit.listTokens({ orderBy: 'sideways' }), Errors.InvalidArgumentsError, arg('order_by'));
    await rejectsWith(cockpit.getToken({ tokenId: 'not-a-uuid' }), Errors.InvalidArgumentsError, arg('token_id', ['format']));
    await rejectsWith(cockpit.deleteToken({ tokenId: 'not-a-uuid' }), Errors.InvalidArgumentsError, arg('token_id', ['format']));
    await rejectsWith(cockpit.listTokens({ region: 'xx-abc' }), Errors.InvalidArgumentsError, arg('region'));
    // the SDK client with no default project (Go-like "" is impossible here, but a missing one is)
    const noProject = api();
    await rejectsWith(noProject.createToken({ name: 'abc' }), Errors.InvalidArgumentsError, arg('project_id', ['required']));
    assert.equal((await cockpit.listTokens()).totalCount, 0, 'nothing created');
  });

  T('a project-limited key: another project -> PermissionsDeniedError; its token by id -> ResourceNotFoundError', async () => {
    const mine = randomUUID();
    const theirs = randomUUID();
    const key = await createApiKey(srv.dbUri, [mine]);
    const limited = api({ secretKey: key.secret_key, projectId: mine });
    const org = api({ projectId: theirs });
    const own = await limited.createToken({ name: 'mine' });
    expectSdkToken(own, { projectId: mine, secret: 'set' });
    await rejectsWith(limited.createToken({ name: 'theirs', projectId: theirs }), Errors.PermissionsDeniedError, (err) => {
      assert.equal(err.status, 403);
      assert.deepEqual(err.list, [{ action: 'write', resource: 'token' }]);
    });
    await rejectsWith(limited.listTokens({ projectId: theirs }), Errors.PermissionsDeniedError, (err) => {
      assert.equal(err.status, 403);
      assert.equal(err.list.length, 1);
      assert.equal(err.list[0].resource, 'token');
    });
    const hidden = await org.createToken({ name: 'hidden' });
    await rejectsWith(limited.getToken({ tokenId: hidden.id }), Errors.ResourceNotFoundError);
    await rejectsWith(limited.deleteToken({ tokenId: hidden.id }), Errors.ResourceNotFoundError);
    expectSdkToken(await org.getToken({ tokenId: hidden.id }), { secret: 'null' });
    const list = await limited.listTokens().all();
    assert.deepEqual(ids(list), [own.id]);
  });

  T('a wrong secret key -> DeniedAuthenticationError (api_key, not_found)', async () => {
    const cockpit = api({ secretKey: randomUUID(), projectId: randomUUID() });
    const check = (err) => {
      assert.equal(err.status, 401);
      assert.equal(err.method, 'api_key');
      assert.equal(err.reason, 'not_found');
    };
    await rejectsWith(cockpit.listTokens(), Errors.DeniedAuthenticationError, check);
    await rejectsWith(cockpit.createToken({ name: 'abc' }), Errors.DeniedAuthenticationError, check);
    await rejectsWith(cockpit.getToken({ tokenId: randomUUID() }), Errors.DeniedAuthenticationError, check);
    await rejectsWith(cockpit.deleteToken({ tokenId: randomUUID() }), Errors.DeniedAuthenticationError, check);
  });

  T('regions are separate: nl-ams sees none of fr-par tokens; a fr-par token is not found via nl-ams', async () => {
    const p = randomUUID();
    const par = api({ projectId: p });
    const ams = api({ projectId: p, region: 'nl-ams' });
    const t = await par.createToken({ name: 'paris' });
    const r = await ams.listTokens();
    assert.equal(r.totalCount, 0);
    assert.deepEqual(r.tokens, []);
    assert.deepEqual(await par.listTokens({ region: 'nl-ams' }).all(), []);
    await rejectsWith(ams.getToken({ tokenId: t.id }), Errors.ResourceNotFoundError);
    await rejectsWith(par.getToken({ tokenId: t.id, region: 'nl-ams' }), Errors.ResourceNotFoundError);
    const a = await ams.createToken({ name: 'amsterdam', tokenScopes: ['write_only_logs'] });
    expectSdkToken(a, { region: 'nl-ams', scopes: ['write_only_logs'], secret: 'set' });
    expectSdkToken(await ams.getToken({ tokenId: a.id }), { region: 'nl-ams', secret: 'null' });
    assert.deepEqual(ids((await par.listTokens()).tokens), [t.id]);
    const waw = await par.listTokens({ region: 'pl-waw' });
    assert.equal(waw.totalCount, 0);
  });
});
