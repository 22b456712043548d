#!/usr/bin/env bash
# Runs tests/fuzz/http_fuzz.py against an ASan+UBSan server: build-asan's when it
# exists (make test builds it), else the one in build-fuzz.
#   tests/fuzz/http_fuzz.sh REPO_ROOT SECONDS
set -euo pipefail
ROOT=$(cd "${1:?usage: $0 REPO_ROOT SECONDS}" && pwd)
SECS=${2:?seconds}
BIN=${CT_ASAN_BIN:-$ROOT/build-asan/cockpit-tokens}
if [ ! -x "$BIN" ]; then
    [ -f "$ROOT/build-fuzz/build.ninja" ] || (cd "$ROOT" && CC=clang meson setup build-fuzz \
        --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null)
    ninja -C "$ROOT/build-fuzz" cockpit-tokens >/dev/null
    BIN=$ROOT/build-fuzz/cockpit-tokens
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
echo "# HTTP front, mutated requests for $SECS s ($BIN)"
exec python3 "$ROOT/tests/fuzz/http_fuzz.py" --bin "$BIN" --seconds "$SECS"
