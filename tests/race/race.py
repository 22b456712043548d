#!/usr/bin/env python3
"""Create/delete race stress: creators and deleters run concurrently against one
real server; every acknowledged delete must make the token's secret refused by
/auth/verify from the next request on, whatever the interleaving.

  race.py [--db URI] [--seconds S] [--creators N] [--deleters N] [--rounds R]
          [--event-threads N]

Creators create tokens in one project as fast as they can. Deleters list the
newest three tokens of that project and delete them, so most deletes land while
the token's create is still on its way back to its creator (after the commit,
before or around the verification index update). Checks:
  * an acknowledged delete whose secret is already known: /auth/verify -> 401 at once;
  * a token deleted before its creator got the reply (the interleaving that used to
    resurrect it): /auth/verify -> 401 as soon as the creator has the secret;
  * at the end of each round: every deleted token 401, every live token 204, and
    the index count (/metrics cockpit_tokens_index_tokens) equals the store's
    count (List total_count).
Each round runs on a fresh server (fresh database unless --db is PostgreSQL, where
the rounds share it). Only 127.0.0.1; every request has a timeout.
Prints the figures (rounds, creates, deletes, interleavings) and exits 1 on any
failed check."""
import argparse
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import P1, Checks, Server, connection, main_guard  # noqa: E402

TOKENS = "/cockpit/v1/regions/fr-par/tokens"
SCOPE = "read_only_metrics"


