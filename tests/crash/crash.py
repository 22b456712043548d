#!/usr/bin/env python3
"""Crash consistency: concurrent creates, rotations and deletes against the real server,
`kill -9` at random moments, restart, and compare the store with what the
clients saw acknowledged.

  crash.py --bin build/cockpit-tokens --db sqlite:/tmp/x/t.db --kills 5 [--clients 8]
           [--min-load 0.3] [--max-load 1.2] [--seed N] [--workdir DIR]

After every restart (and once more at the end) it checks:
  * every acknowledged create is present: in the list, GET 200 with the fields the
    create answered, and its secret verifies (/auth/verify -> 204);
  * every acknowledged delete is absent: not listed, GET 404, verify 401 (never
    resurrected, at any later restart either);
  * every listed token is well formed (all fields valid), no id is listed twice
    (every page of every region), and every listed token is either acknowledged
    or the answer to a create whose reply was lost in the crash (matched by its
    unique name): no phantom tokens;
  * creates and deletes whose reply was lost are resolved once (present or
    absent) and must stay that way afterwards;
  * a rotation (grace 1 h) is a create of a token with its origin's name: once
    acknowledged the new token is there and verifies, and so does the old one (its
    grace runs), now with an expires_at; a rotation whose reply was lost is
    resolved like a create;
  * at the end, the audit log (`cockpit-tokens audit list -o json`) agrees: an
    acknowledged change has its audit row, and no audit row describes a change
    the store does not show (same transaction).
Only 127.0.0.1 is used; every request has a timeout; the run stops by itself.
Exit status 0 when every check passed."""
import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REGIONS = ["fr-par", "nl-ams"]
SCOPES = ["read_only_metrics", "write_only_metrics", "full_access_metrics_rules",
          "read_only_logs", "write_only_logs", "full_access_logs_rules",
          "full_access_alert_manager", "read_only_traces", "write_only_traces"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ANY_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{3,50}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{64}$")
TOKEN_KEYS = ["id", "project_id", "name", "created_at", "updated_at", "scopes", "secret_key",
              "region", "expires_at", "last_used_at"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class PortTaken(Exception):
    pass


class Server:
    """One cockpit-tokens process; restarted on the same port and database."""

    def __init__(self, binary, db, key, workdir, extra):
        self.binary, self.db, self.key, self.workdir, self.extra = binary, db, key, workdir, extra
        self.port = free_port()
        self.proc = None
        self.starts = 0

    def start(self):
        for _ in range(3):
            try:
                return self._start()
            except PortTaken:
                self.port = free_port()  # another process took it between kill and restart
        raise RuntimeError("no free port after 3 attempts")

    def _start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, "server-%d.log" % self.starts), "wb")
        env = dict(os.environ, COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=self.key)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--db", self.db,
             "--regions", ",".join(REGIONS), "--access-log", "off", "--auth-fail-limit", "0"]
            + self.extra, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(os.path.join(self.workdir, "server-%d.log" % self.starts), "rb") as f:
                    if b"cannot listen" in f.read():
                        raise PortTaken()
                raise RuntimeError("server exited with %s at start %d; see %s/server-%d.log"
                                   % (self.proc.returncode, self.starts, self.workdir, self.starts))
            with open(os.path.join(self.workdir, "server-%d.log" % self.starts), "rb") as f:
                if b"listening on http://127.0.0.1:%d " % self.port not in f.read():
                    time.sleep(0.02)
                    continue  # not ours yet: never take another process's answer for it
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy in 20 s")

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def outside_stop(self):
        """Why the server went away without us asking, or "" (for error messages:
        a SIGTERM from another process shows up in the log, not in our record)."""
        with open(os.path.join(self.workdir, "server-%d.log" % self.starts), "rb") as f:
            log = f.read().decode(errors="replace")
        if "received SIGTERM" in log or "received SIGINT" in log:
            return "the server was stopped by a signal from another process (its log says so)"
        if self.proc.poll() is not None:
            return "the server exited by itself (status %s)" % self.proc.returncode
        return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class State:
    """What the clients were told, and what is still undecided."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}        # id -> token (create answered 200, not deleted)
        self.deleted = {}     # id -> token (delete answered 204, or resolved absent)
        self.pending_create = {}  # name -> (region, project, scopes): reply lost
        self.pending_delete = {}  # id -> token: delete sent, reply lost
        self.pending_rotate = {}  # old id -> old token: rotate sent, reply lost
        self.rotated = set()      # ids of tokens a rotation acknowledged as capped
        self.acked_rotations = 0
        self.touched = set()  # ids changed since the last check
        self.acked_creates = self.acked_deletes = 0
        self.lost_replies = 0
        self.anomalies = []  # unexpected answers that decide nothing by themselves
        self.errors = []     # answers that are failures by themselves


def conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def call(c, method, path, headers, body=None):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    return r.status, r.read(), r


def client_loop(idx, port, key, state, stop, rnd_seed, round_no, projects):
    rnd = random.Random(rnd_seed)
    c = conn(port)
    mine = []  # ids this client created and may delete (no two clients delete the same id)
    seq = 0
    hdr = {"X-Auth-Token": key, "Content-Type": "application/json"}
    while not stop.is_set():
        if mine and rnd.random() < 0.15:
            if not rotate_one(c, key, state, mine, rnd):
                return
            continue
        if mine and rnd.random() < 0.4:
            tid = mine.pop(rnd.randrange(len(mine)))
            with state.lock:
                tok = state.live.get(tid)
            if tok is None:
                continue
            try:
                st, body, _ = call(c, "DELETE", "/cockpit/v1/regions/%s/tokens/%s"
                                   % (tok["region"], tid), {"X-Auth-Token": key})
            except (OSError, http.client.HTTPException):
                with state.lock:
                    state.pending_delete[tid] = tok
                    state.live.pop(tid, None)
                    state.lost_replies += 1
                return
            with state.lock:
                if st == 204:
                    state.live.pop(tid, None)
                    state.deleted[tid] = tok
                    state.touched.add(tid)
                    state.acked_deletes += 1
                elif st == 404:
                    state.errors.append("acknowledged token %s: delete answered 404 (lost)" % tid)
                else:
                    # Not acknowledged (e.g. 503 while the database restarts): decided
                    # at the next check, like a lost reply.
                    state.live.pop(tid, None)
                    state.pending_delete[tid] = tok
                    state.anomalies.append("delete of live token %s answered %d: %r"
                                           % (tid, st, body[:200]))
                    time.sleep(0.01)
            continue
        seq += 1
        region = rnd.choice(REGIONS)
        project = rnd.choice(projects)
        scopes = rnd.sample(SCOPES, rnd.randint(1, 4))
        name = "c%d-%d-%d" % (round_no, idx, seq)
        body = json.dumps({"project_id": project, "name": name, "token_scopes": scopes})
        try:
            st, data, _ = call(c, "POST", "/cockpit/v1/regions/%s/tokens" % region, hdr, body)
        except (OSError, http.client.HTTPException):
            with state.lock:
                state.pending_create[name] = (region, project, sorted(scopes))
                state.lost_replies += 1
            return
        if st != 200:
            # Not acknowledged: it may or may not exist; decide at the next check.
            with state.lock:
                state.pending_create[name] = (region, project, sorted(scopes))
                state.anomalies.append("create answered %d: %r" % (st, data[:200]))
            time.sleep(0.01)
            continue
        tok = json.loads(data)
        with state.lock:
            state.live[tok["id"]] = tok
            state.touched.add(tok["id"])
            state.acked_creates += 1
        mine.append(tok["id"])


def rotate_one(c, key, state, mine, rnd):
    """Rotates one of this client's tokens; False when the reply was lost."""
    tid = mine[rnd.randrange(len(mine))]
    with state.lock:
        tok = state.live.get(tid)
    if tok is None:
        return True
    try:
        st, data, _ = call(c, "POST", "/cockpit/v1/regions/%s/tokens/%s/rotate"
                           % (tok["region"], tid), {"X-Auth-Token": key},
                           '{"grace_period":"3600s"}')
    except (OSError, http.client.HTTPException):
        with state.lock:
            state.pending_rotate[tid] = tok
            state.lost_replies += 1
        return False
    with state.lock:
        if st == 200:
            new = json.loads(data)
            state.live[new["id"]] = new
            state.rotated.add(tid)
            state.touched.update((tid, new["id"]))
            state.acked_rotations += 1
            mine.append(new["id"])
        elif st == 404:
            state.errors.append("acknowledged token %s: rotate answered 404 (lost)" % tid)
        else:  # not acknowledged: a new token may exist; decided at the next check
            state.pending_rotate[tid] = tok
            state.anomalies.append("rotate of %s answered %d: %r" % (tid, st, data[:200]))
            time.sleep(0.01)
    return True


