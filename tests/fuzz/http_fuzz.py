#!/usr/bin/env python3
"""Mutation fuzzing of the whole HTTP front, over the network: seed requests for
every route (create bodies, list arguments, verify headers in all forms, chunked
and Expect: 100-continue uploads, pipelining) are mutated (byte flips, inserted
and deleted ranges, duplicated lines, huge numbers, percent escapes, truncation)
and sent to the real server (the ASan+UBSan build), several connections at once.
The server must keep answering /healthz, never answer 500, and exit cleanly on
SIGTERM with no sanitizer report in its log.

Usage: http_fuzz.py --bin BUILD/cockpit-tokens [--seconds 8] [--seed N]
Loopback only; every socket has a timeout; the run stops by itself."""
import argparse
import base64
import json
import os
import random
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ctlib  # noqa: E402
from ctlib import P1, Server, create_token, jbody, request  # noqa: E402


def seeds(key, tok):
    sec, tid = tok["secret_key"], tok["id"]
    body = json.dumps({"project_id": P1, "name": "fuzz-token", "token_scopes": ["read_only_logs"]})
    basic = base64.b64encode(b"u:" + sec.encode()).decode()
    R = "/cockpit/v1/regions/fr-par/tokens"

    def req(method, path, headers=(), body=""):
        h = "".join("%s: %s\r\n" % kv for kv in headers)
        if body:
            h += "Content-Length: %d\r\n" % len(body)
        # Connection: close, so that a complete answer ends the exchange at once.
        return ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n%s"
                % (method, path, h, body)).encode()

    v = [("X-Cockpit-Scope", "read_only_metrics"), ("X-Cockpit-Region", "fr-par")]
    out = [
        req("POST", R, [("X-Auth-Token", key), ("Content-Type", "application/json")], body),
        req("GET", R + "?page=1&page_size=5&order_by=name_desc&token_scopes=read_only_logs"
            "&token_scopes=write_only_metrics&project_id=" + P1, [("X-Auth-Token", key)]),
        req("GET", R + "/" + tid, [("X-Auth-Token", key)]),
        req("DELETE", R + "/" + "0" * 8 + tid[8:], [("X-Auth-Token", key)]),
        req("GET", "/auth/verify", v + [("X-Token", sec)]),
        req("GET", "/auth/verify", v + [("Authorization", "Bearer " + sec)]),
        req("GET", "/auth/verify", v + [("Authorization", "Basic " + basic)]),
        req("GET", "/auth/verify", [("X-Scope-OrgID", sec), ("X-Cockpit-Data-Source", "metrics"),
                                    ("X-Original-URI", "/prometheus/api/v1/query_range?q=up"),
                                    ("X-Original-Method", "GET"), ("X-Cockpit-Region", "fr-par")]),
        req("POST", "/auth/verify", [("X-Token", sec), ("X-Cockpit-Data-Source", "logs"),
                                     ("X-Original-URI", "/loki/api/v1/push")], "ignored body"),
        req("GET", "/metrics"), req("HEAD", "/healthz"),
        req("GET", "/healthz", [("X-Request-Id", "abc-123_x.y")]),
        ("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
         "10\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (R, key, body[:16], len(body) - 16, body[16:])).encode(),
        ("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: %s\r\nExpect: 100-continue\r\n"
         "Content-Length: %d\r\n\r\n%s" % (R, key, len(body), body)).encode(),
        req("GET", "/healthz") + req("GET", "/auth/verify", v + [("X-Token", sec)]) + req("GET", "/metrics"),
        req("PATCH", R, [("X-Auth-Token", key)], "{}"),
        req("POST", R, [("X-Auth-Token", key)], body[:-1] + " " * 4100 + "}"),
        req("GET", R + "?" + "&".join("token_scopes=read_only_logs" for _ in range(70)),
            [("X-Auth-Token", key)]),
    ]
    return out


INTERESTING = [b"\r\n", b"\x00", b"%00", b"%2e%2e", b"%2F", b"/../", b"//", b"\xff\xfe",
               b"99999999999999999999", b"-1", b"0", b"4294967296", b" ", b"\t", b":", b",",
               b"{", b"}", b"[", b"\"", b"\\u0000", b"=", b"&", b"?", b"#", b"Basic ", b"Bearer ",
               b"X-Token: ", b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n",
               b"a" * 300, b"%", b"\xc3\xa9", b"\x1b[2J"]


def mutate(rnd, data):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            b[pos:pos] = rnd.choice(INTERESTING)
        elif op == 2 and b:
            del b[pos:pos + rnd.randint(1, 16)]
        elif op == 3:
            lines = bytes(b).split(b"\r\n")
            i = rnd.randrange(len(lines))
            lines.insert(i, lines[i])
            b = bytearray(b"\r\n".join(lines))
        elif op == 4:
            b = bytearray(re.sub(rb"\d+", lambda m: rnd.choice(
                [b"0", b"1", b"65536", b"18446744073709551616", m.group(0) * 3]), bytes(b), count=1))
        elif op == 5:
            b[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif op == 6 and len(b) > 4:
            b = b[:rnd.randrange(len(b))]
    return bytes(b)


def worker(port, corpus, rnd, deadline, stats, lock):
    while time.monotonic() < deadline:
        data = mutate(rnd, rnd.choice(corpus))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
        except OSError:
            with lock:
                stats["connect_fail"] += 1
            time.sleep(0.05)
            continue
        got = b""
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR) if rnd.random() < 0.5 else None
            while len(got) < 65536:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
        finally:
            s.close()
        codes = re.findall(rb"HTTP/1\.[01] (\d{3})", got)
        with lock:
            stats["sent"] += 1
            for c in codes:
                stats["status"][int(c)] = stats["status"].get(int(c), 0) + 1
                if int(c) == 500 and len(stats["found_500"]) < 5:
                    stats["found_500"].append(data[:300])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    ctlib.BIN = a.bin
    srv = Server("--max-body", "4096", "--connection-timeout", "1", "--auth-fail-limit", "0",
                 "--log-level", "debug", "--access-log", "all", "--workers", "2").start()
    st, _, data = create_token(srv.port, srv.key)
    tok = jbody(data)
    corpus = seeds(srv.key, tok)
    stats = {"sent": 0, "connect_fail": 0, "status": {}, "found_500": []}
    lock = threading.Lock()
    deadline = time.monotonic() + a.seconds
    ths = [threading.Thread(target=worker, args=(srv.port, corpus, random.Random(seed + i),
                                                 deadline, stats, lock))
           for i in range(a.threads)]
    for t in ths:
        t.start()
    health_fail = 0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            health_fail += request(srv.port, "GET", "/healthz", src="127.0.0.2", timeout=3)[0] != 200
        except OSError:
            health_fail += 1
    for t in ths:
        t.join()
    alive = srv.proc.poll() is None
    srv.stop()
    log = srv.log()
    sanitizer = re.findall(r"(ERROR: AddressSanitizer.*|runtime error.*|LeakSanitizer.*)", log)
    print("http fuzz: %d mutated requests in %.0f s (seed %d), answers %s"
          % (stats["sent"], a.seconds, seed, dict(sorted(stats["status"].items()))))
    ok = True
    for cond, what in ((alive, "server alive until SIGTERM"),
                       (srv.proc.returncode == 0, "clean exit on SIGTERM (exit %s)" % srv.proc.returncode),
                       (not sanitizer, "no sanitizer report in the log"),
                       (health_fail == 0, "/healthz answered 200 throughout (%d misses)" % health_fail),
                       (not stats["found_500"], "no 500 answer")):
        print("%s - %s" % ("ok  " if cond else "FAIL", what))
        ok &= cond
    for s in sanitizer[:5]:
        print("    " + s)
    for d in stats["found_500"]:
        print("    500 for: %r" % d)
    if not ok:
        print("    server log tail:\n" + "\n".join(log.splitlines()[-30:]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
