#!/usr/bin/env bash
# Hardening found by an outside attack (docs/SECURITY.md): half-sent and stalled
# requests (tests/hardening/flood.py), the SQLite database file: one server per
# file, removed or replaced under a server, no silent new database
# (tests/hardening/sqlite_file.py), log injection (tests/hardening/logs.py), HTTP
# strictness, aborted requests, half-close, secret hygiene, a full disk
# (tests/hardening/http_strict.py).
# Only 127.0.0.0/8. Bounded to 150 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 150 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
ulimit -n 8192 2>/dev/null || true
rc=0
for t in flood sqlite_file logs http_strict; do
    echo "# $t"
    python3 "$ROOT/tests/hardening/$t.py" || rc=1
done
exit $rc