def token_problems(t, region):
    """Why t is not a well-formed Token object of region ([] when it is)."""
    p = []
    if list(t.keys()) != TOKEN_KEYS:
        p.append("keys %s" % list(t.keys()))
        return p
    if not isinstance(t["id"], str) or not UUID_RE.match(t["id"]):
        p.append("id %r" % t["id"])
    if not isinstance(t["project_id"], str) or not ANY_UUID_RE.match(t["project_id"]):
        p.append("project_id %r" % t["project_id"])
    if not isinstance(t["name"], str) or not NAME_RE.match(t["name"]):
        p.append("name %r" % t["name"])
    if not isinstance(t["created_at"], str) or not TS_RE.match(t["created_at"]):
        p.append("created_at %r" % t["created_at"])
    if t["updated_at"] != t["created_at"]:
        p.append("updated_at %r != created_at" % t["updated_at"])
    sc = t["scopes"]
    if (not isinstance(sc, list) or any(s not in SCOPES for s in sc)
            or sc != sorted(set(sc), key=SCOPES.index)):
        p.append("scopes %r" % sc)
    if t["secret_key"] is not None:
        p.append("secret_key is not null")
    if t["region"] != region:
        p.append("region %r in %s" % (t["region"], region))
    return p


def list_all(port, key, region, problems):
    """Every token of a region, page by page (page_size 1000); checks paging."""
    c = conn(port)
    out, page, total = [], 1, None
    while True:
        st, data, _ = call(c, "GET", "/cockpit/v1/regions/%s/tokens?page=%d&page_size=1000"
                           % (region, page), {"X-Auth-Token": key})
        if st != 200:
            problems.append("list %s page %d: HTTP %d %r" % (region, page, st, data[:200]))
            return out
        doc = json.loads(data)
        if total is None:
            total = doc["total_count"]
        elif doc["total_count"] != total:
            problems.append("total_count changed between pages: %d then %d"
                            % (total, doc["total_count"]))
        out.extend(doc["tokens"])
        if len(doc["tokens"]) < 1000:
            break
        page += 1
    if len(out) != total:
        problems.append("%s: listed %d tokens, total_count %d" % (region, len(out), total))
    return out


