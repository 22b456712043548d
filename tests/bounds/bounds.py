#!/usr/bin/env python3
"""Resource bounds of the HTTP front, each shown against the real server:

  body cap (413 JSON; Expect: 100-continue; chunked; drained up to 8 MiB past the
  cap, then the connection closes), header size cap (431/400 or closed, and the
  server keeps serving), per-connection memory limit, connection limit, idle and
  slow-client timeouts, per-address connection limit against a slowloris (another
  loopback address is still served), 2,000 concurrent idle connections
  (/healthz latency and RSS printed and bounded), page_size / query / name /
  scope-list caps.

Usage: bounds.py [--only NAME]... (names: body header memory connlimit timeout
slowloris idle2000 caps). Everything listens on and connects from 127.0.0.0/8."""
import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlib import P1, Checks, Server, connection, jbody, main_guard, request  # noqa: E402

T = Checks("bounds")
TOKENS = "/cockpit/v1/regions/fr-par/tokens"



def tcp_rmem_max():
    """The largest receive buffer TCP autotuning may give a socket (bytes)."""
    with open("/proc/sys/net/ipv4/tcp_rmem") as f:
        return int(f.read().split()[2])

def raw(port, data, src="127.0.0.1", timeout=5, read_all=True):
    """Sends raw bytes, returns what the server answered before closing or the
    timeout ("" when it closed without a byte)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    got = b""
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
            if not read_all and b"\r\n\r\n" in got:
                break
    except OSError:
        pass
    finally:
        s.close()
    return got


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def healthy(port, src="127.0.0.1"):
    try:
        return request(port, "GET", "/healthz", src=src, timeout=5)[0] == 200
    except OSError:
        return False


def is_open(sock):
    """True while the peer has not closed sock (no data expected)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def wait_closed(sock, limit):
    """Seconds until the peer closes sock, or None if still open after limit."""
    t0 = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - t0 < limit:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


# ---- body ----------------------------------------------------------------------

def test_body():
    srv = Server("--max-body", "4096").start()
    key, port = srv.key, srv.port
    hdr = {"X-Auth-Token": key, "Content-Type": "application/json"}
    ok_body = json.dumps({"project_id": P1, "name": "fits", "token_scopes": []})
    ok_body = ok_body[:-1] + " " * (4096 - len(ok_body)) + "}"
    st, h, data = request(port, "POST", TOKENS, hdr, ok_body)
    T.eq(st, 200, "body of exactly max_body (4096 bytes) is accepted")
    big = ok_body[:-1] + " " * 100 + "}"
    st, h, data = request(port, "POST", TOKENS, hdr, big)
    j = jbody(data)
    T.ok(st == 413 and j and j.get("type") and h.get("content-type") == "application/json",
         "body of 4196 bytes -> 413 with a JSON error body", "%d %r" % (st, data[:120]))
    # Expect: 100-continue with a too large Content-Length: answered before any body byte.
    t0 = time.monotonic()
    resp = raw(port, ("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Type: "
                      "application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n"
                      % (TOKENS, key)).encode(), read_all=False)
    T.ok(status_of(resp) == 413 and time.monotonic() - t0 < 2,
         "Expect: 100-continue with Content-Length 10 MB -> 413 before the body is sent",
         resp[:60])
    # Chunked body over the cap.
    chunk = b"a" * 3000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    resp = raw(port, ("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nConnection: close\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n" % (TOKENS, key)).encode() + body)
    T.eq(status_of(resp), 413, "chunked body of 9000 bytes -> 413")
    # Far over the cap: drained up to 8 MiB past it, then 413 and the connection closes.
    # The client sees what it could send, which is what the server read plus what the
    # kernel holds: the client's send buffer (fixed small here) and the server socket's
    # receive buffer, which autotunes up to net.ipv4.tcp_rmem's maximum (32 MiB on some
    # machines: a fixed 4 MiB allowance failed there). The body is made larger than the
    # whole allowance, so a server that never stops reading cannot pass.
    sndbuf = 65536
    allowed = 4096 + (8 << 20) + tcp_rmem_max() + 2 * sndbuf
    total = max(64 << 20, allowed + (16 << 20))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Length: %d\r\n\r\n"
               % (TOKENS, key, total)).encode())
    sent, closed_after, answer = 0, None, b""
    block = b" " * 65536
    try:
        while sent < total:
            s.sendall(block)
            sent += len(block)
    except OSError:
        closed_after = sent
    try:
        s.settimeout(2)
        while True:
            d = s.recv(65536)
            if not d:
                break
            answer += d
    except OSError:
        pass
    s.close()
    T.ok(status_of(answer) == 413 or closed_after is not None,
         "a %d MiB body with max_body 4 KiB: 413 and the connection closed" % (total >> 20),
         "server stopped reading after %.1f MiB" % ((closed_after or sent) / 1048576))
    T.ok(closed_after is not None and closed_after <= allowed,
         "... after at most max_body + 8 MiB + the kernel's socket buffers (%.1f MiB) were sent"
         % (allowed / 1048576),
         "%.1f MiB sent" % ((closed_after or sent) / 1048576))
    # Bodies on routes that do not read them are dropped (bounded) and do not matter.
    st, _, _ = request(port, "GET", TOKENS, {"X-Auth-Token": key}, "x" * 3000)
    T.eq(st, 200, "GET with a 3000-byte body (ignored) -> 200")
    T.ok(healthy(port), "server still healthy after the oversized bodies")
    srv.stop()


