// The management API, same origin only. The API key lives in sessionStorage (this tab,
// until sign-out or the tab closes) and travels as X-Auth-Token: no cookie, so a
// page on another site cannot make the browser act with it.

const KEY = 'cockpit-tokens.api-key';

export class ApiError extends Error {
  constructor(message, { status = 0, body = null, field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.body = body;
    this.field = field; // argument_name of a 400, to show the message next to its field
    this.retryAfter = retryAfter;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  forget() { sessionStorage.removeItem(KEY); },
};

/** The API's own words for an error body, with the detail that says what to fix. */
function describe(status, body, retryAfter) {
  if (status === 429) {
    const s = retryAfter ?? 60;
    return `Too many failed sign-in attempts from this address. Try again in ${s} s.`;
  }
  if (!body || typeof body !== 'object') return `The server answered HTTP ${status}.`;
  const d = Array.isArray(body.details) ? body.details[0] : null;
  if (body.type === 'invalid_arguments' && d) {
    const help = d.help_message ? `: ${d.help_message}` : '';
    return `${d.argument_name}${help}`;
  }
  if (body.type === 'denied_authentication') {
    const why = { not_found: 'unknown key', invalid_argument: 'not a valid key (a UUID)',
      expired: 'the key has expired' }[body.reason];
    return `Authentication is denied${why ? `: ${why}` : ''}.`;
  }
  if (body.type === 'permissions_denied') return 'This API key may not act on that project.';
  if (body.type === 'quotas_exceeded' && d) {
    return `Quota exceeded: ${d.current} of ${d.quota} ${d.resource} used in this project.`;
  }
  const msg = body.message ?? `HTTP ${status}`;
  return body.help_message ? `${msg}: ${body.help_message}` : `${msg[0].toUpperCase()}${msg.slice(1)}.`;
}

/** Calls the API; resolves to the parsed JSON (null for 204), rejects with ApiError. */
export async function call(method, path, { body, query } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of query ?? []) url.searchParams.append(k, v);
  const headers = { Accept: 'application/json' };
  const key = session.key;
  if (key) headers['X-Auth-Token'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', redirect: 'error',
    });
  } catch {
    throw new ApiError('Cannot reach the server: the connection was lost. Check your network and try again.');
  }
  if (res.status === 204) return null;
  let json = null;
  try { json = await res.json(); } catch { /* reported below */ }
  if (res.ok && json !== null) return json;
  const retryAfter = res.headers.get('Retry-After');
  const field = json?.details?.[0]?.argument_name ?? null;
  throw new ApiError(describe(res.status, json, retryAfter), {
    status: res.status, body: json, field, retryAfter,
  });
}

const base = (region) => `/cockpit/v1/regions/${encodeURIComponent(region)}/tokens`;

export const api = {
  session: () => call('GET', '/console/api/session'),
  list: (region, { project, scope, expired, page, pageSize, order }) => {
    const q = [['page', page], ['page_size', pageSize], ['order_by', order]];
    if (project) q.push(['project_id', project]);
    if (scope) q.push(['token_scopes', scope]);
    if (expired) q.push(['expired', expired]);
    return call('GET', base(region), { query: q });
  },
  create: (region, body) => call('POST', base(region), { body }),
  remove: (region, id) => call('DELETE', `${base(region)}/${encodeURIComponent(id)}`),
  rotate: (region, id, grace) => call('POST', `${base(region)}/${encodeURIComponent(id)}/rotate`,
    { body: { grace_period: grace } }),
};
