"""Writes one backend's upgrade fixture with an OLD release's binary: API keys
(one deleted), tokens of several projects, regions and scopes (some deleted),
then records what that release answered (every Get, a set of Lists, /auth/verify
probes, the audit log) so that tests/upgrade/check.py can ask the new binary the
same questions. Run by tests/upgrade/generate.sh, which builds the release and
dumps the database; not by the test suites.

usage: generate.py OLD_BINARY sqlite:PATH|postgresql://URI OUT.json

Python 3 standard library only. The secrets written to OUT.json belong to the
fixture database alone (throw-away test data): committing them is intended."""
import json
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ctlib  # noqa: E402
from ctlib import Server, jbody, request  # noqa: E402

REGIONS = ["fr-par", "nl-ams", "pl-waw"]
PA = "3a1c6f2e-0b7d-4c55-9e21-6a0f5b8d4c11"
PB = "5be27d90-44a1-4f0c-8d3e-19c2f7a6b022"
PC = "7cd3e8a1-95b2-4e1d-a04f-2ad3e8b7c133"
# (key label, region, project, name, scopes, deleted by): names repeat ("grafana")
# and differ in case ("Agent") so the name orders and their id tie-break are exercised.
TOKENS = [
    ("org", "fr-par", PA, "grafana", ["read_only_metrics", "read_only_logs"], None),
    ("org", "fr-par", PA, "Agent", ["write_only_metrics", "write_only_logs"], None),
    ("org", "fr-par", PA, "rules", ["full_access_metrics_rules", "full_access_logs_rules"], None),
    ("org", "fr-par", PA, "grafana", ["read_only_traces"], None),
    ("org", "fr-par", PA, "alerts", ["full_access_alert_manager"], None),
    ("org", "fr-par", PB, "tempo", ["write_only_traces", "read_only_traces"], None),
    ("org", "fr-par", PB, "zz-old", ["read_only_metrics"], "org"),
    ("org", "nl-ams", PA, "ams-read", ["read_only_metrics"], None),
    ("org", "nl-ams", PC, "ams-push", ["write_only_metrics", "write_only_logs",
                                       "write_only_traces"], None),
    ("org", "nl-ams", PC, "gone", ["read_only_logs"], "org"),
    ("org", "pl-waw", PB, "waw", ["read_only_metrics", "write_only_metrics",
                                  "full_access_metrics_rules", "read_only_logs",
                                  "write_only_logs", "full_access_logs_rules",
                                  "full_access_alert_manager", "read_only_traces",
                                  "write_only_traces"], None),
    ("bc", "pl-waw", PC, "waw-logs", ["read_only_logs"], None),
    ("bc", "fr-par", PB, "deleted-by-key", ["write_only_logs"], "bc"),
    ("a", "fr-par", PA, "made-by-project-key", ["read_only_metrics"], None),
]
# One request per scope that the old and the new path maps both decide.
SCOPE_PATHS = {
    "read_only_metrics": ("metrics", "GET", "/api/v1/query_range?query=up"),
    "write_only_metrics": ("metrics", "POST", "/api/v1/push"),
    "full_access_metrics_rules": ("metrics", "POST", "/config/v1/rules/ns"),
    "read_only_logs": ("logs", "GET", "/loki/api/v1/query_range"),
    "write_only_logs": ("logs", "POST", "/loki/api/v1/push"),
    "full_access_logs_rules": ("logs", "POST", "/loki/api/v1/rules/ns"),
    "read_only_traces": ("traces", "GET", "/api/traces/0af7651916cd43dd8448eb211c80319c"),
    "write_only_traces": ("traces", "POST", "/otlp/v1/traces"),
    "full_access_alert_manager": ("alert_manager", "GET", "/api/v2/alerts"),
}
IDENTITY = ("x-cockpit-project-id", "x-cockpit-token-id", "x-scope-orgid")


