#!/usr/bin/env python3
"""Log injection (docs/SECURITY.md): a request whose method carries quotes, a
backslash, JSON that would forge keys and a terminal escape leaves one access-log
line that still parses, in both formats, with only the keys the server writes
and no control byte. Only 127.0.0.1."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ctlib import Checks, Server, main_guard  # noqa: E402

C = Checks("logs")
EVIL = b'G"ET\\\x1b[31m,"status":200,"access_key":"SCWFAKE","x":"'
KEYS = {"time", "level", "msg", "request_id", "method", "route", "status", "duration_us",
        "access_key", "client"}


def send_evil(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(EVIL + b" /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def request_lines(srv):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in srv.log()[srv.log_start:].splitlines() if "request" in l and
                 "healthz" in l and "405" in l]
        if lines:
            return lines
        time.sleep(0.1)
    return []


def parse_logfmt(line):
    """key=value pairs; quoted values with backslash escapes. None if malformed."""
    out, i = {}, 0
    while i < len(line):
        eq = line.find("=", i)
        if eq < 0:
            return None
        key = line[i:eq]
        i = eq + 1
        if i < len(line) and line[i] == '"':
            i += 1
            val = ""
            while i < len(line) and line[i] != '"':
                if line[i] == "\\":
                    i += 1
                val += line[i]
                i += 1
            if i >= len(line):
                return None
            i += 1
        else:
            j = line.find(" ", i)
            j = len(line) if j < 0 else j
            val = line[i:j]
            if '"' in val:
                return None
            i = j
        if key in out:
            return None
        out[key] = val
        if i < len(line):
            if line[i] != " ":
                return None
            i += 1
    return out


def main():
    for fmt in ("json", "logfmt"):
        srv = Server("--log-format", fmt, "--access-log", "all").start()
        send_evil(srv.port)
        lines = request_lines(srv)
        srv.stop()
        C.eq(len(lines), 1, "%s: the request is one log line" % fmt)
        line = lines[0] if lines else ""
        clean = all(0x20 <= ord(ch) < 0x7f for ch in line)
        C.ok(clean, "%s: no control byte in the line" % fmt, "" if clean else repr(line[:200]))
        doc = None
        if fmt == "json":
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
        else:
            doc = parse_logfmt(line)
        C.ok(doc is not None, "%s: the line parses" % fmt, "" if doc else repr(line[:300]))
        doc = doc or {}
        C.ok(set(doc) == KEYS, "%s: only the server's own keys" % fmt,
             str(sorted(set(doc) ^ KEYS)))
        C.ok(doc.get("access_key") == "-" and str(doc.get("status")) == "405",
             "%s: status and access_key are the server's, not the client's" % fmt,
             "%r %r" % (doc.get("status"), doc.get("access_key")))
    return C.done()


if __name__ == "__main__":
    main_guard(main)
