#!/usr/bin/env bash
# Fuzzing. (1) libFuzzer targets for every parser that sees client bytes
# (tests/fuzz/fuzz_*.c), built in build-fuzz (clang, ASan+UBSan, -Dfuzz=true):
# regression inputs replayed, then each target fuzzed for FUZZ_SECONDS (default 3)
# from its committed seed corpus. (2) The whole HTTP front over the network with
# mutated requests against the ASan+UBSan server (tests/fuzz/http_fuzz.py,
# HTTP_FUZZ_SECONDS, default 6). `make fuzz` runs both longer. Bounded to 240 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 240 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
rc=0
"$ROOT/tests/fuzz/run.sh" "${FUZZ_SECONDS:-3}" || rc=1
bash "$ROOT/tests/fuzz/http_fuzz.sh" "$ROOT" "${HTTP_FUZZ_SECONDS:-6}" || rc=1
exit $rc
