#!/usr/bin/env python3
"""Secrets stay secret. After creating tokens and using them every way an agent
can (X-Token, Bearer, Basic, X-Scope-OrgID; wrong scope, wrong region, tampered),
and after misusing them (a token secret as X-Auth-Token, an API key as X-Token,
a secret in the query string), none of the secrets — token secrets, the
bootstrap API key, an API key made with the CLI — appears in:

  * the database: the SQLite main file and its -wal (read while the server runs,
    after a clean stop, and after a kill -9), or a pg_dump (PostgreSQL);
  * the server's log at --log-level debug --access-log all;
  * any response except the Create response that hands the secret out
    (Get and List show "secret_key": null); nor in /metrics or the audit log.

Each secret is looked for as text (any letter case for the UUID keys), as
the hex and base64 of its bytes, and for the UUID keys as their 16 raw bytes.

Usage: secrets.py [--db URI] [--scan FILE]...  (default a fresh SQLite file;
--scan adds files to search, e.g. PostgreSQL's server log). Loopback only."""
import argparse
import base64
import binascii
import json
import os
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import P1, P2, Checks, Server, create_token, jbody, main_guard, request  # noqa: E402

T = Checks("secrets")
SCOPES = ["read_only_metrics", "write_only_logs", "full_access_alert_manager", "read_only_traces"]


def forms(secret):
    """Byte strings whose presence would give the secret away."""
    s = secret.encode()
    out = {s, s.lower(), s.upper(), binascii.hexlify(s), base64.b64encode(s),
           base64.urlsafe_b64encode(s)}
    try:
        u = uuid.UUID(secret)
        out |= {u.bytes, u.hex.encode(), u.hex.upper().encode()}
    except ValueError:
        pass
    return out


def leaks(blob, secrets):
    return [name for name, sec in secrets.items() if any(f in blob for f in forms(sec))]


class Recorder:
    """Keeps every response (status line, headers, body) but the Create answers."""

    def __init__(self):
        self.blob = b""

    def req(self, port, method, path, headers=None, body=None, src="127.0.0.1"):
        st, h, data = request(port, method, path, headers, body, src=src)
        self.blob += ("%d\n" % st).encode() + "".join("%s: %s\n" % kv for kv in h.items()).encode()
        self.blob += data + b"\n"
        return st, h, data


def exercise(srv, secrets, rec):
    port, boot = srv.port, srv.key
    k1 = json.loads(srv.cli("apikey", "create", "-o", "json", "--description", "secrets-test"))
    secrets["api key (CLI)"] = k1["secret_key"]
    secrets["bootstrap key"] = boot
    toks = []
    for i in range(6):
        region = ["fr-par", "nl-ams"][i % 2]
        key = boot if i % 2 else k1["secret_key"]
        st, _, data = create_token(srv.port, key, project=[P1, P2][i % 2],
                                   scopes=SCOPES[: 1 + i % 4], region=region)
        t = jbody(data)
        T.eq(st, 200, "create token %d" % i) if i == 0 else None
        secrets["token %d" % i] = t["secret_key"]
        toks.append(t)
    n_ok = n_deny = 0
    for t in toks:
        sec, reg, sc = t["secret_key"], t["region"], t["scopes"][0]
        base = {"X-Cockpit-Scope": sc, "X-Cockpit-Region": reg}
        basic = base64.b64encode(b"agent:" + sec.encode()).decode()
        for h in ({"X-Token": sec}, {"Authorization": "Bearer " + sec},
                  {"Authorization": "Basic " + basic}, {"X-Scope-OrgID": sec}):
            n_ok += rec.req(port, "GET", "/auth/verify", dict(base, **h))[0] == 204
        other = "write_only_traces" if sc != "write_only_traces" else "read_only_metrics"
        wrong = [
            dict(base, **{"X-Token": sec, "X-Cockpit-Scope": other}),
            dict(base, **{"X-Token": sec, "X-Cockpit-Region": "pl-waw" if reg != "pl-waw" else "fr-par"}),
            dict(base, **{"X-Token": sec[:-1] + ("A" if sec[-1] != "A" else "B")}),
            dict(base, **{"X-Token": sec[:40]}),
        ]
        for h in wrong:
            n_deny += rec.req(port, "GET", "/auth/verify", h)[0] in (401, 403)
        rec.req(port, "GET", "/auth/verify", dict(base, **{
            "X-Token": sec, "X-Original-URI": "/api/v1/query?token=" + sec}))
        rec.req(port, "GET", "/auth/verify?token=" + sec, base)
        rec.req(port, "POST", "/auth/verify", dict(base, **{"X-Token": "x"}), body=sec)
        rec.req(port, "GET", "/cockpit/v1/regions/%s/tokens" % reg, {"X-Auth-Token": sec})
        rec.req(port, "GET", "/auth/verify", dict(base, **{"X-Token": boot}))
        st, _, data = rec.req(port, "GET", "/cockpit/v1/regions/%s/tokens/%s" % (reg, t["id"]),
                              {"X-Auth-Token": boot})
        T.ok(st == 200 and jbody(data)["secret_key"] is None, "GET shows secret_key: null") \
            if t is toks[0] else None
    T.eq(n_ok, 4 * len(toks), "every token verifies in all four forms (204)")
    T.eq(n_deny, 4 * len(toks), "wrong scope, wrong region, tampered, truncated -> 401/403")
    nulls = True
    for reg in ("fr-par", "nl-ams"):
        st, _, data = rec.req(port, "GET", "/cockpit/v1/regions/%s/tokens?page_size=1000" % reg,
                              {"X-Auth-Token": boot})
        nulls &= st == 200 and all(x["secret_key"] is None for x in jbody(data)["tokens"])
    T.ok(nulls, "List shows secret_key: null for every token")
    st, _, _ = rec.req(port, "DELETE", "/cockpit/v1/regions/%s/tokens/%s"
                       % (toks[0]["region"], toks[0]["id"]), {"X-Auth-Token": boot})
    T.eq(st, 204, "delete one token")
    rec.req(port, "GET", "/auth/verify", {"X-Token": toks[0]["secret_key"],
                                          "X-Cockpit-Scope": toks[0]["scopes"][0],
                                          "X-Cockpit-Region": toks[0]["region"]})
    # Denials must not tell a deleted token from an unknown, malformed or absent one.
    base = {"X-Cockpit-Scope": toks[0]["scopes"][0], "X-Cockpit-Region": toks[0]["region"]}
    unknown = toks[1]["secret_key"][:20] + ("A" if toks[1]["secret_key"][20] != "A" else "B") \
        + toks[1]["secret_key"][21:]
    answers = {}
    for what, hdr in (("deleted", {"X-Token": toks[0]["secret_key"]}),
                      ("malformed (checksum)", {"X-Token": unknown}),
                      ("malformed (length)", {"X-Token": "abc"}),
                      ("absent", {}),
                      ("deleted, as Basic", {"Authorization": "Basic " + base64.b64encode(
                          b"u:" + toks[0]["secret_key"].encode()).decode()})):
        st, h, data = rec.req(port, "GET", "/auth/verify", dict(base, **hdr))
        answers[what] = (st, sorted((k, v) for k, v in h.items() if k not in ("date",)), data)
    T.ok(len(set(map(repr, answers.values()))) == 1 and answers["absent"][0] == 401,
         "deleted, malformed and absent tokens get the same 401 (status, headers, body)",
         "; ".join("%s: %d %r" % (k, v[0], v[2][:80]) for k, v in answers.items()))
    rec.req(port, "GET", "/metrics")
    rec.req(port, "GET", "/healthz")
    # API-key handling with a server-side error path: a malformed body after auth.
    rec.req(port, "POST", "/cockpit/v1/regions/fr-par/tokens",
            {"X-Auth-Token": k1["secret_key"], "Content-Type": "application/json"}, "{bad")
    return toks


