#!/usr/bin/env python3
"""Half-sent and slow requests (docs/SECURITY.md, "Bounded resources"):

  * a flood of connections that send headers and part of a body, then close,
    from 12 loopback addresses (12 x 1,000) and again from 5 (5 x 840, more than
    the connection limit's share of 4 addresses): /healthz and /auth/verify from
    a fresh address answer (during the flood, as the machine allows; right after
    it, always), and no connection is left in CLOSE_WAIT;
  * clients that send part of their headers, or part of a body, and then say
    nothing more keep their connection no longer than request_timeout;
  * SIGTERM after all that stops the server at once, not after the grace period.

Only 127.0.0.0/8; bounded in time and count. Prints the figures."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import BIN, Checks, Server, main_guard, request  # noqa: E402

C = Checks("flood")
HALF = (b"POST /cockpit/v1/regions/fr-par/tokens HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"project_id\":")


def close_wait(port):
    out = subprocess.run(["ss", "-tanH", "state", "close-wait", "sport", "= :%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return len([l for l in out.splitlines() if l.strip()])


def established(port):
    out = subprocess.run(["ss", "-tanH", "state", "established", "sport", "= :%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return len([l for l in out.splitlines() if l.strip()])


# One flooding process (its own interpreter: the probes below must not wait for
# the flooders' GIL): per_address connections from each of its addresses, in turn.
FLOODER = r"""
import socket, sys
port, n, half = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
srcs = sys.argv[4:]
sent = 0
for i in range(n * len(srcs)):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.bind((srcs[i % len(srcs)], 0))
        s.connect(("127.0.0.1", port))
        s.sendall(half)
        sent += 1
    except OSError:
        pass
    finally:
        s.close()
print(sent)
"""


def probe(port, src="127.0.0.200", timeout=5):
    """(healthz status, verify status, seconds for both) from a fresh address. The
    timeout is generous (the machine may be busy): what fails is a lock-out, where
    the connection is never accepted at all."""
    t0 = time.monotonic()
    try:
        h = request(port, "GET", "/healthz", src=src, timeout=timeout)[0]
        v = request(port, "GET", "/auth/verify", {"X-Token": "x"}, src=src, timeout=timeout)[0]
    except OSError as e:
        return type(e).__name__, None, time.monotonic() - t0
    return h, v, time.monotonic() - t0


def flood(port, addresses, per_address, label):
    probes = []
    srcs = ["127.0.0.%d" % (2 + i) for i in range(addresses)]
    half = HALF.decode("latin-1").encode("unicode_escape").decode()
    procs = [subprocess.Popen([sys.executable, "-c", FLOODER, str(port), str(per_address), half]
                              + srcs[k::2], stdout=subprocess.PIPE, text=True) for k in range(2)]
    t0 = time.monotonic()
    while any(p.poll() is None for p in procs) and time.monotonic() - t0 < 120:
        probes.append(probe(port))
        time.sleep(0.1)
    sent = sum(int(p.communicate(timeout=60)[0] or 0) for p in procs)
    took = time.monotonic() - t0
    # During the flood a probe may wait behind thousands of connections in the
    # accept queue on a busy machine; what must never happen is a lock-out: once
    # the flood has been read, a fresh address is served and nothing is pinned.
    after = probe(port, timeout=10)
    C.ok(after[0] == 200 and after[1] == 401,
         "%s: right after the flood, /healthz and /auth/verify from a fresh address answer"
         % label, str(after))
    deadline, cw = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        cw = close_wait(port)
        if cw == 0:
            break
        time.sleep(0.2)
    C.eq(cw, 0, "%s: no connection left in CLOSE_WAIT" % label)
    answered = [p for p in probes if p[0] == 200 and p[1] == 401]
    C.note("%s: %d half-sent requests from %d addresses in %.2f s (%d not sent); %d of %d "
           "probes during the flood answered, slowest %.2f s; after it: %.2f s"
           % (label, sent, addresses, took, per_address * addresses - sent, len(answered),
              len(probes), max([p[2] for p in answered] or [0]), after[2]))
    return sent


def slow(port, timeout_s):
    """Connections that stop sending mid-headers or mid-body are closed in time."""
    socks = []
    for i in range(40):
        s = socket.socket()
        s.settimeout(timeout_s + 5)
        s.bind(("127.0.0.%d" % (30 + i % 4), 0))
        s.connect(("127.0.0.1", port))
        s.sendall(HALF if i % 2 else b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    t0 = time.monotonic()
    closed = 0
    for s in socks:
        try:
            while s.recv(4096):
                pass
            closed += 1
        except OSError:
            closed += 1
    took = time.monotonic() - t0
    for s in socks:
        s.close()
    C.eq(closed, len(socks), "every stalled request's connection was closed by the server")
    C.ok(took < timeout_s + 2, "stalled requests are closed within request_timeout (%d s)"
         % timeout_s, "%.1f s" % took)
    C.note("40 stalled requests (half headers / half bodies) closed after %.1f s" % took)


def main():
    timeout_s = 2
    help_text = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    # (A build without the option still runs, and shows what the checks are about.)
    extra = ["--request-timeout", str(timeout_s)] if "--request-timeout" in help_text else []
    s = Server("--access-log", "off", *extra).start()
    sent = flood(s.port, 12, 1000, "12 x 1000")
    sent += flood(s.port, 5, 840, "5 x 840")
    slow(s.port, timeout_s)
    st = request(s.port, "GET", "/metrics")[2].decode()
    for line in st.splitlines():
        if line.startswith("cockpit_tokens_http_requests_cut_total"):
            C.note(line)
    # Half-sent requests right before SIGTERM must not hold the stop for the grace period.
    for i in range(200):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(HALF)
        c.close()
    t0 = time.monotonic()
    s.stop()
    took = time.monotonic() - t0
    C.ok(took < 3, "SIGTERM right after 200 half-sent requests stops the server at once",
         "%.1f s" % took)
    C.eq(s.proc.returncode, 0, "it exits 0")
    C.note("half-sent flood survived: %d requests in total; stop took %.1f s" % (sent, took))
    return C.done()


if __name__ == "__main__":
    main_guard(main)
