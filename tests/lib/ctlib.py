"""Helpers shared by the Python black-box suites (bounds, abuse, audit, secrets):
start the real server on a free loopback port, talk HTTP from a chosen loopback
source address, and report checks TAP-style. Python 3 standard library only.

Every server runs in a temporary directory of its own, is stopped at exit, and
every socket operation has a timeout."""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CT_BIN", os.path.join(ROOT, "build", "cockpit-tokens"))
P1 = "11111111-2222-4333-8444-555555555555"
P2 = "22222222-3333-4444-8555-666666666666"

_servers = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A cockpit-tokens `serve` process on 127.0.0.1:PORT with its own SQLite
    file (unless db is given) and bootstrap key (self.key)."""

    def __init__(self, *args, db=None, key=None, env=None, workdir=None):
        self.args = list(args)
        self.workdir = workdir or tempfile.mkdtemp(prefix="ct-test.")
        self.own_workdir = workdir is None
        self.db = db or "sqlite:" + os.path.join(self.workdir, "t.db")
        self.key = key or str(uuid.uuid4())
        self.env = env or {}
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.workdir, "server.log")
        _servers.append(self)

    def start(self, timeout=20):
        """Starts the server and waits until it answers /healthz. A port taken by
        someone else between free_port() and the bind is retried on another one."""
        for attempt in range(3):
            env = dict(os.environ, COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=self.key, **self.env)
            log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            self.log_start, self.we_stopped = log_start, False
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port, "--db", self.db] + self.args,
                stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                mine = ("listening on http://127.0.0.1:%d " % self.port) in self.log()[log_start:]
                try:
                    if mine and request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.03)
            if self.proc.poll() is None:
                raise RuntimeError("server not healthy in %d s: %s" % (timeout, self.log()[-2000:]))
            if "cannot listen" not in self.log()[log_start:]:
                raise RuntimeError("server exited (%s): %s" % (self.proc.returncode, self.log()[-2000:]))
            self.port = free_port()
        raise RuntimeError("no free port after 3 attempts")

    def outside_stop(self):
        """"" unless the server was stopped by a signal we did not send (another
        process on this machine), which would explain a lost connection."""
        log = self.log()[self.log_start:]
        return ("server on port %d stopped by a SIGTERM/SIGINT from another process" % self.port
                if "received SIG" in log and not self.we_stopped else "")

    we_stopped = False
    log_start = 0

    def stop(self):
        self.we_stopped = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        self.we_stopped = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill9()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def cli(self, *args, check=True, timeout=60):
        """Runs `cockpit-tokens ARGS --db DB`; returns stdout (text)."""
        out = subprocess.run([BIN] + list(args) + ["--db", self.db], capture_output=True,
                             timeout=timeout, env=dict(os.environ, **self.env))
        if check and out.returncode != 0:
            raise RuntimeError("%s: exit %d: %s" % (args, out.returncode, out.stderr.decode()))
        return out.stdout.decode()


@atexit.register
def _cleanup_servers():
    for s in _servers:
        s.cleanup()


def connection(port, src="127.0.0.1", timeout=10):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(src, 0))


def request(port, method, path, headers=None, body=None, src="127.0.0.1", timeout=10, conn=None):
    """One request; returns (status, headers as a dict with lower-case names, body bytes)."""
    c = conn or connection(port, src, timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if conn is None:
            c.close()


def create_token(port, key, project=P1, name=None, scopes=("read_only_metrics",),
                 region="fr-par", src="127.0.0.1"):
    body = json.dumps({"project_id": project, "name": name or "t-" + uuid.uuid4().hex[:12],
                       "token_scopes": list(scopes)})
    return request(port, "POST", "/cockpit/v1/regions/%s/tokens" % region,
                   {"X-Auth-Token": key, "Content-Type": "application/json"}, body, src=src)


def verify(port, headers, src="127.0.0.1"):
    return request(port, "GET", "/auth/verify", headers, src=src)[0]


class Checks:
    """TAP-like reporting: ok/FAIL lines, a summary, an exit status."""

    def __init__(self, name):
        self.name = name
        self.failed = 0
        self.passed = 0

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok   - %s%s" % (what, " (%s)" % detail if detail else ""), flush=True)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (what, ": %s" % detail if detail else ""), flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, "got %r" % (got,) if got != want else "")

    def note(self, text):
        print("#      %s" % text, flush=True)

    def done(self):
        print("# %s: %d passed, %d failed" % (self.name, self.passed, self.failed), flush=True)
        return 1 if self.failed else 0


def jbody(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def main_guard(fn):
    """Runs fn() and turns an exception into a failing exit with its message."""
    try:
        sys.exit(fn())
    except Exception as e:  # noqa: BLE001 - a test harness reports everything
        import traceback
        traceback.print_exc()
        print("FAIL - harness error: %s" % e)
        for s in _servers:
            if s.outside_stop():
                print("FAIL - (explains it) %s" % s.outside_stop())
        sys.exit(1)
