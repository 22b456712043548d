#!/usr/bin/env python3
"""The SQLite database file (docs/OPERATIONS.md, "The SQLite file"):

  * one server per database: a second `serve` on the same file exits with a
    clear message while the first keeps serving; admin commands still work;
  * the file is created 0600 (and its -wal / -shm with it) whatever the umask;
  * the file removed, or replaced, under a running server: /healthz answers 503,
    a create answers 503 JSON, the log says what happened and how to recover;
  * after that, a restart refuses to create an empty database where one is
    expected (PATH-created marker); deleting the marker is the way to start over;
  * a -shm truncated under the server: it stops with a message naming the file.

Only 127.0.0.1; bounded."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import BIN, Checks, Server, create_token, jbody, main_guard, request  # noqa: E402

C = Checks("sqlite file")


def serve_once(db, timeout=5):
    """Runs a second `serve` that must exit by itself: (exit code, output)."""
    port = Server().port
    try:
        p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--db", db],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # it kept running: run() has killed it
        return 0, "still serving after %d s" % timeout
    return p.returncode, p.stdout + p.stderr


def wait_status(port, want, seconds=5):
    deadline = time.monotonic() + seconds
    st = None
    while time.monotonic() < deadline:
        st = request(port, "GET", "/healthz")[0]
        if st == want:
            break
        time.sleep(0.1)
    return st


def lock_checks(work):
    path = os.path.join(work, "lock", "t.db")
    os.makedirs(os.path.dirname(path))
    old = os.umask(0o022)
    try:
        a = Server(db="sqlite:" + path, workdir=os.path.dirname(path)).start()
    finally:
        os.umask(old)
    st, _, body = create_token(a.port, a.key)
    C.eq(st, 200, "first server: create")
    modes = {f: stat.S_IMODE(os.stat(os.path.join(os.path.dirname(path), f)).st_mode)
             for f in os.listdir(os.path.dirname(path)) if f.startswith("t.db")}
    C.ok(modes and all(m & 0o077 == 0 for m in modes.values()),
         "the database, its -wal, -shm and marker are 0600 under umask 022", str(modes))
    rc, out = serve_once("sqlite:" + path)
    C.ok(rc != 0, "a second server on the same SQLite file exits", out[-200:] if rc == 0 else "")
    ok = "in use by another cockpit-tokens server" in out
    C.ok(ok, "... saying another server uses the database", "" if ok else out[-300:])
    C.eq(request(a.port, "GET", "/healthz")[0], 200, "the first server keeps serving")
    r = subprocess.run([BIN, "apikey", "list", "--db", "sqlite:" + path], capture_output=True,
                       timeout=30)
    C.eq(r.returncode, 0, "admin commands still run beside the server")
    a.stop()
    b = Server(db="sqlite:" + path, key=a.key, workdir=os.path.dirname(path)).start()
    C.eq(request(b.port, "GET", "/healthz")[0], 200, "once the first stopped, another starts")
    b.stop()


def removed_checks(work, how):
    d = os.path.join(work, how)
    os.makedirs(d)
    path = os.path.join(d, "t.db")
    s = Server(db="sqlite:" + path, workdir=d).start()
    st, _, body = create_token(s.port, s.key)
    C.eq(st, 200, "%s: a token is created" % how)
    if how == "removed":
        os.remove(path)
    else:
        shutil.copyfile(path, path + ".copy")
        os.replace(path + ".copy", path)
    C.eq(wait_status(s.port, 503), 503, "%s: /healthz answers 503" % how)
    st, hdrs, body = create_token(s.port, s.key)
    doc = jbody(body) or {}
    C.ok(st == 503 and doc.get("type") == "service_unavailable" and
         hdrs.get("content-type", "").startswith("application/json"),
         "%s: a create answers 503 JSON" % how, "" if st == 503 else "%s %r" % (st, body[:200]))
    log = s.log()
    ok = (("was removed" if how == "removed" else "was replaced") in log and
          "/proc/%d/fd/" % s.proc.pid in log)
    C.ok(ok, "%s: the log says so, and how to recover the file" % how, "" if ok else log[-400:])
    s.stop()
    return path, s.key


def restart_checks(path, key):
    rc, out = serve_once("sqlite:" + path)
    C.ok(rc != 0, "a restart where the database is missing refuses to start",
         out[-200:] if rc == 0 else "")
    ok = "is missing" in out and "t.db-created" in out
    C.ok(ok, "... naming the marker that says a database was there", "" if ok else out[-300:])
    C.ok(not os.path.exists(path), "... and creates no empty database")
    for f in ("-created", "-wal", "-shm"):
        if os.path.exists(path + f):
            os.remove(path + f)
    s = Server(db="sqlite:" + path, key=key, workdir=os.path.dirname(path)).start()
    C.eq(request(s.port, "GET", "/healthz")[0], 200,
         "with the marker deleted (on purpose), a new empty database starts")
    s.stop()


def shm_checks(work):
    """A truncated -shm cannot be survived inside SQLite (its mapping faults): the
    process must at least say what happened instead of dying of a bare SIGBUS."""
    d = os.path.join(work, "shm")
    os.makedirs(d)
    path = os.path.join(d, "t.db")
    s = Server(db="sqlite:" + path, workdir=d).start()
    os.truncate(path + "-shm", 0)
    deadline = time.monotonic() + 10
    while s.proc.poll() is None and time.monotonic() < deadline:
        try:
            request(s.port, "GET", "/cockpit/v1/regions/fr-par/tokens", {"X-Auth-Token": s.key},
                    timeout=2)
        except OSError:
            pass
        time.sleep(0.1)
    log = s.log()
    ok = "SIGBUS" in log and "t.db-shm" in log
    C.ok(ok, "a truncated -shm: the log names the file and says what to do",
         "" if ok else "exit %s: %s" % (s.proc.poll(), log[-300:]))
    s.kill9()


def main():
    work = tempfile.mkdtemp(prefix="ct-sqlite-file.")
    try:
        lock_checks(work)
        path, key = removed_checks(work, "removed")
        restart_checks(path, key)
        removed_checks(work, "replaced")
        shm_checks(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return C.done()


if __name__ == "__main__":
    main_guard(main)
