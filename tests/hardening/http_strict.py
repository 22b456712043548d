#!/usr/bin/env python3
"""HTTP strictness and small gaps found by an outside review (docs/SECURITY.md):

  * ambiguous framing (two Content-Length, Content-Length with Transfer-Encoding)
    is refused with a JSON 400 and the connection closes;
  * a raw '#' in X-Original-URI is never judged (403 undetermined);
  * a NUL inside a header value (libmicrohttpd cuts the value there) or a folded
    header line is refused with a JSON 400 and the connection closes;
  * trailing whitespace around X-Auth-Token is not part of it;
  * list arguments: a long value is "too long" (not "too many"), %00 is refused,
    an over-long token id is a 400 on token_id;
  * a 429 carries limit {quota, window_seconds} and reset_seconds;
  * a request that got no answer is counted as code="aborted", never "500";
  * a client that half-closes after its request still gets the answer;
  * the bootstrap secret is not left in /proc/PID/environ; core dumps are off;
  * a store that cannot write (file-size limit standing in for a full disk)
    fails /healthz and does not write one error line per request.
Only 127.0.0.1; bounded."""
import json
import os
import re
import resource
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import (P1, Checks, Server, create_token, jbody, main_guard,  # noqa: E402
                   request)

C = Checks("http strict")
TOKENS = "/cockpit/v1/regions/fr-par/tokens"


