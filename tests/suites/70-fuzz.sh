#!/usr/bin/env bash
# libFuzzer targets for every parser that sees client bytes (tests/fuzz/), built
# in build-fuzz (clang, ASan+UBSan, -Dfuzz=true): regression inputs replayed,
# then each target fuzzed for FUZZ_SECONDS (default 3; `make fuzz` runs longer)
# from its committed seed corpus. Bounded to 240 s.
set -euo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 240 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
exec "$ROOT/tests/fuzz/run.sh" "${FUZZ_SECONDS:-3}"