class Round:
    def __init__(self, port, key):
        self.port, self.key = port, key
        self.lock = threading.Lock()
        self.secrets = {}      # id -> secret, once the creator has it
        self.deleted = {}      # id -> True once a delete was acknowledged
        self.creates = self.deletes = self.interleaved = self.verifies = 0
        self.errors = []       # unexpected answers (harness or server faults)
        self.resurrected = []  # (id, when): verify 204 after an acknowledged delete
        self.stop = threading.Event()

    def call(self, conn, method, path, headers, body=None):
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    def verify(self, conn, tid, secret, when):
        st, _ = self.call(conn, "GET", "/auth/verify",
                          {"X-Token": secret, "X-Cockpit-Scope": SCOPE,
                           "X-Cockpit-Region": "fr-par"})
        with self.lock:
            self.verifies += 1
            if st != 401:
                self.resurrected.append((tid, when, st))

    def creator(self, n):
        conn = connection(self.port, timeout=20)
        hdr = {"X-Auth-Token": self.key, "Content-Type": "application/json"}
        i = 0
        while not self.stop.is_set():
            i += 1
            body = json.dumps({"project_id": P1, "name": "race-%d-%d" % (n, i),
                               "token_scopes": [SCOPE]})
            st, data = self.call(conn, "POST", TOKENS, hdr, body)
            if st != 200:
                self.errors.append("create: %d %s" % (st, data[:200]))
                continue
            tok = json.loads(data)
            with self.lock:
                self.creates += 1
                self.secrets[tok["id"]] = tok["secret_key"]
                late = tok["id"] in self.deleted
                if late:
                    self.interleaved += 1
            if late:  # deleted before its create answered: the dangerous interleaving
                self.verify(conn, tok["id"], tok["secret_key"], "after its create answered")
        conn.close()

    def deleter(self):
        conn = connection(self.port, timeout=20)
        hdr = {"X-Auth-Token": self.key}
        while not self.stop.is_set():
            st, data = self.call(conn, "GET", TOKENS + "?project_id=%s&order_by=created_at_desc"
                                 "&page_size=3" % P1, hdr)
            if st != 200:
                self.errors.append("list: %d %s" % (st, data[:200]))
                continue
            for t in json.loads(data)["tokens"]:
                st, data = self.call(conn, "DELETE", TOKENS + "/" + t["id"], hdr)
                if st == 404:
                    continue  # another deleter was first
                if st != 204:
                    self.errors.append("delete: %d %s" % (st, data[:200]))
                    continue
                with self.lock:
                    self.deletes += 1
                    self.deleted[t["id"]] = True
                    secret = self.secrets.get(t["id"])
                if secret:
                    self.verify(conn, t["id"], secret, "right after its delete")
        conn.close()

    def index_vs_store(self):
        conn = connection(self.port, timeout=20)
        st, data = self.call(conn, "GET", "/metrics", {})
        idx = sum(int(m) for m in re.findall(
            rb'^cockpit_tokens_index_tokens\{region="[^"]+"\} (\d+)$', data, re.M))
        m = re.search(rb'^cockpit_tokens_index_tombstones (\d+)$', data, re.M)
        tombs = int(m.group(1)) if m else 0
        store = 0
        for region in ("fr-par", "nl-ams", "pl-waw"):
            st, data = self.call(conn, "GET", "/cockpit/v1/regions/%s/tokens?page_size=1" % region,
                                 {"X-Auth-Token": self.key})
            store += json.loads(data)["total_count"]
        conn.close()
        return idx, store, tombs

    def final(self, checks, label):
        conn = connection(self.port, timeout=20)
        with self.lock:
            secrets, deleted = dict(self.secrets), set(self.deleted)
        for tid in deleted:
            if tid in secrets:
                self.verify(conn, tid, secrets[tid], "at the end of the round")
        live_bad = []
        for tid, secret in secrets.items():
            if tid in deleted:
                continue
            st, _ = self.call(conn, "GET", "/auth/verify",
                              {"X-Token": secret, "X-Cockpit-Scope": SCOPE,
                               "X-Cockpit-Region": "fr-par"})
            if st != 204:
                live_bad.append((tid, st))
        conn.close()
        # PostgreSQL: the node's own change feed may still be delivering; it only
        # ever converges, so allow it a moment.
        deadline = time.monotonic() + 3
        while True:
            idx, store, tombs = self.index_vs_store()
            if (idx == store and tombs == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        checks.ok(not self.errors, "%s: every request answered as expected" % label,
                  "; ".join(self.errors[:5]))
        checks.ok(not self.resurrected, "%s: no deleted token verified after its delete was "
                  "acknowledged" % label,
                  "%d did: %s" % (len(self.resurrected), self.resurrected[:5]))
        checks.ok(not live_bad, "%s: every live token verifies" % label, str(live_bad[:5]))
        checks.ok(idx == store, "%s: index count == store count" % label,
                  "index %d, store %d" % (idx, store))
        checks.eq(tombs, 0, "%s: no tombstone left once the change feed has caught up" % label)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--creators", type=int, default=6)
    ap.add_argument("--deleters", type=int, default=6)
    ap.add_argument("--event-threads", type=int, default=1)
    ap.add_argument("--label", default="sqlite")
    a = ap.parse_args()
    checks = Checks("race (%s)" % a.label)
    # tmpfs makes commits fast, which is when the window between a commit and
    # the index update is widest relative to a whole delete.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    totals = {"creates": 0, "deletes": 0, "interleaved": 0, "verifies": 0}
    for rnd in range(1, a.rounds + 1):
        workdir = None
        if not a.db and shm:
            import tempfile
            workdir = tempfile.mkdtemp(prefix="ct-race.", dir=shm)
        srv = Server("--event-threads", str(a.event_threads), "--max-tokens-per-project", "0",
                     "--access-log", "off", db=a.db, workdir=workdir)
        srv.start()
        r = Round(srv.port, srv.key)
        threads = [threading.Thread(target=r.creator, args=(i,)) for i in range(a.creators)]
        threads += [threading.Thread(target=r.deleter) for _ in range(a.deleters)]
        for t in threads:
            t.start()
        time.sleep(a.seconds)
        r.stop.set()
        for t in threads:
            t.join(60)
        label = "%s round %d" % (a.label, rnd)
        r.final(checks, label)
        checks.note("%s: %d creates, %d deletes, %d deleted before their create answered, "
                    "%d verifications of deleted tokens"
                    % (label, r.creates, r.deletes, r.interleaved, r.verifies))
        for k in totals:
            totals[k] += getattr(r, k)
        srv.stop()
        if workdir:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    checks.note("%s total: %d rounds, %d creates, %d deletes, %d interleavings (delete "
                "acknowledged before the create answered), %d verifications of deleted tokens"
                % (a.label, a.rounds, totals["creates"], totals["deletes"], totals["interleaved"],
                   totals["verifies"]))
    return checks.done()


if __name__ == "__main__":
    main_guard(main)
