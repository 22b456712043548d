"""A database made by the release before token lifecycle (schema version 2, two
tokens, the bootstrap key) upgrades in place: the server migrates it, its tokens
keep working and show "expires_at": null and "last_used_at": null, and new
tokens can expire. The fixtures are dumps of databases that the previous
release's binary wrote (tests/store/fixtures/).

usage: upgrade.py                 SQLite (a fresh file loaded from the dump)
       upgrade.py POSTGRES_URI    an empty PostgreSQL database (loaded with psql)"""
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import Checks, Server, jbody, main_guard, request, verify  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "11111111-2222-4333-8444-555555555555"  # the fixtures' bootstrap key
PROJECT = "22222222-2222-4333-8444-555555555555"
FIXTURES = {  # backend: (dump, [(token id, secret)])
    "sqlite": ("schema-v2.sqlite.sql", [
        ("98a7e6fc-df27-4f3e-a181-8ef65956ad91",
         "1uS4DBab4_hfS7bmid8Cc0KIbbk1C5zEmfdLKqtccP3OWQxNKb37QQY_nsngpbJu"),
        ("b109d8e3-f6dc-4e25-bd0f-e9950031c6f7",
         "3sS_SK2hufnFY1WUIUYQ2jDJQwT5u7aOXFeJnc94665wWRYUJHej8eNPyZNto70M")]),
    "postgresql": ("schema-v2.postgresql.sql", [
        ("a0dbaf91-3da0-476e-862e-c7d4af8d0a29",
         "Xum5UAOdHAc2trGPjzN2a7aWUCmI21Y39CBiCbNoFlhrfDG4WtkMuY5aUFTn9yOU"),
        ("259b72b3-623a-4215-bd9e-649b0b21059c",
         "Wkmc-FEyz0IEEype3-iXi3AtYviJG8ii4PqE151HkCIQEiv6q2AghN6uAf9y85er")]),
}
T = Checks("store-upgrade")


def load(backend, uri):
    dump = os.path.join(HERE, "fixtures", FIXTURES[backend][0])
    if backend == "sqlite":
        path = uri[len("sqlite:"):]
        with open(dump) as f, sqlite3.connect(path) as db:
            db.executescript(f.read())
        return
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri, "-f", dump],
                   check=True, capture_output=True, timeout=60)


def api(srv, method, path, body=None):
    st, _, data = request(srv.port, method, "/cockpit/v1/regions/fr-par" + path,
                          {"X-Auth-Token": KEY}, json.dumps(body) if body else None)
    return st, jbody(data)


def refused_row(work):
    """SQLite: migration 4 stores ids as 16 bytes; a token row whose project is not a
    UUID (written by hand) stops it, and its one transaction leaves the database as
    the earlier migrations made it: schema 3, every row there, text keys."""
    uri = "sqlite:" + os.path.join(work, "v2-bad.db")
    load("sqlite", uri)
    path = uri[len("sqlite:"):]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE tokens SET project_id = 'not-a-uuid' WHERE name = 'second'")
    srv = Server("--regions", "fr-par,nl-ams", db=uri, key=KEY, workdir=work)
    try:
        srv.start()
        started = True
        srv.stop()
    except RuntimeError:
        started = False
    T.ok(not started and "is not a UUID" in srv.log(),
         "sqlite: a token row that is not a UUID stops migration 4, saying why")
    with sqlite3.connect(path) as db:
        T.eq(db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0], 3,
             "sqlite: ... and leaves the schema at version 3")
        T.eq(db.execute("SELECT name, typeof(id) FROM tokens ORDER BY name").fetchall(),
             [("first", "text"), ("second", "text")], "sqlite: ... every row as it was")


def run():
    uri = sys.argv[1] if len(sys.argv) > 1 else None
    backend = "postgresql" if uri else "sqlite"
    work = tempfile.mkdtemp(prefix="ct-upgrade.")
    uri = uri or "sqlite:" + os.path.join(work, "v2.db")
    load(backend, uri)
    srv = Server("--regions", "fr-par,nl-ams", db=uri, key=KEY, workdir=work).start()
    T.ok("applied schema migration 3" in srv.log(), "%s: migration 3 applied at start" % backend)
    st, page = api(srv, "GET", "/tokens?project_id=%s&order_by=name_asc" % PROJECT)
    T.eq(st, 200, "list after the upgrade")
    toks = (page or {}).get("tokens", [])
    T.eq([t["name"] for t in toks], ["first", "second"], "the old tokens are listed")
    T.ok(all(t["expires_at"] is None and t["last_used_at"] is None for t in toks),
         "old tokens: expires_at and last_used_at are null")
    T.eq((page or {}).get("total_count"), 2, "total_count from the old counters")
    for tid, secret in FIXTURES[backend][1]:
        T.eq(verify(srv.port, {"X-Token": secret, "X-Cockpit-Scope": "read_only_metrics",
                               "X-Cockpit-Region": "fr-par"}), 204,
             "old token %s still verifies" % tid[:8])
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    st, tok = api(srv, "POST", "/tokens", {"project_id": PROJECT, "name": "third",
                                           "expires_at": soon.isoformat()})
    T.eq(st, 200, "create with expires_at on the upgraded database")
    T.ok(tok and tok["expires_at"] is not None, "the new token has its expiry")
    st, page = api(srv, "GET", "/tokens?project_id=%s&expired=false" % PROJECT)
    T.eq((page or {}).get("total_count"), 3, "expired=false counts old and new tokens")
    srv.stop()
    srv.start()  # a second start finds nothing to migrate
    T.ok(srv.log()[srv.log_start:].count("applied schema migration") == 0,
         "a restart applies no migration")
    st, got = api(srv, "GET", "/tokens/" + tok["id"])
    T.eq(got and got["expires_at"], tok["expires_at"], "the expiry survives a restart")
    srv.stop()
    if backend == "sqlite":
        refused_row(work)
    return T.done()


if __name__ == "__main__":
    main_guard(run)
