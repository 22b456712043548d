#!/usr/bin/env python3
"""Abuse control against the real server:

  * repeated failed X-Auth-Token attempts from one address are throttled:
    429 too_many_requests with help_message and Retry-After (flags
    --auth-fail-limit, --auth-fail-window); the throttled address is refused
    even with a valid key until the window ends; /healthz and the data plane
    are not throttled; another address (127.0.0.2) is served at full speed;
  * the per-project quota (--max-tokens-per-project N): 403 quotas_exceeded with
    details [{resource, quota, current}], per project and region, freed by a delete.
Only 127.0.0.0/8 is used."""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import P1, P2, Checks, Server, create_token, jbody, main_guard, request, verify  # noqa: E402

T = Checks("abuse")
TOKENS = "/cockpit/v1/regions/fr-par/tokens"


def throttle():
    srv = Server("--auth-fail-limit", "5", "--auth-fail-window", "3").start()
    port, key = srv.port, srv.key
    st, _, data = create_token(port, key, scopes=["read_only_metrics"])
    secret = jbody(data)["secret_key"]
    bad = str(uuid.uuid4())
    sts = [request(port, "GET", TOKENS, {"X-Auth-Token": bad})[0] for _ in range(5)]
    T.eq(sts, [401] * 5, "5 failed attempts from 127.0.0.1 -> 401 each")
    t_limited = time.monotonic()
    st, h, data = request(port, "GET", TOKENS, {"X-Auth-Token": bad})
    j = jbody(data) or {}
    T.ok(st == 429 and j.get("type") == "too_many_requests" and j.get("help_message"),
         "6th attempt -> 429 too_many_requests with help_message", "%d %r" % (st, data[:160]))
    ra = h.get("retry-after", "")
    T.ok(ra.isdigit() and 1 <= int(ra) <= 3, "... with Retry-After in seconds (1..window)",
         "Retry-After: %r" % ra)
    T.eq(h.get("content-type"), "application/json", "... as application/json")
    said = [w for w in j.get("help_message", "").split() if w.isdigit()]
    T.ok(said and ra.isdigit() and int(said[0]) == int(ra),
         "... Retry-After agrees with help_message (the time left in the window)",
         "Retry-After %s, help_message %r" % (ra, j.get("help_message")))
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": key})
    T.eq(st, 429, "the throttled address is refused even with a valid key")
    st, _, _ = request(port, "POST", TOKENS, {"X-Auth-Token": key}, "{}")
    T.eq(st, 429, "... on create too")
    T.eq(request(port, "GET", "/healthz")[0], 200, "/healthz is not throttled")
    T.eq(verify(port, {"X-Token": secret, "X-Cockpit-Scope": "read_only_metrics",
                       "X-Cockpit-Region": "fr-par"}), 204,
         "the data plane (/auth/verify) is not throttled")

    # Another address, hammered concurrently by the throttled one, is served at full speed.
    stop = threading.Event()
    hammered = [0]

    def hammer():
        while not stop.is_set():
            request(port, "GET", TOKENS, {"X-Auth-Token": bad})
            hammered[0] += 1

    th = threading.Thread(target=hammer)
    th.start()
    lat, sts = [], []
    for _ in range(50):
        t0 = time.perf_counter()
        sts.append(request(port, "GET", TOKENS + "?page_size=1", {"X-Auth-Token": key},
                           src="127.0.0.2")[0])
        lat.append((time.perf_counter() - t0) * 1000)
    stop.set()
    th.join()
    lat.sort()
    T.ok(sts == [200] * 50 and lat[len(lat) // 2] < 20,
         "127.0.0.2 with a valid key is served while 127.0.0.1 is throttled",
         "p50 %.2f ms, max %.2f ms; %d attempts from 127.0.0.1 meanwhile"
         % (lat[len(lat) // 2], lat[-1], hammered[0]))
    sts = [request(port, "GET", TOKENS, {"X-Auth-Token": bad}, src="127.0.0.2")[0]
           for _ in range(6)]
    T.eq(sts, [401] * 5 + [429], "127.0.0.2 has its own budget (5 x 401, then 429)")
    # The window ends 3 s after it began (the first failure); wait it out.
    time.sleep(max(0.0, 3.3 - (time.monotonic() - t_limited)))
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        st = request(port, "GET", TOKENS, {"X-Auth-Token": key})[0]
        if st == 200:
            break
        time.sleep(0.25)
    T.eq(st, 200, "after the window, 127.0.0.1 with a valid key is served again")
    srv.stop()

    srv = Server("--auth-fail-limit", "0").start()
    sts = {request(srv.port, "GET", TOKENS, {"X-Auth-Token": bad})[0] for _ in range(30)}
    T.eq(sts, {401}, "--auth-fail-limit 0 disables throttling (30 x 401)")
    srv.stop()


def quota():
    srv = Server("--max-tokens-per-project", "3").start()
    port, key = srv.port, srv.key
    ids = []
    for i in range(3):
        st, _, data = create_token(port, key, project=P1)
        ids.append((jbody(data) or {}).get("id"))
    T.ok(all(ids), "3 tokens in project P1 (quota 3)")
    st, _, data = create_token(port, key, project=P1)
    j = jbody(data) or {}
    T.ok(st == 403 and j.get("type") == "quotas_exceeded", "4th -> 403 quotas_exceeded",
         "%d %r" % (st, data[:200]))
    T.eq(j.get("details"), [{"current": 3, "quota": 3, "resource": "tokens"}],
         "... details [{resource, quota, current}]")
    st, _, data = create_token(port, key, project=P2)
    T.eq(st, 200, "another project is not affected")
    st, _, data = create_token(port, key, project=P1, region="nl-ams")
    T.eq(st, 200, "the same project in another region is not affected (per project and region)")
    st, _, _ = request(port, "DELETE", TOKENS + "/" + ids[0], {"X-Auth-Token": key})
    T.eq(st, 204, "delete one token of P1")
    st, _, _ = create_token(port, key, project=P1)
    T.eq(st, 200, "... and P1 may create one again")
    st, _, _ = create_token(port, key, project=P1)
    T.eq(st, 403, "... but not two")
    srv.stop()


def main():
    for name, fn in (("throttle", throttle), ("quota", quota)):
        t0 = time.monotonic()
        print("# %s" % name, flush=True)
        fn()
        print("#   (%.1f s)" % (time.monotonic() - t0), flush=True)
    return T.done()


if __name__ == "__main__":
    main_guard(main)
