// Assertions on the wire contract (see /work/shared/spec/tokens-api.md).
import assert from 'node:assert/strict';
import { show } from './http.mjs';

export const SCOPES = [
  'read_only_metrics', 'write_only_metrics', 'full_access_metrics_rules',
  'read_only_logs', 'write_only_logs', 'full_access_logs_rules',
  'full_access_alert_manager', 'read_only_traces', 'write_only_traces',
];
// Scaleway's fields, then ours (issue 10: expiry and last use), which the SDKs skip.
export const TOKEN_FIELDS = ['id', 'project_id', 'name', 'created_at', 'updated_at', 'scopes',
  'secret_key', 'region', 'expires_at', 'last_used_at'];
export const UUID_V4_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
export const SECRET = /^[A-Za-z0-9_-]{64}$/;
export const ARG_REASONS = ['required', 'format', 'constraint'];

/** Canonical (enum) order of a set of scopes, deduplicated. */
export const canonical = (scopes) => SCOPES.filter((s) => scopes.includes(s));

export function expectStatus(res, status) {
  assert.equal(res.status, status, `expected HTTP ${status}\n${show(res)}`);
}

/** A 2xx JSON answer: exact status, Content-Type exactly application/json, a JSON body. */
export function expectJsonOk(res, status = 200) {
  expectStatus(res, status);
  assert.equal(res.headers['content-type'], 'application/json',
    `success Content-Type must be exactly application/json\n${show(res)}`);
  assert.equal(res.jsonError, undefined, `body is not JSON\n${show(res)}`);
  assert.ok(res.json !== undefined, `empty body\n${show(res)}`);
  return res.json;
}

/** Any error answer: the status, a JSON object body with string `type` and `message`. */
export function expectJsonError(res, status, type) {
  expectStatus(res, status);
  assert.equal(res.jsonError, undefined, `error body is not JSON\n${show(res)}`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json),
    `error body must be a JSON object\n${show(res)}`);
  assert.match(String(res.headers['content-type'] ?? ''), /^application\/json\b/,
    `error Content-Type must be JSON\n${show(res)}`);
  assert.equal(typeof res.json.type, 'string', `error needs a string type\n${show(res)}`);
  assert.equal(typeof res.json.message, 'string', `error needs a string message\n${show(res)}`);
  if (type !== undefined) assert.equal(res.json.type, type, `error type\n${show(res)}`);
  return res.json;
}

/**
 * 400 invalid_arguments whose details name `argName`; `reasons` is the accepted reason or list.
 */
export function expectInvalidArg(res, argName, reasons = ARG_REASONS) {
  const body = expectJsonError(res, 400, 'invalid_arguments');
  assert.equal(body.message, 'invalid argument(s)', show(res));
  assert.ok(Array.isArray(body.details) && body.details.length >= 1,
    `invalid_arguments needs a non-empty details array\n${show(res)}`);
  for (const d of body.details) {
    assert.equal(typeof d.argument_name, 'string', `detail.argument_name\n${show(res)}`);
    assert.ok(ARG_REASONS.includes(d.reason), `detail.reason must be one of ${ARG_REASONS}\n${show(res)}`);
    assert.equal(typeof d.help_message, 'string', `detail.help_message\n${show(res)}`);
  }
  const want = Array.isArray(reasons) ? reasons : [reasons];
  const match = (n) => (argName instanceof RegExp ? argName.test(n) : n === argName);
  const d = body.details.find((x) => match(x.argument_name));
  assert.ok(d, `no detail names ${argName}\n${show(res)}`);
  assert.ok(want.includes(d.reason), `reason of ${argName} must be ${want.join('|')}\n${show(res)}`);
  return body;
}

export function expectNotFound(res, id) {
  expectJsonError(res, 404, 'not_found');
  assert.deepEqual(res.json, { message: 'resource is not found', resource: 'token', resource_id: id, type: 'not_found' },
    show(res));
}