def cli(binary, db, *args):
    out = subprocess.run([binary] + list(args) + ["--db", db], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout


def make_keys(binary, db):
    """Two project keys and an organization-wide one that is then deleted."""
    keys = {}
    for label, projects in (("a", [PA]), ("bc", [PB, PC]), ("deleted", [])):
        args = ["apikey", "create", "--description", "upgrade fixture " + label, "-o", "json"]
        for p in projects:
            args += ["--project", p]
        keys[label] = dict(json.loads(cli(binary, db, *args)), label=label, state="live")
    cli(binary, db, "apikey", "delete", keys["deleted"]["access_key"])
    keys["deleted"]["state"] = "deleted"
    return keys


def api(port, secret, method, path, body=None):
    st, _, data = request(port, method, "/cockpit/v1/regions" + path,
                          {"X-Auth-Token": secret, "Content-Type": "application/json"},
                          json.dumps(body) if body is not None else None)
    return st, jbody(data)


def make_tokens(port, secrets):
    toks = []
    for label, region, project, name, scopes, _ in TOKENS:
        st, tok = api(port, secrets[label], "POST", "/%s/tokens" % region,
                      {"project_id": project, "name": name, "token_scopes": scopes})
        assert st == 200, (st, tok)
        toks.append({"id": tok["id"], "secret_key": tok["secret_key"], "region": region,
                     "project_id": project, "name": name, "scopes": scopes, "state": "live"})
    for t, row in zip(toks, TOKENS):
        if row[5]:
            st, _ = api(port, secrets[row[5]], "DELETE", "/%s/tokens/%s" % (t["region"], t["id"]))
            assert st == 204, st
            t["state"] = "deleted"
    return toks


def list_queries(toks):
    """(key label, path) of every List and Get recorded besides each token's own Get."""
    q = []
    for r in REGIONS:
        q.append(("org", "/%s/tokens?page_size=100" % r))
        for order in ("created_at_asc", "created_at_desc", "name_asc", "name_desc"):
            q.append(("org", "/%s/tokens?page_size=100&order_by=%s" % (r, order)))
        for p in (PA, PB, PC):
            q.append(("org", "/%s/tokens?project_id=%s&order_by=name_asc" % (r, p)))
        q.append(("org", "/%s/tokens?token_scopes=read_only_logs&token_scopes=write_only_traces"
                  "&order_by=created_at_desc" % r))
    q += [("org", "/fr-par/tokens?page_size=2&page=2&order_by=name_desc"),
          ("org", "/fr-par/tokens?page_size=2&page=50"),
          ("a", "/fr-par/tokens?page_size=100"),
          ("a", "/fr-par/tokens?project_id=%s" % PB),
          ("bc", "/pl-waw/tokens?page_size=100&order_by=name_asc"),
          ("deleted", "/fr-par/tokens")]
    other = [t for t in toks if t["project_id"] == PB][0]
    q.append(("a", "/%s/tokens/%s" % (other["region"], other["id"])))
    return q


def probes(t):
    """/auth/verify requests for one token: each scope stated, each scope by data
    source and path, another region, and a scope it lacks."""
    base = {"X-Token": t["secret_key"]}
    out = []
    for s in t["scopes"]:
        out.append(dict(base, **{"X-Cockpit-Scope": s, "X-Cockpit-Region": t["region"]}))
        ds, method, uri = SCOPE_PATHS[s]
        out.append(dict(base, **{"X-Cockpit-Data-Source": ds, "X-Original-Method": method,
                                 "X-Original-URI": uri, "X-Cockpit-Region": t["region"]}))
    other = [r for r in REGIONS if r != t["region"]][0]
    out.append(dict(base, **{"X-Cockpit-Scope": t["scopes"][0], "X-Cockpit-Region": other}))
    lacking = [s for s in SCOPE_PATHS if s not in t["scopes"]]
    if lacking:
        out.append(dict(base, **{"X-Cockpit-Scope": lacking[0], "X-Cockpit-Region": t["region"]}))
    return out


def record(port, secrets, toks):
    for t in toks:
        st, body = api(port, secrets["org"], "GET", "/%s/tokens/%s" % (t["region"], t["id"]))
        assert st == (200 if t["state"] == "live" else 404), (st, t)
        t["get"] = {"status": st, "body": body}
        t["probes"] = []
        for h in probes(t):
            st, hdr, _ = request(port, "GET", "/auth/verify", h)
            t["probes"].append({"headers": h, "status": st,
                                "identity": {k: hdr.get(k) for k in IDENTITY}})
        allowed = [p for p in t["probes"] if p["status"] == 204]
        assert (len(allowed) >= 2) == (t["state"] == "live"), t["probes"]
    lists = []
    for label, path in list_queries(toks):
        st, body = api(port, secrets[label], "GET", path)
        lists.append({"key": label, "path": path, "status": st, "body": body})
    return lists


def run():
    binary, db, out = sys.argv[1:4]
    ctlib.BIN = binary
    keys = make_keys(binary, db)
    org = str(uuid.uuid4())
    secrets = {k: v["secret_key"] for k, v in keys.items()}
    secrets["org"] = org
    srv = Server("--regions", ",".join(REGIONS), db=db, key=org).start()
    toks = make_tokens(srv.port, secrets)
    lists = record(srv.port, secrets, toks)
    srv.stop()
    version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.strip()
    audit = [json.loads(line) for line in cli(binary, db, "audit", "list", "-o", "json").split("\n")
             if line.strip()]
    fixture = {"release": version, "bootstrap_secret_key": org, "regions": REGIONS,
               "api_keys": list(keys.values()), "tokens": toks, "lists": lists, "audit": audit}
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%s: %d tokens (%d deleted), %d lists, %d audit rows" % (
        out, len(toks), sum(t["state"] == "deleted" for t in toks), len(lists), len(audit)))
    return 0


if __name__ == "__main__":
    sys.exit(run())
