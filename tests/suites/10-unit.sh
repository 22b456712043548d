#!/usr/bin/env bash
# cmocka unit and store-contract suites (SQLite), plain and under ASan+UBSan.
set -euo pipefail
cd "$1"
meson test -C build --print-errorlogs --no-rebuild
meson test -C build-asan --print-errorlogs --no-rebuild
