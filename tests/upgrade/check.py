"""Opens a database written by an old release (tests/upgrade/REV/, made by
generate.sh) with the new binary and checks that the upgrade lost nothing: the
pending migrations run once (two servers start at once; only the one holding the
lock migrates), the schema version advances, every live token verifies (scope
stated, or data source and path), gets and lists as the old release answered,
deleted tokens and the deleted API key stay refused, the audit log is kept, and a
restart migrates nothing.

usage: check.py FIXTURE_DIR sqlite               (works on a copy of sqlite.db)
       check.py FIXTURE_DIR POSTGRES_URI         (an empty database: the dump is
                                                  restored into it with psql)"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ctlib  # noqa: E402
from ctlib import Checks, Server, jbody, main_guard, request  # noqa: E402

T = Checks("upgrade")
MIGRATED = re.compile(r"applied schema migration (\d+)")


def sql_version(backend, uri):
    q = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
    if backend == "sqlite":
        with sqlite3.connect("file:%s?mode=ro" % uri[len("sqlite:"):], uri=True) as db:
            return db.execute(q).fetchone()[0]
    out = subprocess.run(["psql", "-X", "-qAt", "-d", uri, "-c", q], capture_output=True,
                         text=True, timeout=30, check=True)
    return int(out.stdout.strip())


def key_types(backend, uri):
    """How token ids and project ids are stored, per table: since migration 4, as
    16 bytes (SQLite BLOBs of length 16, PostgreSQL uuid)."""
    if backend == "sqlite":
        with sqlite3.connect("file:%s?mode=ro" % uri[len("sqlite:"):], uri=True) as db:
            return sorted(set(
                "%s.%s:%s" % (t, c, k) for t, cols in (("tokens", ("id", "project_id")),
                                                      ("project_counts", ("project_id",)))
                for c in cols for (k,) in db.execute(
                    "SELECT DISTINCT typeof(%s) || length(%s) FROM %s" % (c, c, t))))
    q = ("SELECT table_name || '.' || column_name || ':' || data_type FROM"
         " information_schema.columns WHERE (table_name, column_name) IN (('tokens', 'id'),"
         " ('tokens', 'project_id'), ('project_counts', 'project_id')) ORDER BY 1")
    out = subprocess.run(["psql", "-X", "-qAt", "-d", uri, "-c", q], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.split()


def load(fixture_dir, backend, uri, work):
    if backend == "sqlite":
        path = os.path.join(work, "old.db")
        shutil.copyfile(os.path.join(fixture_dir, "sqlite.db"), path)
        return "sqlite:" + path
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri, "-f",
                    os.path.join(fixture_dir, "postgresql.sql")],
                   check=True, capture_output=True, timeout=60)
    return uri


def start_two(db, regions, work):
    """Starts two servers on db at once. PostgreSQL: both serve; SQLite: the file
    lock refuses the second. Returns the servers that serve and all their logs."""
    srvs = [Server("--regions", ",".join(regions), db=db, key=str(uuid.uuid4()),
                   workdir=os.path.join(work, "s%d" % i)) for i in (0, 1)]
    errors = []

    def go(s):
        try:
            s.start(timeout=60)
        except RuntimeError as e:
            errors.append((s, str(e)))
    for s in srvs:
        os.makedirs(s.workdir, exist_ok=True)
    threads = [threading.Thread(target=go, args=(s,)) for s in srvs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    up = [s for s in srvs if s not in [e[0] for e in errors]]
    return up, errors, [s.log() for s in srvs]


def same_token(old, new):
    """Every field the old release showed is unchanged; fields it did not have
    (the lifecycle ones) are null for a token it made."""
    if not isinstance(new, dict):
        return False
    return all(new.get(k) == v for k, v in old.items()) and \
        all(new[k] is None for k in new if k not in old)


def same_answer(old_st, old_body, st, body):
    if st != old_st:
        return False
    if old_body and "tokens" in old_body:
        return body is not None and body.get("total_count") == old_body["total_count"] and \
            len(body.get("tokens", [])) == len(old_body["tokens"]) and \
            all(same_token(o, n) for o, n in zip(old_body["tokens"], body["tokens"]))
    if st == 200:
        return same_token(old_body, body)
    return (body or {}).get("type") == (old_body or {}).get("type")


def api(port, secret, path):
    st, _, data = request(port, "GET", "/cockpit/v1/regions" + path, {"X-Auth-Token": secret})
    return st, jbody(data)


def check_reads(name, fx, port):
    secrets = {k["label"]: k["secret_key"] for k in fx["api_keys"]}
    secrets["org"] = fx["bootstrap_secret_key"]
    bad = [t["id"] for t in fx["tokens"]
           if not same_answer(t["get"]["status"], t["get"]["body"],
                              *api(port, secrets["org"], "/%s/tokens/%s" % (t["region"], t["id"])))]
    T.eq(bad, [], "%s: Get answers as the old release for %d tokens (%d deleted: 404)" % (
        name, len(fx["tokens"]), sum(t["state"] == "deleted" for t in fx["tokens"])))
    bad = [(q["key"], q["path"]) for q in fx["lists"]
           if not same_answer(q["status"], q["body"], *api(port, secrets[q["key"]], q["path"]))]
    T.eq(bad, [], "%s: %d Lists (orders, projects, scope filters, pages, project keys, the "
         "deleted key) answer as the old release" % (name, len(fx["lists"])))


def check_verify(name, fx, port):
    bad, n, allowed = [], 0, 0
    for t in fx["tokens"]:
        for p in t["probes"]:
            st, hdr, _ = request(port, "GET", "/auth/verify", p["headers"])
            got = {k: hdr.get(k) for k in p["identity"]}
            n += 1
            allowed += st == 204
            if st != p["status"] or got != p["identity"]:
                bad.append((t["id"][:8], t["state"], p["headers"].get("X-Cockpit-Scope") or
                            p["headers"].get("X-Original-URI"), p["status"], st))
    T.eq(bad, [], "%s: %d /auth/verify probes decide as the old release (%d allowed; deleted "
         "tokens refused)" % (name, n, allowed))


def check_audit(name, fx, binary, db):
    out = subprocess.run([binary, "audit", "list", "-o", "json", "--db", db],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    try:  # one document {"events": [...]} today; the old release printed a line per event
        rows = json.loads(out)["events"]
    except ValueError:
        rows = [json.loads(line) for line in out.split("\n") if line.strip()]
    old = fx["audit"]
    T.ok(len(rows) >= len(old) and all(all(n.get(k) == v for k, v in o.items())
                                       for o, n in zip(old, rows)),
         "%s: the %d audit rows of the old release are kept, in order" % (name, len(old)))


def upgrade(fixture_dir, backend, uri, work):
    with open(os.path.join(fixture_dir, backend + ".json")) as f:
        fx = json.load(f)
    name = "%s (%s, %s)" % (backend, os.path.basename(fixture_dir), fx["release"])
    db = load(fixture_dir, backend, uri, work)
    old_v = sql_version(backend, db)
    new_v = int(re.search(r"schema version (\d+)", subprocess.run(
        [ctlib.BIN, "version"], capture_output=True, text=True, check=True).stdout).group(1))
    up, errors, logs = start_two(db, fx["regions"], work)
    T.eq(len(up), 2 if backend == "postgresql" else 1,
         "%s: two servers started at once: %s" % (
             name, "both serve" if backend == "postgresql" else "the file lock refuses one"))
    if backend == "sqlite":
        T.ok(len(errors) == 1 and "in use by another cockpit-tokens server" in errors[0][1],
             "%s: the refused one says the file is in use" % name)
    applied = sorted(int(v) for log in logs for v in MIGRATED.findall(log))
    T.eq(applied, list(range(old_v + 1, new_v + 1)),
         "%s: migrations %d..%d each applied once" % (name, old_v + 1, new_v))
    T.eq(sql_version(backend, db), new_v, "%s: schema version %d -> %d" % (name, old_v, new_v))
    kind = "blob16" if backend == "sqlite" else "uuid"
    T.eq(key_types(backend, db), ["project_counts.project_id:" + kind, "tokens.id:" + kind,
                                  "tokens.project_id:" + kind],
         "%s: token ids and project ids are stored as 16 bytes (%s)" % (name, kind))
    srv = up[0]
    check_reads(name, fx, srv.port)
    check_verify(name, fx, srv.port)
    for s in up:
        s.stop()
    check_audit(name, fx, ctlib.BIN, db)
    srv.start()
    T.ok(not MIGRATED.search(srv.log()[srv.log_start:]), "%s: a restart migrates nothing" % name)
    # Gets would now show last_used_at (the probes above used the tokens): the
    # decisions are what a restart could lose.
    check_verify(name + " after a restart", fx, srv.port)
    srv.stop()


def run():
    fixture_dir, target = sys.argv[1], sys.argv[2]
    backend = "sqlite" if target == "sqlite" else "postgresql"
    work = tempfile.mkdtemp(prefix="ct-upgrade.")
    try:
        upgrade(os.path.abspath(fixture_dir), backend, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return T.done()


if __name__ == "__main__":
    main_guard(run)
