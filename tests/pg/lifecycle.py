"""Token lifecycle across two nodes on one PostgreSQL: a rotation on node A
shortens the old token's life on node B through the change feed (timed); the
grace holds on B too; last use reported by both nodes keeps the latest
(GREATEST); a restart keeps expiry and last use.

usage: lifecycle.py POSTGRES_URI   (PGPASSWORD in the environment)"""
import calendar
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import Checks, Server, jbody, main_guard, request  # noqa: E402

T = Checks("lifecycle-postgres")
P = str(uuid.uuid4())
BASE = "/cockpit/v1/regions/fr-par/tokens"
ROTATIONS = 20


def api(srv, method, path, body=None):
    st, _, data = request(srv.port, method, BASE + path, {"X-Auth-Token": srv.key},
                          json.dumps(body) if body is not None else None)
    return st, jbody(data) or {}


def verify(srv, secret):
    st, _, data = request(srv.port, "GET", "/auth/verify",
                          {"X-Token": secret, "X-Cockpit-Scope": "read_only_metrics",
                           "X-Cockpit-Region": "fr-par"})
    return st, (jbody(data) or {}).get("reason")


def wait_status(srv, secret, want, limit_s):
    """Seconds until verify answers `want` (polling), or None after limit_s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if verify(srv, secret)[0] == want:
            return time.monotonic() - t0
        time.sleep(0.002)
    return None


def create(srv, name="rot"):
    st, tok = api(srv, "POST", "", {"project_id": P, "name": name,
                                    "token_scopes": ["read_only_metrics"]})
    assert st == 200, (st, tok)
    return tok


def rotation_propagates(a, b):
    delays, reasons, fresh_ok = [], set(), True
    tok = create(a)
    for _ in range(ROTATIONS):
        assert wait_status(b, tok["secret_key"], 204, 5) is not None, "token reached b"
        st, new = api(a, "POST", "/%s/rotate" % tok["id"])
        assert st == 200, (st, new)
        delays.append(wait_status(b, tok["secret_key"], 401, 5))  # from a's 200 on
        reasons.add(verify(b, tok["secret_key"])[1])
        fresh_ok = fresh_ok and wait_status(b, new["secret_key"], 204, 5) is not None
        tok = new
    ok = [x for x in delays if x is not None]
    ok.sort()
    T.eq(len(ok), ROTATIONS, "every rotation on a ended the old token on b")
    if ok:
        p50, p99 = ok[len(ok) // 2] * 1000, ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000
        T.ok(p99 <= 1000, "old token refused on b after a's 200: p50 %.1f ms, max %.1f ms"
             % (p50, p99))
    T.eq(reasons, {"expired"}, "b refuses the old token with reason expired")
    T.ok(fresh_ok, "each new token verifies on b")
    return tok


def grace_holds(a, b):
    tok = create(a, "graced")
    assert wait_status(b, tok["secret_key"], 204, 5) is not None
    st, new = api(a, "POST", "/%s/rotate" % tok["id"], {"grace_period": "2s"})
    T.eq(st, 200, "rotate with a 2 s grace on a")
    time.sleep(0.3)
    T.eq(verify(b, tok["secret_key"])[0], 204, "b: the old token works during the grace")
    T.eq(verify(b, new["secret_key"])[0], 204, "b: the new one too")
    st, old = api(b, "GET", "/" + tok["id"])
    d = wait_status(b, tok["secret_key"], 401, 4)
    T.ok(d is not None, "b: the old token is refused once the grace is over")
    return tok, old


def latest_use_wins(a, b):
    """b flushes every 3 s, a every second: b's older use is written after a's
    newer one, and must not move last_used_at back."""
    tok = create(a, "used")
    assert wait_status(b, tok["secret_key"], 204, 5) is not None  # b's use, second s1
    time.sleep(1.2)
    assert verify(a, tok["secret_key"])[0] == 204  # a's use, a later second s2
    s2 = int(time.time())
    time.sleep(4)  # both have flushed
    st, got = api(a, "GET", "/" + tok["id"])
    used = got.get("last_used_at")
    T.ok(used is not None, "last_used_at written by the nodes")
    if used:
        at = calendar.timegm(time.strptime(used[:19], "%Y-%m-%dT%H:%M:%S"))
        T.ok(s2 - 1 <= at <= s2, "the latest use (a's) is kept over b's later write: %s" % used)
    return tok, used


def run():
    uri = sys.argv[1]
    key = str(uuid.uuid4())
    a = Server("--regions", "fr-par", "--last-used-interval", "1", db=uri, key=key).start()
    b = Server("--regions", "fr-par", "--last-used-interval", "3", db=uri, key=key).start()
    rotation_propagates(a, b)
    rotated, old_on_b = grace_holds(a, b)
    used_tok, used = latest_use_wins(a, b)
    b.stop()
    b.start()
    st, old = api(b, "GET", "/" + rotated["id"])
    T.eq(old.get("expires_at"), old_on_b.get("expires_at"), "b restarted: the expiry is kept")
    T.eq(verify(b, rotated["secret_key"]), (401, "expired"), "... and enforced")
    st, got = api(b, "GET", "/" + used_tok["id"])
    T.eq(got.get("last_used_at"), used, "b restarted: last use is kept")
    a.stop()
    b.stop()
    return T.done()


if __name__ == "__main__":
    main_guard(run)