def raw(port, data, half_close=False, timeout=5):
    """Sends bytes; returns (status line, headers text, body bytes, closed by server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    if half_close:
        time.sleep(0.002)
        s.shutdown(socket.SHUT_WR)
    out, closed = b"", False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
            if not half_close and b"\r\n\r\n" in out:
                head, body = out.split(b"\r\n\r\n", 1)
                m = re.search(rb"Content-Length: (\d+)", head)
                if m and len(body) >= int(m.group(1)) and b"Connection: close" not in head:
                    break
    except socket.timeout:
        pass
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    first = head.split(b"\r\n")[0].decode("latin-1")
    return first, head.decode("latin-1"), body, closed


def framing(s):
    for name, extra in (("two Content-Length headers",
                         b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"),
                        ("Content-Length with Transfer-Encoding",
                         b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")):
        first, head, body, closed = raw(s.port, ("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
                                                 % (TOKENS, s.key)).encode() + extra)
        doc = jbody(body) or {}
        C.ok(first.startswith("HTTP/1.1 400") and doc.get("type") == "invalid_arguments" and
             closed, "%s: 400 JSON, connection closed" % name, "%s %r %s" % (first, body[:120], closed))


def verify_checks(s):
    st, _, body = create_token(s.port, s.key, scopes=("read_only_metrics",))
    secret = json.loads(body)["secret_key"]
    base = {"X-Token": secret, "X-Cockpit-Region": "fr-par", "X-Cockpit-Data-Source": "metrics",
            "X-Original-Method": "GET"}
    st = request(s.port, "GET", "/auth/verify", dict(base, **{"X-Original-URI": "/api/v1/query"}))[0]
    C.eq(st, 204, "a read with the token is allowed (baseline)")
    st = request(s.port, "GET", "/auth/verify",
                 dict(base, **{"X-Original-URI": "/api/v1/query#/../write"}))[0]
    C.eq(st, 403, "a raw '#' in X-Original-URI is not judged: 403")
    nul_in_header(s, secret)


def nul_in_header(s, secret):
    """libmicrohttpd 0.9.75 cuts a header value at a NUL: the rest must not be lost
    silently (the write below was judged as a read). Every header position, both
    line ends, NULs padded to look like line ends, and a folded line."""
    head = ("GET /auth/verify HTTP/1.1\r\nHost: x\r\nX-Token: %s\r\nX-Cockpit-Region: fr-par\r\n"
            "X-Cockpit-Data-Source: metrics\r\nX-Original-Method: GET\r\n" % secret).encode()
    uri = b"X-Original-URI: /api/v1/query"
    for name, data in (("last header", head + uri + b"\0/../../write\r\n\r\n"),
                       ("last header, NUL padding", head + uri + b"\0\0\0\0/../write\r\n\r\n"),
                       ("middle header", head + uri + b"\0/../write\r\nX-A: b\r\n\r\n"),
                       ("bare LF line ends", (head + uri + b"\0/../write\n\n").replace(b"\r\n", b"\n")),
                       ("folded line", head + uri + b"\r\n /../write\r\nX-A: b\r\n\r\n")):
        first, _, body, closed = raw(s.port, data)
        doc = jbody(body) or {}
        C.ok(first.startswith("HTTP/1.1 400") and doc.get("type") == "invalid_arguments" and closed,
             "a NUL in a header value (%s): 400 JSON, connection closed" % name,
             "%s %r %s" % (first, body[:160], closed))
    for name, data in (("bare LF line ends", (head + uri + b"\n\n").replace(b"\r\n", b"\n")),
                       ("an empty value and a cookie", head + b"X-E:\r\nCookie: a=1; b=2\r\n" + uri +
                        b"\r\nConnection: close\r\n\r\n"),
                       ("a NUL ending the value (nothing after it)", head + uri + b"\0\r\n\r\n")):
        first = raw(s.port, data)[0]
        C.ok(first.startswith("HTTP/1.1 204"), "a clean request is still judged (%s): 204" % name, first)


def auth_and_args(s):
    first, _, _, _ = raw(s.port, ("GET %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s \t \r\n"
                                  "Connection: close\r\n\r\n" % (TOKENS, s.key)).encode())
    C.ok(first.startswith("HTTP/1.1 200"), "X-Auth-Token with trailing whitespace is accepted",
         first)
    st, _, body = request(s.port, "GET", TOKENS + "?order_by=" + "a" * 300, {"X-Auth-Token": s.key})
    d = ((jbody(body) or {}).get("details") or [{}])[0]
    C.ok(st == 400 and d.get("argument_name") == "order_by" and "too long" in d.get("help_message", ""),
         "a 300-character query value: 400 on it, 'too long'", "%s %r" % (st, body[:200]))
    st, _, body = request(s.port, "GET", TOKENS + "?page=1%00", {"X-Auth-Token": s.key})
    d = ((jbody(body) or {}).get("details") or [{}])[0]
    C.ok(st == 400 and d.get("argument_name") == "page", "page=1%00 is refused: 400 on page",
         "%s %r" % (st, body[:200]))
    st, _, body = request(s.port, "GET", TOKENS + "/" + "a" * 100, {"X-Auth-Token": s.key})
    d = ((jbody(body) or {}).get("details") or [{}])[0]
    C.ok(st == 400 and d.get("argument_name") == "token_id",
         "an over-long token id: 400 on token_id", "%s %r" % (st, body[:200]))


def throttle_body():
    s = Server("--auth-fail-limit", "3", "--auth-fail-window", "60").start()
    bad = str(uuid.uuid4())
    st = body = None
    for _ in range(5):
        st, _, body = request(s.port, "GET", TOKENS, {"X-Auth-Token": bad})
    doc = jbody(body) or {}
    C.ok(st == 429 and doc.get("limit", {}).get("quota") == 3 and
         doc["limit"].get("window_seconds") == 60 and isinstance(doc.get("reset_seconds"), int) and
         0 < doc["reset_seconds"] <= 60, "429 carries limit {quota, window_seconds} and "
         "reset_seconds", "%s %r" % (st, body[:300]))
    s.stop()


def aborted_and_half_close(s):
    # A client that leaves in the middle of its body: no answer was sent.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Length: 500\r\n\r\n{"
               % (TOKENS, s.key)).encode())
    c.close()
    time.sleep(0.5)
    text = request(s.port, "GET", "/metrics")[2].decode()
    C.ok('route="tokens",code="aborted"' in text and 'route="tokens",code="500"' not in text,
         "a request that got no answer counts as code=\"aborted\", not 500",
         "\n".join(l for l in text.splitlines() if "requests_total{route=\"tokens\"" in l))
    body = json.dumps({"project_id": P1, "name": "half-close", "token_scopes": ["read_only_logs"]})
    for name, req in (
            ("create", "POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Length: %d\r\n"
                       "\r\n%s" % (TOKENS, s.key, len(body), body)),
            ("list", "GET %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n\r\n" % (TOKENS, s.key)),
            ("healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")):
        first, _, rbody, _ = raw(s.port, req.encode(), half_close=True)
        ok = first.startswith("HTTP/1.1 200") and (name != "create" or b"secret_key" in rbody)
        C.ok(ok, "%s: a client that half-closes after its request gets the answer" % name, first)


def secrets(s):
    env = open("/proc/%d/environ" % s.proc.pid, "rb").read()
    C.ok(s.key.encode() not in env, "the bootstrap secret is gone from /proc/PID/environ")
    limits = open("/proc/%d/limits" % s.proc.pid).read()
    m = re.search(r"Max core file size\s+(\S+)\s+(\S+)", limits)
    C.ok(m and m.group(1) == "0" and m.group(2) == "0", "core dumps are off (RLIMIT_CORE 0)",
         m.group(0) if m else limits[:200])


def full_disk():
    """A file-size limit makes every write fail like a full disk would."""
    s = Server("--access-log", "off")
    s.start()
    size = sum(os.path.getsize(os.path.join(s.workdir, f)) for f in os.listdir(s.workdir)
               if f.startswith("t.db"))
    s.stop()
    limit = max(size, 64 * 1024) + 96 * 1024

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    import subprocess
    real_popen = subprocess.Popen

    def popen(*a, **kw):
        kw["preexec_fn"] = cap
        return real_popen(*a, **kw)
    subprocess.Popen = popen
    try:
        s.start()
    finally:
        subprocess.Popen = real_popen
    statuses = []
    for _ in range(400):
        statuses.append(create_token(s.port, s.key, name="d" + uuid.uuid4().hex[:12])[0])
        if statuses[-1] >= 500 and statuses.count(statuses[-1]) > 60:
            break
    failed = [x for x in statuses if x >= 500]
    C.ok(len(failed) > 20, "writes fail once the file cannot grow", "%d of %d creates failed"
         % (len(failed), len(statuses)))
    C.ok(s.proc.poll() is None, "the server is still running")
    C.eq(request(s.port, "GET", "/healthz")[0], 503, "/healthz answers 503 while writes fail")
    errs = [l for l in s.log()[s.log_start:].splitlines() if "level=error" in l or
            "level=warning" in l]
    C.ok(len(errs) <= 3 * 10 + 5, "repeated errors are rate-limited in the log",
         "%d error/warning lines for %d failed writes" % (len(errs), len(failed)))
    C.note("full disk: %d failed writes, %d error/warning lines" % (len(failed), len(errs)))
    s.stop()


def main():
    s = Server().start()
    framing(s)
    verify_checks(s)
    auth_and_args(s)
    aborted_and_half_close(s)
    secrets(s)
    s.stop()
    throttle_body()
    full_disk()
    return C.done()


if __name__ == "__main__":
    main_guard(main)
