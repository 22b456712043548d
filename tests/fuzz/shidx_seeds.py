"""Writes the seed corpus of fuzz_shidx (tests/fuzz/corpus/fuzz_shidx/) in its input
layout (see fuzz_shidx.c): tables as service/shidx.h lays them out, valid and damaged.
Regenerate after a change of the file format: python3 tests/fuzz/shidx_seeds.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_shidx")
N_SLOTS, SLOT, HEADER = 1024, 96, 4096
LIVE, TOMB = 1, 2


def header(n_slots=N_SLOTS, regions=(b"fr-par", b"nl-ams"), retired=0, failed=0, magic=b"CTSHIDX\n",
           version=1, file_size=None, down=0, max_stale=0):
    fs = HEADER + n_slots * SLOT if file_size is None else file_size
    h = magic + struct.pack("<IIII", version, HEADER, SLOT, 0)
    h += struct.pack("<QQqqq", n_slots, fs, 1000000, down, max_stale)
    h += struct.pack("<IIIIiIQ", retired, failed, len(regions), 3, 4242, 0, 7)
    for r in regions:
        h += r.ljust(33, b"\0")
    return h


def home(hsh, mask=N_SLOTS - 1):
    v = struct.unpack("<Q", hsh[:8])[0]
    v ^= v >> 29
    return ((v * 0x9E3779B97F4A7C15) % (1 << 64) >> 17) & mask


def slot(hsh, state=LIVE, region=0, scopes=0x1FF, seq=2):
    tid = bytes(range(16))
    pid = bytes(range(16, 32))
    w9 = state | region << 8 | scopes << 32
    return struct.pack("<Q", seq) + hsh + tid + pid + struct.pack("<QQQ", w9, 0, 0)


def entry(hsh, **kw):
    return struct.pack("<H", home(hsh)) + slot(hsh, **kw)


def seed(name, hdr, records, cut=None):
    flags = 0 if cut is None else 1
    data = bytes([flags]) + struct.pack("<I", cut or 0) + struct.pack("<H", len(hdr)) + hdr
    data += b"".join(records)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    hs = [bytes([i] * 32) for i in (1, 2, 3, 4)]
    live = [entry(hs[0]), entry(hs[1], region=1), entry(hs[2], state=TOMB)]
    seed("valid", header(), live)
    seed("truncated", header(), live, cut=HEADER + 100 * SLOT)
    seed("header-only", header(), live, cut=HEADER)
    seed("bad-magic", header(magic=b"CTSHIDY\n"), live)
    seed("bad-version", header(version=2), live)
    seed("size-mismatch", header(file_size=HEADER + 512 * SLOT), live)
    seed("slots-not-pow2", header(n_slots=1000), live)
    seed("bad-state", header(), [entry(hs[0], state=9)])
    seed("bad-region", header(), [entry(hs[0], region=5)])
    seed("mid-write", header(), [entry(hs[0], seq=3)])
    seed("retired", header(retired=1), live)
    seed("failed", header(failed=1), live)
    seed("store-down", header(down=1, max_stale=1), live)
    seed("no-regions", header(regions=()), live)


main()
