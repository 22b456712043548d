#!/bin/sh
# Runs the web console's browser tests: playwright-core drives Debian's chromium headless
# against the real binary.
#   CT_BIN=/path/to/cockpit-tokens   (default: <repo>/build/cockpit-tokens)
#   CT_CONSOLE_OUT=DIR               screenshots (default: <repo>/build/console-test)
#   CT_CHROMIUM=/path/to/chromium    (default: /usr/bin/chromium)
# Extra arguments go to `node --test` (e.g. --test-name-pattern=sort).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
if [ -n "${CT_BIN:-}" ]; then
    case $CT_BIN in /*) ;; *) CT_BIN="$PWD/$CT_BIN" ;; esac
    export CT_BIN
fi
cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] || [ package.json -nt node_modules ]; then
    npm ci --no-audit --no-fund
    touch node_modules
fi
node --test --test-reporter="${CT_TEST_REPORTER:-spec}" "$@" ./*.test.mjs