# ---- headers and per-connection memory ----------------------------------------------

def test_header():
    srv = Server().start()
    port = srv.port
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    resp = raw(port, big)
    T.ok(status_of(resp) in (0, 400, 431), "a 64 KiB header -> 431, 400 or closed",
         resp.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"
    resp = raw(port, many)
    T.ok(status_of(resp) in (0, 400, 431), "5000 header lines -> 431, 400 or closed",
         resp.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
    long_url = b"GET /cockpit/v1/regions/fr-par/tokens?" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = raw(port, long_url)
    T.ok(status_of(resp) in (0, 400, 414, 431), "a 64 KiB request line -> 414, 431, 400 or closed",
         resp.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
    T.ok(healthy(port), "server keeps serving after oversized headers")
    srv.stop()


def test_memory():
    hdr6k = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: " + b"a" * 6000 + b"\r\n\r\n"
    # The default takes what deploy/nginx (32 KiB request line) and deploy/caddy
    # (36 KiB of headers) can forward to /auth/verify.
    hdr40k = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Original-URI: /"
              + b"a" * 40000 + b"\r\n\r\n")
    srv = Server().start()
    T.eq(status_of(raw(srv.port, hdr6k)), 200, "6 KiB header with the default 48 KiB connection memory -> 200")
    T.eq(status_of(raw(srv.port, hdr40k)), 200, "40 KB header with the default connection memory -> 200")
    srv.stop()
    srv = Server("--connection-memory", "4096").start()
    st = status_of(raw(srv.port, hdr6k))
    T.ok(st in (0, 400, 431), "... with --connection-memory 4096 -> 431/400/closed", str(st))
    T.ok(healthy(srv.port), "server with 4 KiB per connection still answers ordinary requests")
    srv.stop()


# ---- connection limit ------------------------------------------------------------------

def test_connlimit():
    srv = Server("--connection-limit", "32", "--connection-timeout", "3").start()
    port = srv.port
    held = []
    for _ in range(32):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=("127.0.0.3", 0)))
    time.sleep(0.3)
    alive = sum(is_open(s) for s in held)
    T.eq(alive, 32, "32 idle connections held with --connection-limit 32")
    t0 = time.monotonic()
    try:
        st = request(port, "GET", "/healthz", src="127.0.0.2", timeout=1.5)[0]
    except OSError as e:
        st = type(e).__name__
    T.ok(st != 200, "the 33rd connection is not served (refused, closed or left waiting)",
         "%s after %.2f s" % (st, time.monotonic() - t0))
    for s in held:
        s.close()
    time.sleep(0.3)
    T.ok(healthy(port, "127.0.0.2"), "once they close, new connections are served again")
    srv.stop()


