#!/bin/sh
# Runs the black-box API suites (raw HTTP + official JS SDK) against the real binary.
#   CT_BIN=/path/to/cockpit-tokens     (default: <repo>/build/cockpit-tokens)
#   CT_TEST_DB_URI=postgres://...      (optional: a shared database instead of a fresh sqlite file)
# Extra arguments go to `node --test` (e.g. --test-name-pattern=list).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
# A relative CT_BIN means relative to the caller's directory.
if [ -n "${CT_BIN:-}" ]; then
    case $CT_BIN in /*) ;; *) CT_BIN="$PWD/$CT_BIN" ;; esac
    export CT_BIN
fi
cd "$here"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] || [ package.json -nt node_modules ]; then
    npm ci --no-audit --no-fund
    touch node_modules
fi

bin=${CT_BIN:-"$here/../../build/cockpit-tokens"}
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is not an executable; build it first (make build) or set CT_BIN" >&2
    exit 2
fi

# Each file starts its own server on its own port and database: two files may run at once.
set +e
node --test --test-concurrency=2 --test-reporter="${CT_TEST_REPORTER:-spec}" "$@" ./*.test.mjs
rc=$?
exit $rc
