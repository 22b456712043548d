#!/usr/bin/env python3
"""Small HTTP client for the multi-node tests and the propagation benchmark.

  ct_http.py create BASE KEY REGION PROJECT SCOPE...   -> "ID SECRET" (exit 1 unless 200)
  ct_http.py delete BASE KEY REGION ID                 -> exit 0 on 204
  ct_http.py verify BASE SECRET REGION SCOPE           -> prints the status code
  ct_http.py wait-verify BASE SECRET REGION SCOPE WANT TIMEOUT_S
        polls /auth/verify (keep-alive, tightly) until it answers WANT; prints the
        milliseconds it took; exit 1 on timeout (prints the last status seen)
  ct_http.py call BASE METHOD PATH [KEY] [TIMEOUT_S]   -> "STATUS MS BODY" (status 0 = no answer)
  ct_http.py propagate KEY ROUNDS BASE...
        round i creates a token on node i % N, polls every other node until it
        verifies, deletes it there, polls until every other node rejects it;
        prints the delays (ms after the writer's answer) as p50/p99/max

Only loopback URLs are used by the callers; every request has a timeout."""
import http.client
import json
import sys
import time
import urllib.parse


def conn_for(base, timeout=5.0):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def request(conn, method, path, headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def verify_headers(secret, region, scope):
    return {"X-Token": secret, "X-Cockpit-Scope": scope, "X-Cockpit-Region": region}


def cmd_create(base, key, region, project, *scopes):
    body = json.dumps({"project_id": project, "name": "mn-" + str(int(time.time() * 1e6)),
                       "token_scopes": list(scopes)})
    st, data = request(conn_for(base), "POST", f"/cockpit/v1/regions/{region}/tokens",
                       {"X-Auth-Token": key, "Content-Type": "application/json"}, body)
    if st != 200:
        print(f"create: HTTP {st}: {data[:300]!r}", file=sys.stderr)
        return 1
    tok = json.loads(data)
    print(tok["id"], tok["secret_key"])
    return 0


def cmd_delete(base, key, region, token_id):
    st, data = request(conn_for(base), "DELETE", f"/cockpit/v1/regions/{region}/tokens/{token_id}",
                       {"X-Auth-Token": key})
    if st != 204:
        print(f"delete: HTTP {st}: {data[:300]!r}", file=sys.stderr)
        return 1
    return 0


def cmd_verify(base, secret, region, scope):
    st, _ = request(conn_for(base), "GET", "/auth/verify", verify_headers(secret, region, scope))
    print(st)
    return 0


def cmd_wait_verify(base, secret, region, scope, want, timeout_s):
    want, deadline = int(want), float(timeout_s)
    hdrs = verify_headers(secret, region, scope)
    t0 = time.monotonic()
    conn, last = None, None
    while True:
        try:
            conn = conn or conn_for(base, 2.0)
            last, _ = request(conn, "GET", "/auth/verify", hdrs)
        except (OSError, http.client.HTTPException):
            conn, last = None, 0
        elapsed = time.monotonic() - t0
        if last == want:
            print(f"{elapsed * 1000:.1f}")
            return 0
        if elapsed > deadline:
            print(f"timeout after {elapsed:.2f}s (last status {last})")
            return 1
        time.sleep(0.002)


def cmd_call(base, method, path, key=None, timeout_s="10"):
    t0 = time.monotonic()
    try:
        st, data = request(conn_for(base, float(timeout_s)), method, path,
                           {"X-Auth-Token": key} if key else {})
    except (OSError, http.client.HTTPException) as e:
        st, data = 0, str(e).encode()
    ms = (time.monotonic() - t0) * 1000
    print(st, f"{ms:.0f}", data.decode(errors="replace").replace("\n", " "))
    return 0


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))]


def wait_all(conns, hdrs, want, t_ack, t_req, delays, limit_s=5.0):
    """Polls each node (keep-alive, no pause) until it answers `want`; records the
    delay after the writer's answer and after the write request was sent."""
    pending = set(range(len(conns)))
    while pending:
        for i in list(pending):
            st, _ = request(conns[i], "GET", "/auth/verify", hdrs)
            if st == want:
                now = time.monotonic()
                delays.append(((now - t_ack) * 1000, (now - t_req) * 1000))
                pending.discard(i)
        if time.monotonic() - t_ack > limit_s:
            raise RuntimeError(f"not propagated within {limit_s}s (want {want})")


def one_round(conns, w, key, r, adds, removes):
    project = "22222222-3333-4444-8555-666666666666"
    others = [c for i, c in enumerate(conns) if i != w]
    body = json.dumps({"project_id": project, "name": f"prop-{r}",
                       "token_scopes": ["read_only_metrics"]})
    t_req = time.monotonic()
    st, data = request(conns[w], "POST", "/cockpit/v1/regions/fr-par/tokens",
                       {"X-Auth-Token": key, "Content-Type": "application/json"}, body)
    if st != 200:
        raise RuntimeError(f"create: HTTP {st} {data[:200]!r}")
    tok = json.loads(data)
    hdrs = verify_headers(tok["secret_key"], "fr-par", "read_only_metrics")
    wait_all(others, hdrs, 204, time.monotonic(), t_req, adds)
    t_req = time.monotonic()
    st, _ = request(conns[w], "DELETE", f"/cockpit/v1/regions/fr-par/tokens/{tok['id']}",
                    {"X-Auth-Token": key})
    if st != 204:
        raise RuntimeError(f"delete: HTTP {st}")
    wait_all(others, hdrs, 401, time.monotonic(), t_req, removes)


def cmd_propagate(key, rounds, *bases):
    conns = [conn_for(b) for b in bases]
    adds, removes = [], []
    for r in range(int(rounds)):
        one_round(conns, r % len(bases), key, r, adds, removes)
    print("delays in ms: after the writer's answer | after the write request was sent")
    for name, d in (("create -> allowed", adds), ("delete -> rejected", removes)):
        ack, req = [x[0] for x in d], [x[1] for x in d]
        print(f"{name:20s} n={len(d)}  p50 {percentile(ack, 50):.2f} p99 {percentile(ack, 99):.2f} "
              f"max {max(ack):.2f} | p50 {percentile(req, 50):.2f} p99 {percentile(req, 99):.2f} "
              f"max {max(req):.2f}")
    return 0


def main(argv):
    cmds = {"create": cmd_create, "delete": cmd_delete, "verify": cmd_verify,
            "wait-verify": cmd_wait_verify, "call": cmd_call, "propagate": cmd_propagate}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