# ---- timeouts ---------------------------------------------------------------------------

def test_timeout():
    srv = Server("--connection-timeout", "2").start()
    port = srv.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    partial = socket.create_connection(("127.0.0.1", port), timeout=5)
    partial.sendall(b"POST /cockpit/v1/regions/fr-par/tokens HTTP/1.1\r\nHost: x\r\nX-Au")
    body = socket.create_connection(("127.0.0.1", port), timeout=5)
    body.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Length: 1000\r\n\r\n{"
                  % (TOKENS, srv.key)).encode())
    ka = connection(port)
    ka.request("GET", "/healthz")
    ka.getresponse().read()
    results = {}

    def watch(name, s):
        results[name] = wait_closed(s, 6)

    ths = [threading.Thread(target=watch, args=a) for a in
           (("idle", idle), ("partial", partial), ("body", body), ("keepalive", ka.sock))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for name, what in (("idle", "a connection that never sends a byte"),
                       ("partial", "a client stalled in the middle of its headers"),
                       ("body", "a client stalled in the middle of its body"),
                       ("keepalive", "an idle keep-alive connection after a response")):
        d = results[name]
        T.ok(d is not None and 1.5 <= d <= 4.5, "--connection-timeout 2: %s is dropped" % what,
             "closed after %s s" % ("%.1f" % d if d is not None else "> 6"))
    T.ok(healthy(port), "server healthy after dropping them")
    srv.stop()


def test_slowloris():
    """A trickling client (one header byte per second) keeps resetting an idle
    timeout; what bounds it is the per-address connection limit."""
    srv = Server("--connection-timeout", "2", "--per-ip-connection-limit", "10").start()
    port = srv.port
    socks, refused = [], 0
    for _ in range(50):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=("127.0.0.1", 0))
            socks.append(s)
        except OSError:
            refused += 1
    stop = threading.Event()

    def trickle():
        msg = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
        i = 0
        while not stop.is_set() and i < len(msg):
            for s in socks:
                try:
                    s.send(msg[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(0.8)

    th = threading.Thread(target=trickle)
    th.start()
    time.sleep(3.2)  # longer than the timeout: trickling connections survive it
    alive = sum(is_open(s) for s in socks)
    T.ok(alive <= 10, "slowloris from 127.0.0.1 with 50 connections holds at most "
         "--per-ip-connection-limit 10 of them", "%d held" % alive)
    lat = []
    for _ in range(10):
        t0 = time.monotonic()
        st = request(port, "GET", "/healthz", src="127.0.0.2", timeout=5)[0]
        lat.append((time.monotonic() - t0) * 1000)
        if st != 200:
            break
    T.ok(st == 200 and max(lat) < 200, "127.0.0.2 is still served meanwhile",
         "healthz max %.1f ms" % max(lat))
    stop.set()
    th.join()
    T.note("trickling connections (a byte every 0.8 s) held after 3.2 s with "
           "--connection-timeout 2: %d (the timeout is an idle timeout; see docs/SECURITY.md)"
           % alive)
    for s in socks:
        s.close()
    srv.stop()


# ---- 2,000 idle connections ---------------------------------------------------------------

def test_idle2000(n=2000):
    # Connections that never send a byte are cut after --request-timeout too: hold both off.
    srv = Server("--connection-timeout", "60", "--request-timeout", "60").start()
    port = srv.port
    rss0 = srv.rss_kib()
    socks = []
    srcs = ["127.0.0.%d" % i for i in range(3, 7)]
    for i in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5,
                                              source_address=(srcs[i % len(srcs)], 0)))
    time.sleep(0.5)
    c = connection(port, "127.0.0.2")
    lat = []
    for _ in range(200):
        t0 = time.perf_counter()
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            break
    c.close()
    v = []
    cv = connection(port, "127.0.0.2")
    for _ in range(200):
        t0 = time.perf_counter()
        cv.request("GET", "/auth/verify", headers={"X-Token": "x" * 64})
        cv.getresponse().read()
        v.append((time.perf_counter() - t0) * 1000)
    cv.close()
    rss = srv.rss_kib()
    alive = sum(is_open(s) for s in socks)
    fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
    lat.sort()
    v.sort()
    p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    T.ok(alive == n and fds >= n, "%d concurrent idle connections are all accepted and held" % n,
         "%d open, the server has %d descriptors" % (alive, fds))
    T.ok(r.status == 200 and p99 < 50,
         "/healthz under %d idle connections answers quickly" % n,
         "p50 %.2f ms, p99 %.2f ms, max %.2f ms over 200 requests" % (p50, p99, lat[-1]))
    T.ok(v[len(v) // 2] < 20, "/auth/verify under %d idle connections" % n,
         "p50 %.2f ms, p99 %.2f ms" % (v[len(v) // 2], v[int(len(v) * 0.99) - 1]))
    T.ok(rss < 64 * 1024, "RSS bounded under %d idle connections (< 64 MiB)" % n,
         "%.1f MiB before, %.1f MiB with them: %.1f KiB per connection"
         % (rss0 / 1024, rss / 1024, (rss - rss0) / n))
    # The same connections each in the middle of a 4 KB header: their buffers are in use.
    for s in socks:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000)
    time.sleep(0.5)
    rss2 = srv.rss_kib()
    t0 = time.perf_counter()
    st = request(port, "GET", "/healthz", src="127.0.0.2")[0]
    ms = (time.perf_counter() - t0) * 1000
    T.ok(st == 200 and rss2 < 96 * 1024 and sum(is_open(s) for s in socks) == n,
         "... each holding 4 KB of unfinished headers: RSS still bounded (< 96 MiB)",
         "%.1f MiB, %.1f KiB per connection; /healthz %.2f ms"
         % (rss2 / 1024, (rss2 - rss0) / n, ms))
    for s in socks:
        s.close()
    time.sleep(0.3)
    T.ok(healthy(port), "server healthy after they close")
    # The default per-address limit (1024): one address cannot take every slot.
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.7", 0)) for _ in range(1100)]
    time.sleep(0.5)
    alive = sum(is_open(s) for s in socks)
    T.eq(alive, 1024, "default per_ip_connection_limit: 1100 connections from one address, "
         "1024 kept")
    T.ok(healthy(port, "127.0.0.2"), "... and another address is served")
    for s in socks:
        s.close()
    srv.stop()


# ---- argument caps -------------------------------------------------------------------------

def test_caps():
    srv = Server().start()
    port, key = srv.port, srv.key
    h = {"X-Auth-Token": key}

    def arg_error(st, data, name):
        j = jbody(data) or {}
        d = (j.get("details") or [{}])[0]
        return st == 400 and j.get("type") == "invalid_arguments" and d.get("argument_name") == name

    st, _, data = request(port, "GET", TOKENS + "?page_size=1001", h)
    T.ok(arg_error(st, data, "page_size"), "page_size=1001 -> 400 page_size", "%d %r" % (st, data[:100]))
    st, _, _ = request(port, "GET", TOKENS + "?page_size=1000", h)
    T.eq(st, 200, "page_size=1000 -> 200")
    st, _, data = request(port, "GET", TOKENS + "?page=0", h)
    T.ok(arg_error(st, data, "page"), "page=0 -> 400 page")
    st, _, data = request(port, "GET", TOKENS + "?page=99999999999999999999", h)
    T.ok(arg_error(st, data, "page"), "page=10^20 -> 400 page")
    qs = "&".join("token_scopes=read_only_logs" for _ in range(65))
    st, _, data = request(port, "GET", TOKENS + "?" + qs, h)
    T.ok(st == 400 and (jbody(data) or {}).get("type") == "invalid_arguments",
         "65 query arguments -> 400", "%d" % st)
    st, _, data = request(port, "GET", TOKENS + "?project_id=" + "a" * 300, h)
    T.ok(st == 400, "a 300-character query value -> 400", "%d" % st)

    def create(body):
        return request(port, "POST", TOKENS, dict(h, **{"Content-Type": "application/json"}),
                       json.dumps(body))

    st, _, data = create({"project_id": P1, "name": "n" * 51})
    T.ok(arg_error(st, data, "name"), "name of 51 characters -> 400 name")
    st, _, _ = create({"project_id": P1, "name": "n" * 50})
    T.eq(st, 200, "name of 50 characters -> 200")
    st, _, data = create({"project_id": P1, "name": "nn"})
    T.ok(arg_error(st, data, "name"), "name of 2 characters -> 400 name")
    st, _, data = create({"project_id": P1, "name": "n" * 100000})
    T.ok(st in (400, 413), "name of 100,000 characters -> 400 (or 413)", "%d" % st)
    st, _, data = create({"project_id": P1, "name": "abc", "token_scopes": ["read_only_logs"] * 65})
    T.ok(arg_error(st, data, "token_scopes"), "65 scope items -> 400 token_scopes")
    st, _, data = create({"project_id": P1, "name": "abc", "token_scopes": ["read_only_logs"] * 64})
    T.ok(st == 200 and jbody(data)["scopes"] == ["read_only_logs"],
         "64 scope items (duplicates) -> 200, deduplicated")
    st, _, data = create({"project_id": P1, "name": "abc", "token_scopes": ["r" * 65]})
    T.ok(arg_error(st, data, "token_scopes"), "a 65-byte scope item -> 400 token_scopes")
    st, _, data = create({"project_id": "1" * 300, "name": "abc"})
    T.ok(arg_error(st, data, "project_id"), "a 300-character project_id -> 400 project_id")
    st, _, data = request(port, "POST", TOKENS, dict(h, **{"Content-Type": "application/json"}),
                          "[" * 3000 + "]" * 3000)
    T.ok(st == 400, "3000 nested arrays -> 400", "%d" % st)
    long_id = "/cockpit/v1/regions/fr-par/tokens/" + "a" * 5000
    st, _, data = request(port, "GET", long_id, h)
    T.ok(st in (400, 404) and jbody(data) is not None, "a 5000-character token id -> 400/404 JSON", "%d" % st)
    long_region = "/cockpit/v1/regions/" + "r" * 5000 + "/tokens"
    st, _, data = request(port, "GET", long_region, h)
    T.ok(st in (400, 404) and jbody(data) is not None, "a 5000-character region -> 400/404 JSON", "%d" % st)
    T.ok(len(srv.key) == 36 and request(port, "GET", TOKENS, {"X-Auth-Token": "k" * 5000})[0] == 401,
         "a 5000-character X-Auth-Token -> 401")
    srv.stop()


TESTS = {"body": test_body, "header": test_header, "memory": test_memory,
         "connlimit": test_connlimit, "timeout": test_timeout, "slowloris": test_slowloris,
         "idle2000": test_idle2000, "caps": test_caps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", choices=sorted(TESTS))
    a = ap.parse_args()
    for name in a.only or TESTS:
        t0 = time.monotonic()
        print("# %s" % name, flush=True)
        TESTS[name]()
        print("#   (%.1f s)" % (time.monotonic() - t0), flush=True)
    return T.done()


if __name__ == "__main__":
    main_guard(main)
