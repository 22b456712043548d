#!/usr/bin/env bash
# The `cockpit-tokens token` client (libcurl) against the real server on loopback.
set -euo pipefail
cd "$1"
exec timeout 90 bash tests/cli/cli.sh "$1"
