#!/usr/bin/env python3
"""Small HTTP client for the multi-node tests and the propagation benchmark.

  ct_http.py create BASE KEY REGION PROJECT SCOPE...   -> "ID SECRET" (exit 1 unless 200)
  ct_http.py delete BASE KEY REGION ID                 -> exit 0 on 204
  ct_http.py verify BASE SECRET REGION SCOPE           -> prints the status code
  ct_http.py wait-verify BASE SECRET REGION SCOPE WANT TIMEOUT_S
        polls /auth/verify (keep-alive, tightly) until it answers WANT; prints the
        milliseconds it took; exit 1 on timeout (prints the last status seen)
  ct_http.py call BASE METHOD PATH [KEY] [TIMEOUT_S]   -> "STATUS MS BODY" (status 0 = no answer)

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


def main(argv):
    cmds = {"create": cmd_create, "delete": cmd_delete, "verify": cmd_verify,
            "wait-verify": cmd_wait_verify, "call": cmd_call}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