def verify_status(c, secret, region, scope):
    st, _, _ = call(c, "GET", "/auth/verify", {"X-Token": secret, "X-Cockpit-Scope": scope,
                                               "X-Cockpit-Region": region})
    return st


def check(port, key, state, full, label):
    """Compares the store with the client-side record; returns a list of problems."""
    problems = []
    listed = {}
    for region in REGIONS:
        for t in list_all(port, key, region, problems):
            for why in token_problems(t, region):
                problems.append("half-written token %s: %s" % (t.get("id"), why))
            if t.get("id") in listed:
                problems.append("duplicate id %s in the list" % t.get("id"))
            listed[t.get("id")] = t
    with state.lock:
        # Lost replies are decided now, once; from here on they are ordinary.
        by_name = {t["name"]: t for t in listed.values()}
        for name, (region, project, scopes) in list(state.pending_create.items()):
            t = by_name.get(name)
            if t is not None:
                if (t["region"], t["project_id"], sorted(t["scopes"])) != (region, project, scopes):
                    problems.append("token %s (lost reply) has other fields than sent" % t["id"])
                t = dict(t, secret_key=None, unacked=True)
                state.live[t["id"]] = t
                state.touched.add(t["id"])
        state.pending_create.clear()
        for tid, tok in list(state.pending_delete.items()):
            if tid in listed:
                state.live[tid] = tok
            else:
                state.deleted[tid] = tok
            state.touched.add(tid)
        state.pending_delete.clear()
        known = set(state.live) | set(state.deleted)
        for tid, tok in list(state.pending_rotate.items()):
            for t in listed.values():  # the new token, if it committed: origin's name
                if t["name"] == tok["name"] and t["id"] not in known:
                    state.live[t["id"]] = dict(t, secret_key=None, unacked=True)
                    state.touched.add(t["id"])
                    known.add(t["id"])
        state.pending_rotate.clear()
        rotated = set(state.rotated)
        live, deleted = dict(state.live), dict(state.deleted)
        touched = set(state.touched) if not full else set(live) | set(deleted)
        state.touched.clear()

    for tid, tok in live.items():
        t = listed.get(tid)
        if t is None:
            problems.append("acknowledged create %s is missing from the list" % tid)
            continue
        for f in ("project_id", "name", "created_at", "scopes", "region"):
            if t[f] != tok[f]:
                problems.append("token %s: %s is %r, the create answered %r"
                                % (tid, f, t[f], tok[f]))
    for tid in deleted:
        if tid in listed:
            problems.append("acknowledged delete %s is listed again (resurrected)" % tid)
    for tid, t in listed.items():
        if tid not in live and tid not in deleted:
            problems.append("phantom token %s (%s) nobody created" % (tid, t["name"]))

    c = conn(port)
    n_get = n_verify = 0
    for tid in touched:
        tok = live.get(tid) or deleted.get(tid)
        want = 200 if tid in live else 404
        st, data, _ = call(c, "GET", "/cockpit/v1/regions/%s/tokens/%s" % (tok["region"], tid),
                           {"X-Auth-Token": key})
        n_get += 1
        if st != want:
            problems.append("GET %s: %d, expected %d" % (tid, st, want))
        elif st == 200 and json.loads(data)["secret_key"] is not None:
            problems.append("GET %s shows a secret" % tid)
        elif st == 200 and tid in rotated and json.loads(data)["expires_at"] is None:
            problems.append("GET %s: rotated, yet no expires_at (the cap was lost)" % tid)
        if tok.get("secret_key"):
            vs = verify_status(c, tok["secret_key"], tok["region"], tok["scopes"][0])
            n_verify += 1
            want_v = 204 if tid in live else 401
            if vs != want_v:
                problems.append("verify %s: %d, expected %d" % (tid, vs, want_v))
    print("  %s: %d listed, %d live, %d deleted; %d GETs, %d verifications: %s"
          % (label, len(listed), len(live), len(deleted), n_get, n_verify,
             "ok" if not problems else "%d problem(s)" % len(problems)), flush=True)
    return problems


