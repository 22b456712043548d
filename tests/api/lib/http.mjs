// A raw HTTP client on node:http: full control over method, header-name case, bodies on GET and
// DELETE, chunked uploads; one connection per request (no keep-alive surprises).
import http from 'node:http';

/**
 * request(srv, {method, path, body, headers, auth, chunked})
 *   body:    string | Buffer | object (JSON-encoded) | undefined
 *   auth:    the X-Auth-Token value; default srv.secretKey; null = header omitted
 *   headers: extra headers, names sent exactly as written
 *   chunked: send the body with Transfer-Encoding: chunked (no Content-Length)
 *   expectContinue: send Expect: 100-continue (as curl does for big bodies) and hold the body
 *            until 100 Continue (or 1 s without an answer, as curl does)
 * Resolves to {status, headers (lowercased names), rawHeaders, text, json, jsonError}.
 */
export function request(srv, { method = 'GET', path, body, headers = {}, auth, chunked = false,
  contentType = 'application/json', expectContinue = false } = {}) {
  const url = new URL(path, srv.url);
  let payload;
  if (body === undefined) payload = undefined;
  else if (Buffer.isBuffer(body) || typeof body === 'string') payload = Buffer.from(body);
  else payload = Buffer.from(JSON.stringify(body));

  const hdrs = {};
  const token = auth === undefined ? srv.secretKey : auth;
  const hasHeader = (name) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (token !== null && !hasHeader('x-auth-token')) hdrs['X-Auth-Token'] = token;
  if (payload !== undefined && contentType && !hasHeader('content-type')) hdrs['Content-Type'] = contentType;
  if (payload !== undefined && !chunked) hdrs['Content-Length'] = String(payload.length);
  if (chunked) hdrs['Transfer-Encoding'] = 'chunked';
  if (expectContinue) hdrs.Expect = '100-continue';
  Object.assign(hdrs, headers);

  return new Promise((resolve, reject) => {
    let settled = false;
    let response = null;
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path: url.pathname + url.search,
      headers: hdrs,
      agent: false,
      timeout: 15_000,
    }, (res) => {
      response = res;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        let jsonError;
        if (text.length > 0) {
          try { json = JSON.parse(text); } catch (e) { jsonError = e; }
        }
        settled = true;
        if (!req.writableEnded) req.destroy(); // an early answer: drop the rest of the upload
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders,
          text, json, jsonError, method, path });
      });
      res.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', (e) => {
      // A server that answers early (e.g. 413) may close while we are still uploading: that is
      // fine as long as the response itself arrived; it is handled by the response callback.
      if (response) return;
      if (!settled) { settled = true; reject(new Error(`${method} ${path}: ${e.message}`)); }
    });
    if (payload === undefined || (payload.length <= 64 * 1024 && !expectContinue)) {
      if (payload !== undefined) req.write(payload);
      req.end();
      return;
    }
    // Large bodies go in 64 KiB pieces with back-pressure, and stop as soon as the server has
    // answered (an early 413): the answer must not be lost to a reset caused by our writes.
    const step = 64 * 1024;
    let i = 0;
    const pump = () => {
      while (i < payload.length) {
        if (response || req.destroyed) return;
        const piece = payload.subarray(i, i + step);
        i += step;
        if (!req.write(piece)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    if (!expectContinue) { pump(); return; }
    let started = false;
    const start = () => { if (!started && !response) { started = true; pump(); } };
    req.once('continue', start);
    setTimeout(start, 1000).unref();
    req.flushHeaders();
  });
}

/** Helper for the collection path of a region. */
export const tokensPath = (region = 'fr-par') => `/cockpit/v1/regions/${region}/tokens`;
export const tokenPath = (id, region = 'fr-par') => `/cockpit/v1/regions/${region}/tokens/${id}`;

/** Builds a list query string from [key, value] pairs (repeated keys allowed). */
export function query(pairs) {
  const p = new URLSearchParams();
  for (const [k, v] of pairs) if (v !== undefined) p.append(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** A short human description of a response, for assertion messages. */
export function show(res) {
  const hdrs = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) hdrs.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  const body = res.text.length > 600 ? `${res.text.slice(0, 600)}…` : res.text;
  return `${res.method} ${res.path} -> ${res.status}\n  ${hdrs.join('\n  ')}\n  body: ${body}`;
}
