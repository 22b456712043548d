#!/usr/bin/env bash
# The `cockpit-tokens token` client (libcurl) against the real server on loopback.
set -euo pipefail
cd "$1"
exec timeout 150 bash tests/cli/cli.sh "$1"
