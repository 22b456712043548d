#!/bin/sh
# Installs the OpenTelemetry exporter that tests/e2e/clients.mjs drives (npm, from
# package-lock.json), only when node_modules is missing or older than the lock file.
set -eu
cd "$(dirname -- "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] || [ package.json -nt node_modules ]; then
    npm ci --no-audit --no-fund >/dev/null
    touch node_modules
fi
