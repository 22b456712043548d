#!/usr/bin/env python3
"""Requests against revocations (service/keycache.c): each event thread keeps
the API keys it authenticated for a Get while the database is unchanged, and
every thread the keys it authenticated otherwise (a Create on the event
thread, a List on a worker) while the store's key version holds (no key
deleted through it, nothing else wrote the file). What must never happen is
an answer other than 401 to a request sent after its key's deletion
committed, or a Get answered 200 with a token deleted before it was sent.

Rounds of: an API key made with the CLI (another process, as an operator
would), clients hammering Get, Create or List with it over keep-alive
connections spread over the event threads, then `apikey delete` from the CLI;
every request sent after the delete returned must be refused (401). And
tokens created and deleted through the API while readers Get them: after the
delete's 204, no Get of that token may answer 200.

  key_revoke.py [--rounds N] [--readers N] [--event-threads N]"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import P1, Checks, Server, connection, create_token, main_guard  # noqa: E402

BASE = "/cockpit/v1/regions/fr-par/tokens/"


class Readers:
    """Threads that Get one token with one key until stopped, recording for
    each answer the monotonic time its request was sent and the status."""

    def __init__(self, port, key, token_id, n, kind="get"):
        self.port, self.key, self.token_id, self.kind = port, key, token_id, kind
        self.stop = threading.Event()
        self.go = threading.Event()  # cleared: readers park before their next request
        self.go.set()
        self.parked = threading.Semaphore(0)
        self.seen = []  # (sent_at, status), appended under the GIL
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]

    def hold(self):
        """Parks every reader between two requests (their connections stay open)."""
        self.go.clear()
        for _ in self.threads:
            self.parked.acquire(timeout=20)

    def run(self):
        conn = connection(self.port)
        while not self.stop.is_set():
            if not self.go.is_set():
                self.parked.release()
                self.go.wait()
            sent = time.monotonic()
            try:
                if self.kind == "create":
                    body = json.dumps({"project_id": P1, "name": "race",
                                       "token_scopes": ["read_only_metrics"]})
                    conn.request("POST", BASE.rstrip("/"), body=body,
                                 headers={"X-Auth-Token": self.key,
                                          "Content-Type": "application/json"})
                elif self.kind == "list":
                    conn.request("GET", BASE.rstrip("/") + "?page_size=1",
                                 headers={"X-Auth-Token": self.key})
                else:
                    conn.request("GET", BASE + self.token_id, headers={"X-Auth-Token": self.key})
                r = conn.getresponse()
                r.read()
                self.seen.append((sent, r.status))
            except OSError:
                conn.close()
                conn = connection(self.port)
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=20)


def key_round(srv, checks, readers, r, kind):
    out = json.loads(srv.cli("apikey", "create", "--description", "race-%d" % r, "-o", "json"))
    key, access = out["secret_key"], out["access_key"]
    tok = json.loads(create_token(srv.port, srv.key)[2])
    with Readers(srv.port, key, tok["id"], readers, kind) as rd:
        time.sleep(0.3)  # every event thread has the key cached by now
        # Readers wait while the key is deleted, so the very first request of each
        # connection afterwards meets a cache that was current a moment ago.
        rd.hold()
        srv.cli("apikey", "delete", access)
        deleted = time.monotonic()
        rd.go.set()
        time.sleep(0.3)
    ok_before = sum(1 for t, s in rd.seen if t < deleted and s == 200)
    late = [s for t, s in rd.seen if t > deleted and s != 401]
    after = sum(1 for t, s in rd.seen if t > deleted)
    checks.ok(ok_before > 0, "round %d, %s: the key worked before its deletion" % (r, kind),
              "%d answered 200" % ok_before)
    checks.ok(after > 0 and not late, "round %d: every %s sent after `apikey delete` "
              "returned is refused (401)" % (r, kind), "%d after, wrong: %s" % (after, late[:5]))


def token_round(srv, checks, readers, r):
    tok = json.loads(create_token(srv.port, srv.key)[2])
    with Readers(srv.port, srv.key, tok["id"], readers) as rd:
        time.sleep(0.2)
        rd.hold()
        conn = connection(srv.port)
        conn.request("DELETE", BASE + tok["id"], headers={"X-Auth-Token": srv.key})
        status = conn.getresponse().status
        conn.close()
        deleted = time.monotonic()
        rd.go.set()
        time.sleep(0.2)
    late = [s for t, s in rd.seen if t > deleted and s != 404]
    checks.ok(status == 204 and not late, "round %d: no Get sent after the token's delete "
              "answered anything but 404" % r, "delete %d, wrong: %s" % (status, late[:5]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--readers", type=int, default=6)
    ap.add_argument("--event-threads", type=int, default=2)
    a = ap.parse_args()
    checks = Checks("Get, Create and List against key and token revocation, %d event threads"
                    % a.event_threads)
    # No failure throttling: a 429 would answer before the key is looked at.
    srv = Server("--event-threads", str(a.event_threads), "--access-log", "off",
                 "--auth-fail-limit", "0").start()
    for r in range(1, a.rounds + 1):
        for kind in ("get", "create", "list"):
            key_round(srv, checks, a.readers, r, kind)
        token_round(srv, checks, a.readers, r)
    srv.stop()
    checks.eq(srv.proc.returncode, 0, "clean exit on SIGTERM")
    return checks.done()


main_guard(main)
