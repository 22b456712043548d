#!/usr/bin/env python3
"""The real server under valgrind for one short session: every route, good and
bad requests (create, get, list with arguments, delete, verify in all four
forms, 401/403/404/405/413, a malformed body, /metrics, /healthz), then SIGTERM.
Passes when valgrind reports no error and no definite leak (exit status 0).

Usage: serve_session.py [--db URI]. Loopback only; bounded (60 s start-up)."""
import argparse
import base64
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ctlib  # noqa: E402
from ctlib import P1, P2, Checks, Server, create_token, jbody, main_guard, request  # noqa: E402

T = Checks("valgrind-serve")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None)
    a = ap.parse_args()
    srv = Server("--workers", "2", "--log-level", "debug", "--access-log", "all", db=a.db)
    vg_log = os.path.join(srv.workdir, "valgrind.log")
    real_bin = ctlib.BIN
    # Run the binary through valgrind: Server execs BIN, so point it at a wrapper.
    wrapper = os.path.join(srv.workdir, "vg.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full "
                "--errors-for-leak-kinds=definite --log-file=%s %s \"$@\"\n" % (vg_log, real_bin))
    os.chmod(wrapper, 0o755)
    ctlib.BIN = wrapper
    srv.start(timeout=60)
    port, key = srv.port, srv.key
    R = "/cockpit/v1/regions/fr-par/tokens"
    h = {"X-Auth-Token": key}
    toks = [jbody(create_token(port, key, project=p, scopes=s)[2])
            for p, s in ((P1, ["read_only_metrics", "write_only_logs"]), (P2, ["write_only_traces"]))]
    T.ok(all(t and t.get("secret_key") for t in toks), "two tokens created")
    sts = [request(port, "GET", R + "/" + toks[0]["id"], h)[0],
           request(port, "GET", R + "?page_size=1&page=2&order_by=name_desc&token_scopes="
                   "read_only_metrics&token_scopes=write_only_traces&project_id=" + P1, h)[0],
           request(port, "GET", R + "?page_size=1001", h)[0],
           request(port, "GET", R + "/" + str(uuid.uuid4()), h)[0],
           request(port, "GET", R + "/not-a-uuid", h)[0],
           request(port, "GET", "/cockpit/v1/regions/xx-nope/tokens", h)[0],
           request(port, "PUT", R, h)[0],
           request(port, "GET", "/nope")[0],
           request(port, "GET", R)[0],
           request(port, "GET", R, {"X-Auth-Token": str(uuid.uuid4())})[0],
           request(port, "POST", R, dict(h, **{"Content-Type": "application/json"}), "{bad")[0],
           request(port, "POST", R, dict(h, **{"Content-Type": "application/json"}), "x" * 70000)[0],
           request(port, "GET", "/metrics")[0], request(port, "GET", "/healthz")[0]]
    T.eq(sts, [200, 200, 400, 404, 400, 400, 405, 404, 401, 401, 400, 413, 200, 200],
         "management routes answer as specified")
    t = toks[0]
    base = {"X-Cockpit-Scope": "read_only_metrics", "X-Cockpit-Region": "fr-par"}
    basic = base64.b64encode(b"u:" + t["secret_key"].encode()).decode()
    vs = [request(port, "GET", "/auth/verify", dict(base, **x))[0] for x in (
        {"X-Token": t["secret_key"]}, {"Authorization": "Bearer " + t["secret_key"]},
        {"Authorization": "Basic " + basic}, {"X-Scope-OrgID": t["secret_key"]}, {},
        {"X-Token": "short"}, {"X-Token": t["secret_key"], "X-Cockpit-Scope": "read_only_logs"},
        {"X-Token": t["secret_key"], "X-Cockpit-Scope": "", "X-Cockpit-Data-Source": "metrics",
         "X-Original-URI": "/api/v1/query?x=1"})]
    T.eq(vs, [204, 204, 204, 204, 401, 401, 403, 204], "verify decisions")
    T.eq(request(port, "DELETE", R + "/" + t["id"], h)[0], 204, "delete")
    T.eq(request(port, "GET", "/auth/verify", dict(base, **{"X-Token": t["secret_key"]}))[0], 401,
         "deleted token -> 401")
    srv.stop()
    rc = srv.proc.returncode
    with open(vg_log) as f:
        report = f.read()
    T.ok(rc == 0 and not report.strip(), "valgrind: no error, no definite leak, exit 0",
         "exit %d; %s" % (rc, report[:3000]))
    return T.done()


if __name__ == "__main__":
    main_guard(main)
