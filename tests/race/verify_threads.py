#!/usr/bin/env python3
"""/auth/verify load with several event threads: many distinct tokens (more than
the per-thread cache of prebuilt 204 answers holds, so answers are replaced all
the time) requested by several connections at once, against the server given
by CT_BIN (the suite passes the ASan+UBSan build). The server must answer every
request 204 and survive (no abort, no sanitizer report).

  verify_threads.py [--event-threads N] [--tokens N] [--seconds S] [--connections N]

Uses wrk with a Lua script that walks the tokens. Only 127.0.0.1."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import BIN, Checks, Server, main_guard  # noqa: E402

LUA = r"""
local secrets = {}
for line in io.lines("%(secrets)s") do
  local id, project, secret = line:match("(%%S+) (%%S+) (%%S+)")
  secrets[#secrets + 1] = secret
end
local i = 0
local bad = 0
init = function(args) i = math.random(#secrets) end
request = function()
  i = i %% #secrets + 1
  return wrk.format("GET", "/auth/verify", {["X-Token"] = secrets[i],
    ["X-Cockpit-Scope"] = "read_only_metrics", ["X-Cockpit-Region"] = "fr-par"})
end
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--event-threads", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=4000)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=8)
    a = ap.parse_args()
    checks = Checks("verify with %d event threads" % a.event_threads)
    work = tempfile.mkdtemp(prefix="ct-vthreads.")
    db = "sqlite:" + os.path.join(work, "t.db")
    secrets = os.path.join(work, "secrets")
    subprocess.run([BIN, "bulk-load", "--db", db, "--count", str(a.tokens), "--projects", "50",
                    "--region", "fr-par", "--scope", "read_only_metrics", "--secrets-out",
                    secrets, "--secrets-sample", str(a.tokens)],
                   check=True, capture_output=True, timeout=120)
    lua = os.path.join(work, "walk.lua")
    with open(lua, "w") as f:
        f.write(LUA % {"secrets": secrets})
    srv = Server("--event-threads", str(a.event_threads), "--access-log", "off", db=db,
                 workdir=work)
    srv.start(timeout=60)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(a.connections), "-d", "%ds" % a.seconds,
                          "--timeout", "5s", "-s", lua, "http://127.0.0.1:%d" % srv.port],
                         capture_output=True, text=True, timeout=a.seconds + 60)
    m = re.search(r"(\d+) requests in", out.stdout)
    total = int(m.group(1)) if m else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    errors = re.search(r"Socket errors: (.*)", out.stdout)
    alive = srv.proc.poll() is None
    log = srv.log()
    checks.ok(alive, "the server survived the load", "exit %s: %s" % (
        srv.proc.returncode, log[-1500:]) if not alive else "")
    checks.ok(total > 0, "wrk sent requests", "%d in %d s" % (total, a.seconds))
    checks.ok(not non2xx and not errors, "every request answered 204",
              "%s %s" % (non2xx.group(0) if non2xx else "", errors.group(0) if errors else ""))
    sanitizer = re.search(r"(AddressSanitizer|runtime error|LeakSanitizer).*", log)
    srv.stop()
    log = srv.log()
    sanitizer = sanitizer or re.search(r"(AddressSanitizer|runtime error|LeakSanitizer).*", log)
    checks.ok(not sanitizer, "no sanitizer report", sanitizer.group(0) if sanitizer else "")
    checks.eq(srv.proc.returncode, 0, "clean exit on SIGTERM")
    checks.note("%d verifications over %d tokens, %d connections, %d event threads, %d s"
                % (total, a.tokens, a.connections, a.event_threads, a.seconds))
    return checks.done()


if __name__ == "__main__":
    main_guard(main)