/** 401 denied_authentication; reason one of `reasons`. */
export function expectDenied(res, reasons) {
  expectJsonError(res, 401, 'denied_authentication');
  const want = Array.isArray(reasons) ? reasons : [reasons];
  assert.ok(want.includes(res.json.reason), `401 reason must be ${want.join('|')}\n${show(res)}`);
  assert.deepEqual(res.json, { message: 'authentication is denied', method: 'api_key', reason: res.json.reason,
    type: 'denied_authentication' }, show(res));
}

/** 403 permissions_denied with details [{action, resource:"token"}]. */
export function expectPermissionDenied(res, actions) {
  expectJsonError(res, 403, 'permissions_denied');
  const want = Array.isArray(actions) ? actions : [actions];
  assert.equal(res.json.message, 'insufficient permissions', show(res));
  assert.ok(Array.isArray(res.json.details) && res.json.details.length === 1, show(res));
  const [d] = res.json.details;
  assert.deepEqual(Object.keys(d).sort(), ['action', 'resource'], show(res));
  assert.equal(d.resource, 'token', show(res));
  assert.ok(want.includes(d.action), `403 action must be ${want.join('|')}\n${show(res)}`);
  assert.deepEqual(Object.keys(res.json).sort(), ['details', 'message', 'type'], show(res));
}

/**
 * Checks a Token object: exact field order, formats, and the expected values.
 * want: {project_id, name, scopes (already canonical), region, secret: 'set'|'null'}
 */
export function expectToken(tok, want = {}, ctx = '') {
  const where = `${ctx}\ntoken: ${JSON.stringify(tok)}`;
  assert.ok(tok && typeof tok === 'object', where);
  assert.deepEqual(Object.keys(tok), TOKEN_FIELDS, `Token fields in this exact order${where}`);
  assert.match(tok.id, UUID_V4_LOWER, `id must be a lowercase uuid v4${where}`);
  assert.match(tok.created_at, TIMESTAMP, `created_at: RFC 3339 UTC, 6 fractional digits, Z${where}`);
  assert.match(tok.updated_at, TIMESTAMP, `updated_at format${where}`);
  assert.equal(tok.updated_at, tok.created_at, `updated_at == created_at${where}`);
  const t = Date.parse(tok.created_at);
  assert.ok(Math.abs(Date.now() - t) < 10 * 60_000, `created_at near now${where}`);
  assert.ok(Array.isArray(tok.scopes), `scopes is an array${where}`);
  assert.deepEqual(tok.scopes, canonical(tok.scopes), `scopes canonical & unique${where}`);
  assert.equal(new Set(tok.scopes).size, tok.scopes.length, `scopes unique${where}`);
  assert.equal(typeof tok.region, 'string', where);
  if (want.project_id !== undefined) assert.equal(tok.project_id, want.project_id, where);
  if (want.name !== undefined) assert.equal(tok.name, want.name, where);
  if (want.scopes !== undefined) assert.deepEqual(tok.scopes, want.scopes, where);
  if (want.region !== undefined) assert.equal(tok.region, want.region, where);
  for (const k of ['expires_at', 'last_used_at']) {
    if (tok[k] !== null) assert.match(tok[k], TIMESTAMP, `${k}: null or an RFC 3339 UTC timestamp${where}`);
  }
  if (want.expires_at !== undefined) assert.equal(tok.expires_at, want.expires_at, where);
  if (want.secret === 'set') assert.match(String(tok.secret_key), SECRET, `secret_key: 64 of [A-Za-z0-9_-]${where}`);
  if (want.secret === 'null') assert.equal(tok.secret_key, null, `secret_key must be null${where}`);
  return tok;
}

/** Sort comparators matching the documented orderings (ties by id, ascending). */
export const byCreatedAsc = (a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id);
export const byNameAsc = (a, b) => cmp(a.name, b.name) || cmp(a.id, b.id);
export function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