def guarded_check(srv, key, state, full, label):
    try:
        return check(srv.port, key, state, full=full, label=label)
    except (OSError, http.client.HTTPException) as e:
        why = srv.outside_stop()
        return ["%s: lost the connection to the server during the check (%r)%s"
                % (label, e, "; " + why if why else "")]


def check_audit(binary, db, state):
    out = subprocess.run([binary, "audit", "list", "-o", "json", "--db", db],
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        return ["audit list failed: %r" % out.stderr[:300]]
    creates, deletes = set(), set()
    for ev in json.loads(out.stdout.decode())["events"]:
        if ev["outcome"] != "ok":
            continue
        if ev["action"] == "token.create":
            creates.add(ev["resource_id"])
        elif ev["action"] == "token.rotate":  # old token = resource, new = related
            creates.add(ev["related_id"])
        elif ev["action"] == "token.delete":
            deletes.add(ev["resource_id"])
    problems = []
    with state.lock:
        live, deleted = set(state.live), set(state.deleted)
    for tid in live | deleted:
        if tid not in creates:
            problems.append("token %s exists(ed) but has no token.create audit row" % tid)
    for tid in deleted:
        if tid not in deletes:
            problems.append("token %s was deleted but has no token.delete audit row" % tid)
    for tid in creates - live - deleted:
        problems.append("audit says %s was created, the store never showed it" % tid)
    for tid in deletes - deleted:
        problems.append("audit says %s was deleted, the store still shows it" % tid)
    print("  audit log: %d creates, %d deletes recorded: %s"
          % (len(creates), len(deletes), "ok" if not problems else "%d problem(s)" % len(problems)))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", required=True, help="sqlite:PATH or postgresql://URI")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--min-load", type=float, default=0.3, help="seconds of load before a kill")
    ap.add_argument("--max-load", type=float, default=1.2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--db-crash-cmd", default=None,
                    help="shell command that crashes and restarts the database; run under "
                         "load at every other kill point, just before the server's kill -9")
    ap.add_argument("--time-limit", type=float, default=600, help="give up after this long")
    ap.add_argument("serve_args", nargs="*", help="extra serve flags (after --)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    own_workdir = False
    if a.workdir:
        workdir = a.workdir
    elif a.db.startswith("sqlite:"):
        workdir = os.path.dirname(os.path.abspath(a.db.split(":", 1)[1]))
    else:
        workdir = tempfile.mkdtemp(prefix="ct-crash.")
        own_workdir = True
    os.makedirs(workdir, exist_ok=True)
    print("crash test: %d kill points, %d clients, seed %d, db %s"
          % (a.kills, a.clients, seed, re.sub(r"//[^@/]*@", "//***@", a.db)), flush=True)
    key = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    projects = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(4)]
    srv = Server(a.bin, a.db, key, workdir, a.serve_args)
    state = State()
    problems = []
    t_end = time.monotonic() + a.time_limit
    kills = 0
    try:
        srv.start()
        for r in range(a.kills):
            if time.monotonic() > t_end:
                problems.append("time limit reached after %d kill points" % kills)
                break
            stop = threading.Event()
            threads = [threading.Thread(target=client_loop, daemon=True,
                                        args=(i, srv.port, key, state, stop, rnd.random(), r,
                                              projects))
                       for i in range(a.clients)]
            for t in threads:
                t.start()
            load = rnd.uniform(a.min_load, a.max_load)
            time.sleep(load)
            if a.db_crash_cmd and r % 2 == 1:
                t0 = time.monotonic()
                subprocess.run(a.db_crash_cmd, shell=True, check=True, timeout=90)
                print("  database crashed and restarted under load (%.1f s)"
                      % (time.monotonic() - t0), flush=True)
                time.sleep(rnd.uniform(0.1, 0.5))  # the server reconnects under load
            srv.kill9()  # requests are in flight on every client connection
            kills += 1
            stop.set()
            for t in threads:
                t.join(timeout=30)
                if t.is_alive():
                    problems.append("a load client hung after the kill")
            with state.lock:
                print("kill %d after %.2f s of load: %d creates and %d deletes acknowledged so "
                      "far, %d replies lost" % (kills, load, state.acked_creates,
                                               state.acked_deletes, state.lost_replies), flush=True)
            srv.start()
            with state.lock:
                problems += state.errors
                state.errors = []
            problems += guarded_check(srv, key, state, False, "after restart %d" % kills)
            if problems:
                break
        if not problems:
            # One more clean restart, then the full comparison: every token, not just new ones.
            srv.stop()
            srv.start()
            problems += guarded_check(srv, key, state, True, "final (clean restart)")
            if not a.no_audit:
                problems += check_audit(a.bin, a.db, state)
    finally:
        srv.stop()
    with state.lock:
        if state.anomalies:
            print("  note: %d unacknowledged answers (decided at the next check), e.g.:"
                  % len(state.anomalies))
            for an in state.anomalies[:3]:
                print("    %s" % an)
    if problems:
        print("FAIL: %d problem(s) (seed %d):" % (len(problems), seed))
        for p in problems[:40]:
            print("  - " + p)
        return 1
    if own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print("PASS: %d kill points survived; %d creates, %d rotations and %d deletes acknowledged, "
          "%d replies lost in crashes and resolved; seed %d"
          % (kills, state.acked_creates, state.acked_rotations, state.acked_deletes,
             state.lost_replies, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