def scan_files(paths, secrets, label):
    blob = b""
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                blob += f.read()
    found = leaks(blob, secrets)
    T.ok(not found, "no secret in %s (%d bytes)" % (label, len(blob)), ", ".join(found))
    return len(blob)


def run(db, extra_scan):
    srv = Server("--log-level", "debug", "--access-log", "all", "--auth-fail-limit", "0",
                 db=db).start()
    secrets, rec = {}, Recorder()
    exercise(srv, secrets, rec)
    T.ok(not leaks(rec.blob, secrets), "no secret in any response but Create's (%d bytes of "
         "status lines, headers and bodies)" % len(rec.blob), ", ".join(leaks(rec.blob, secrets)))
    audit = srv.cli("audit", "list", "-o", "json").encode()
    T.ok(not leaks(audit, secrets), "no secret in the audit log")
    sqlite = srv.db[len("sqlite:"):] if srv.db.startswith("sqlite:") else None
    if sqlite:
        # While serving: copy the main file and the WAL as they are.
        snap = os.path.join(srv.workdir, "snap")
        os.makedirs(snap, exist_ok=True)
        for suffix in ("", "-wal"):
            if os.path.exists(sqlite + suffix):
                shutil.copy(sqlite + suffix, os.path.join(snap, "t.db" + suffix))
        T.ok(os.path.exists(os.path.join(snap, "t.db-wal")), "the -wal file exists while serving")
        scan_files([os.path.join(snap, "t.db")], secrets, "the SQLite main file (while serving)")
        scan_files([os.path.join(snap, "t.db-wal")], secrets, "the -wal file (while serving)")
    srv.stop()
    if sqlite:
        scan_files([sqlite, sqlite + "-wal"], secrets, "the SQLite files after a clean stop")
        srv.start()
        st, _, data = create_token(srv.port, srv.key)
        secrets["token after restart"] = jbody(data)["secret_key"]
        srv.kill9()
        T.ok(os.path.exists(sqlite + "-wal"), "the -wal file is left by kill -9")
        scan_files([sqlite, sqlite + "-wal"], secrets, "the SQLite files after kill -9")
    else:
        dump = subprocess.run([os.environ.get("CT_PG_DUMP", "pg_dump"), "--no-owner", db],
                              capture_output=True, timeout=60)
        T.ok(dump.returncode == 0 and b"CREATE TABLE" in dump.stdout, "pg_dump of the database",
             dump.stderr.decode()[:200])
        found = leaks(dump.stdout, secrets)
        T.ok(not found, "no secret in the PostgreSQL dump (%d bytes)" % len(dump.stdout),
             ", ".join(found))
    n = scan_files([srv.log_path], secrets, "the server log at debug level, access log all")
    log = srv.log()
    T.ok("level=debug" in log and "route=verify" in log and n > 1000,
         "... which is really at debug level with verify lines",
         "%d lines" % log.count("\n"))
    if extra_scan:
        scan_files(extra_scan, secrets, " + ".join(os.path.basename(p) for p in extra_scan))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None)
    ap.add_argument("--scan", action="append", default=[])
    a = ap.parse_args()
    run(a.db, a.scan)
    return T.done()


if __name__ == "__main__":
    main_guard(main)
