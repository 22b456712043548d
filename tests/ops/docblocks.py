#!/usr/bin/env python3
"""Extracts a document's shell blocks, as written, for a suite to run.

usage: docblocks.py FILE HEADING OUTDIR [--map FROM TO]... [--lang sh]

Writes the ```sh blocks found under the Markdown heading HEADING (a whole line, e.g.
"### SQLite"; the section ends at the next heading of the same or a higher level) to
OUTDIR/1.sh, 2.sh, ... in order, and prints how many. Each --map replaces a literal

string (paths such as /etc/cockpit-tokens, fixed ports) so that the commands run in a
temporary directory: the only changes made to what the document says. Exit 1 when the
heading or its blocks are missing, so that a renamed section fails the suite instead
of silently running nothing.
"""
import os
import sys


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, heading, outdir = argv[1], argv[2], argv[3]
    maps, lang = [], "sh"
    i = 4
    while i < len(argv):
        if argv[i] == "--map" and i + 2 < len(argv):
            maps.append((argv[i + 1], argv[i + 2]))
            i += 3
        elif argv[i] == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
            i += 2
        else:
            print(f"docblocks: bad argument {argv[i]!r}", file=sys.stderr)
            return 2
    level = len(heading) - len(heading.lstrip("#"))
    lines = open(path, encoding="utf-8").read().splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        print(f"docblocks: {path} has no heading {heading!r}", file=sys.stderr)
        return 1
    blocks, cur, keep = [], None, False
    for line in lines[start + 1:]:
        if cur is None:
            lv = len(line) - len(line.lstrip("#"))
            if lv and line[lv:lv + 1] == " " and lv <= level:
                break  # the next section
            if line.strip().startswith("```"):
                keep = line.strip()[3:].strip() == lang
                cur = []
            continue
        if line.strip() == "```":
            if keep:
                blocks.append("\n".join(cur) + "\n")
            cur = None
            continue
        cur.append(line)
    if not blocks:
        print(f"docblocks: no ```{lang} block under {heading!r} in {path}", file=sys.stderr)
        return 1
    os.makedirs(outdir, exist_ok=True)
    for n, text in enumerate(blocks, 1):
        for a, b in maps:
            text = text.replace(a, b)
        with open(os.path.join(outdir, f"{n}.sh"), "w", encoding="utf-8") as f:
            f.write(text)
    print(len(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
