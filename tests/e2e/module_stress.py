"""Concurrency stress of the nginx module (run by tests/e2e/module-stress.sh).

usage: module_stress.py API_HOSTPORT GATEWAY_HOSTPORT ADMIN_KEY INDEX_PATH CYCLES STABLE_OUT

Churn threads create a token, ask the gateway with it (must be 200, tenant = its
project) three times over two keep-alive connections (so that the workers' memos of
recent tokens hold it), delete it, and ask again on both (must be 401), CYCLES times
in all. Hammer threads meanwhile ask with stable tokens
(must always be 200) and with tokens whose delete was already answered (must be 401).
A watcher notes each new index file (rebuilds). Prints one line per check and
"N passed, M failed"; writes one stable token's secret to STABLE_OUT for the
fail-closed checks that follow in module-stress.sh. Python 3 standard library only; bounded in time."""
import http.client
import json
import os
import sys
import threading
import time
import uuid

API, GW, KEY, INDEX = sys.argv[1:5]
CYCLES, STABLE_OUT = int(sys.argv[5]), sys.argv[6]
DEADLINE = time.monotonic() + 45
CHURNERS, HAMMERS, STABLE = 3, 3, 8


class Conn:
    """One keep-alive connection, reopened after an error."""

    def __init__(self, hostport):
        self.host, self.port = hostport.rsplit(":", 1)
        self.c = None

    def request(self, method, path, headers=None, body=None):
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.host, int(self.port), timeout=5)
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                return r.status, r, data
            except (OSError, http.client.HTTPException):
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


lock = threading.Lock()
errors = []
stats = {"gw": 0, "cycles": 0}
workers = set()
deleted = []  # secrets whose delete was answered
inodes = set()
done = threading.Event()


def fail(msg):
    with lock:
        if len(errors) < 20:
            errors.append(msg)


def ask(gw, secret):
    status, r, _ = gw.request("GET", "/api/v1/query", {"X-Token": secret})
    with lock:
        stats["gw"] += 1
        workers.add(r.getheader("X-Worker"))
    return status, r.getheader("X-Tenant")


def create(api, project):
    body = json.dumps({"project_id": project, "name": "stress-" + uuid.uuid4().hex[:8],
                       "token_scopes": ["read_only_metrics"]})
    status, _, data = api.request("POST", "/cockpit/v1/regions/fr-par/tokens",
                                  {"X-Auth-Token": KEY, "Content-Type": "application/json"}, body)
    if status != 200:
        raise AssertionError("create: %d %s" % (status, data[:200]))
    j = json.loads(data)
    return j["id"], j["secret_key"]


def churn(n):
    api, gws = Conn(API), [Conn(GW), Conn(GW)]
    project = str(uuid.uuid4())
    for i in range(n):
        if time.monotonic() > DEADLINE:
            fail("churn: deadline reached after %d cycles" % i)
            return
        gw = gws[i % 2]
        tid, secret = create(api, project)
        status, tenant = ask(gw, secret)
        if status != 200 or tenant != project:
            fail("new token: first request after create -> %d tenant %s" % (status, tenant))
        # Asked again, on the other connection too: the workers that answered now
        # hold it in their memo, which the delete below must not outlive.
        for other in gws:
            status, tenant = ask(other, secret)
            if status != 200 or tenant != project:
                fail("new token: repeated request -> %d tenant %s" % (status, tenant))
        status, _, data = api.request("DELETE", "/cockpit/v1/regions/fr-par/tokens/" + tid,
                                      {"X-Auth-Token": KEY})
        if status != 204:
            fail("delete: %d %s" % (status, data[:200]))
            continue
        with lock:
            deleted.append(secret)
        for other in (gws[(i + 1) % 2], gws[i % 2]):
            status, _ = ask(other, secret)
            if status != 401:
                fail("deleted token: first request after delete -> %d" % status)
        with lock:
            stats["cycles"] += 1


def hammer(stable, project):
    gws = [Conn(GW), Conn(GW)]
    i = 0
    while not done.is_set():
        gw = gws[i % 2]
        status, tenant = ask(gw, stable[i % len(stable)])
        if status != 200 or tenant != project:
            fail("stable token -> %d tenant %s" % (status, tenant))
        with lock:
            gone = deleted[i % len(deleted)] if deleted else None
        if gone is not None:
            status, _ = ask(gw, gone)
            if status != 401:
                fail("deleted token (hammer) -> %d" % status)
        i += 1


def watch():
    while not done.is_set():
        try:
            inodes.add(os.stat(INDEX).st_ino)
        except OSError:
            pass
        time.sleep(0.005)


def main():
    gw = Conn(GW)
    while True:  # the gateway is up once it answers anything
        try:
            gw.request("GET", "/api/v1/query")
            break
        except OSError:
            if time.monotonic() > DEADLINE:
                print("FAIL gateway never answered\n0 passed, 1 failed")
                return 1
            time.sleep(0.1)
    api, project = Conn(API), str(uuid.uuid4())
    stable = [create(api, project)[1] for _ in range(STABLE)]
    with open(STABLE_OUT, "w") as f:
        f.write(stable[0])
    threads = [threading.Thread(target=watch)]
    threads += [threading.Thread(target=hammer, args=(stable, project)) for _ in range(HAMMERS)]
    churners = [threading.Thread(target=churn, args=(CYCLES // CHURNERS,)) for _ in range(CHURNERS)]
    t0 = time.monotonic()
    for t in threads + churners:
        t.start()
    for t in churners:
        t.join()
    done.set()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    checks = [
        ("every answer was right (%d gateway requests, %d create/delete cycles in %.1f s)"
         % (stats["gw"], stats["cycles"], secs), not errors, "; ".join(errors)),
        ("all %d cycles ran" % (CHURNERS * (CYCLES // CHURNERS)),
         stats["cycles"] == CHURNERS * (CYCLES // CHURNERS), "ran %d" % stats["cycles"]),
        ("both nginx workers answered", len(workers - {None}) >= 2, "workers %s" % workers),
        ("the service rebuilt the index file under load (%d files)" % len(inodes),
         len(inodes) >= 2, "inodes %s" % inodes),
    ]
    failed = 0
    for name, ok, detail in checks:
        print("%s module-stress: %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + detail))
        failed += not ok
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


sys.exit(main())
