#!/usr/bin/env python3
"""The audit log, end to end: every management action (token create and delete,
API key create and delete through the CLI, denied attempts: 401 and 403) is
recorded with time, actor (access key, never a secret), action, resource id,
project, region, client address and outcome; `cockpit-tokens audit list`
shows them (text and -o json, --project, --since); the log survives restarts
(SIGTERM and kill -9); it never contains a secret.

Usage: audit.py [--db URI]   (default: a fresh SQLite file). Loopback only."""
import argparse
import datetime
import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import P1, P2, Checks, Server, create_token, jbody, main_guard, request  # noqa: E402

T = Checks("audit")
TOKENS = "/cockpit/v1/regions/fr-par/tokens"
FIELDS = ["time", "actor", "action", "resource_id", "project_id", "region", "client", "outcome",
          "related_id"]
ACCESS_KEY_RE = re.compile(r"^SCW[A-Z0-9]{17}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def audit(srv, *args):
    out = srv.cli("audit", "list", "-o", "json", *args)
    doc = json.loads(out)  # one document: {"events": [...], "total_count": N}
    rows = doc["events"]
    assert doc["total_count"] == len(rows), doc
    return rows, out


def find(rows, **want):
    return [r for r in rows if all(r.get(k) == v for k, v in want.items())]


def one(rows, what, **want):
    hits = find(rows, **want)
    T.ok(len(hits) >= 1, what, "no row with %s" % want if not hits else "")
    return hits[0] if hits else {}


def run(db):
    srv = Server("--auth-fail-limit", "0", db=db).start()
    port, boot = srv.port, srv.key
    secrets = [boot]
    t_start = datetime.datetime.now(datetime.timezone.utc)

    # API keys through the CLI: one limited to P1, one organization-wide that is deleted.
    k1 = json.loads(srv.cli("apikey", "create", "--project", P1, "--description", "ci", "-o", "json"))
    k2 = json.loads(srv.cli("apikey", "create", "--description", "temp", "-o", "json"))
    secrets += [k1["secret_key"], k2["secret_key"]]
    srv.cli("apikey", "delete", k2["access_key"])

    src = "127.0.0.2"
    st, _, data = create_token(port, k1["secret_key"], project=P1, src=src)
    tok = jbody(data)
    T.eq(st, 200, "create in P1 with the P1 key")
    secrets.append(tok["secret_key"])
    st, _, _ = create_token(port, k1["secret_key"], project=P2, src=src)
    T.eq(st, 403, "create in P2 with the P1 key -> 403")
    st, _, _ = request(port, "GET", TOKENS + "?project_id=" + P2, {"X-Auth-Token": k1["secret_key"]}, src=src)
    T.eq(st, 403, "list of P2 with the P1 key -> 403")
    st, _, _ = request(port, "GET", TOKENS, src=src)
    T.eq(st, 401, "no key -> 401")
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": str(uuid.uuid4())}, src=src)
    T.eq(st, 401, "unknown key -> 401")
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": "not-a-key"}, src=src)
    T.eq(st, 401, "malformed key -> 401")
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": k2["secret_key"]}, src=src)
    T.eq(st, 401, "deleted API key -> 401")
    # The token's secret offered as an API key: denied, and it must not be logged.
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": tok["secret_key"]}, src=src)
    T.eq(st, 401, "a token secret used as X-Auth-Token -> 401")
    # Get of a token: answered on the event thread when the key authenticates (SQLite),
    # so the denials take the worker's path, which must still record them.
    src_get = "127.0.0.3"
    st, _, _ = request(port, "GET", TOKENS + "/" + tok["id"], {"X-Auth-Token": str(uuid.uuid4())},
                       src=src_get)
    T.eq(st, 401, "Get with an unknown key -> 401")
    st, _, _ = request(port, "GET", TOKENS + "/" + tok["id"], src=src_get)
    T.eq(st, 401, "Get without a key -> 401")
    st, _, _ = request(port, "GET", TOKENS + "/" + tok["id"], {"X-Auth-Token": k1["secret_key"]},
                       src=src_get)
    T.eq(st, 200, "Get with the P1 key -> 200")
    st, _, data = request(port, "POST", TOKENS + "/" + tok["id"] + "/rotate",
                          {"X-Auth-Token": k1["secret_key"]}, '{"grace_period":"60s"}', src=src)
    rotated = jbody(data) or {}
    T.eq(st, 200, "rotate with the P1 key")
    secrets.append(rotated.get("secret_key", ""))
    time.sleep(0.01)
    t_mid = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.01)
    st, _, _ = request(port, "DELETE", TOKENS + "/" + tok["id"], {"X-Auth-Token": boot}, src=src)
    T.eq(st, 204, "delete with the bootstrap key")

    rows, text = audit(srv)
    T.ok(all(list(r.keys()) == FIELDS for r in rows), "every row has %s" % ", ".join(FIELDS))
    T.ok(all(TIME_RE.match(r["time"]) for r in rows), "every time is RFC 3339 UTC with microseconds")
    boot_ak = one(rows, "bootstrap API key creation recorded", action="api_key.create",
                  actor="local-admin", outcome="ok").get("resource_id", "")
    r = one(rows, "apikey create (P1 key) recorded: local-admin, resource = access key, project P1",
            action="api_key.create", resource_id=k1["access_key"], actor="local-admin",
            project_id=P1, outcome="ok")
    one(rows, "apikey create (org-wide key) recorded", action="api_key.create",
        resource_id=k2["access_key"], outcome="ok")
    one(rows, "apikey delete recorded", action="api_key.delete", resource_id=k2["access_key"],
        actor="local-admin", outcome="ok")
    one(rows, "token create recorded: actor = P1 access key, token id, P1, fr-par, 127.0.0.2, ok",
        action="token.create", actor=k1["access_key"], resource_id=tok["id"], project_id=P1,
        region="fr-par", client=src, outcome="ok")
    one(rows, "denied create (403) recorded with actor, project P2, region, client",
        action="token.create", actor=k1["access_key"], project_id=P2, region="fr-par",
        client=src, outcome="denied:permissions")
    one(rows, "denied list (403) recorded", action="token.list", actor=k1["access_key"],
        project_id=P2, client=src, outcome="denied:permissions")
    one(rows, "401 without key recorded (client, no actor)", action="auth", client=src,
        outcome="denied:missing")
    n_nf = len(find(rows, action="auth", client=src, outcome="denied:not_found"))
    T.ok(n_nf >= 2, "401 unknown and deleted keys recorded", "%d rows" % n_nf)
    one(rows, "401 malformed key recorded", action="auth", client=src,
        outcome="denied:invalid_argument")
    one(rows, "Get with an unknown key: 401 recorded", action="auth", client=src_get,
        outcome="denied:not_found")
    one(rows, "Get without a key: 401 recorded", action="auth", client=src_get,
        outcome="denied:missing")
    one(rows, "token delete recorded: bootstrap access key, token id, project, region, client",
        action="token.delete", actor=boot_ak, resource_id=tok["id"], project_id=P1,
        region="fr-par", client=src, outcome="ok")
    one(rows, "rotation recorded with both ids: old = resource_id, new = related_id",
        action="token.rotate", actor=k1["access_key"], resource_id=tok["id"],
        related_id=rotated.get("id"), project_id=P1, region="fr-par", client=src, outcome="ok")
    T.ok(all(r["related_id"] == "" for r in rows if r["action"] != "token.rotate"),
         "related_id is empty except on rotations")
    T.ok(all(ACCESS_KEY_RE.match(r["actor"]) or r["actor"] in ("local-admin", "-") for r in rows),
         "every actor is an access key, local-admin or - (never a secret)")

    # Filters.
    p1_rows, _ = audit(srv, "--project", P1)
    T.ok(p1_rows and all(r["project_id"] == P1 for r in p1_rows)
         and len(find(p1_rows, action="token.create", outcome="ok")) == 1,
         "--project P1 shows P1's rows only", "%d rows" % len(p1_rows))
    since = t_mid.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    late, _ = audit(srv, "--since", since)
    T.ok(late and all(r["time"] >= since for r in late) and find(late, action="token.delete")
         and not find(late, action="token.create"),
         "--since T shows only what happened after T", "%d rows" % len(late))
    today, _ = audit(srv, "--since", t_start.strftime("%Y-%m-%d"))
    T.eq(len(today), len(rows), "--since YYYY-MM-DD (today) shows everything")
    table = srv.cli("audit", "list")
    T.ok(table.splitlines()[0].split()[:3] == ["TIME", "ACTOR", "ACTION"]
         and tok["id"] in table and k1["access_key"] in table,
         "text output: a header and one line per event")

    # Survives a clean restart and a kill -9.
    n_before = len(rows)
    srv.stop()
    srv.start()
    st, _, data = create_token(srv.port, boot, project=P2, src=src)
    secrets.append((jbody(data) or {}).get("secret_key", ""))
    srv.kill9()
    srv.start()
    rows2, text2 = audit(srv)
    T.ok(rows2[:n_before] == rows and len(find(rows2, action="token.create", project_id=P2,
                                                outcome="ok")) == 1,
         "the log survives a restart and a kill -9 (old rows unchanged, the new create there)",
         "%d -> %d rows" % (n_before, len(rows2)))

    # Never a secret.
    dump = text + text2 + table
    leaked = [s for s in secrets if s and s in dump]
    T.ok(not leaked, "no secret (API keys, bootstrap key, tokens) in the audit output",
         "%d leaked" % len(leaked))
    lower = [s.lower() for s in secrets if s]
    T.ok(not [s for s in lower if s in dump.lower()], "... not even in another letter case")
    srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None, help="sqlite:PATH or postgresql://... (default: fresh SQLite)")
    a = ap.parse_args()
    run(a.db)
    return T.done()


if __name__ == "__main__":
    main_guard(main)
