#!/usr/bin/env bash
# Resource bounds (tests/bounds/bounds.py: body, header and per-connection memory
# caps, connection and per-address limits, idle and slow-client timeouts, 2,000
# idle connections, argument caps) and abuse control (tests/bounds/abuse.py:
# failed-auth throttling, per-project quota), against the real server on
# 127.0.0.0/8. Bounded to 150 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 150 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
ulimit -n 8192 2>/dev/null || true # 2,000 client sockets + 1,100 more in this process
rc=0
python3 "$ROOT/tests/bounds/bounds.py" || rc=1
python3 "$ROOT/tests/bounds/abuse.py" || rc=1
exit $rc
