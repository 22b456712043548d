#!/usr/bin/env bash
# Metrics (scraped by Debian's Prometheus), logs and request ids, graceful
# shutdown, make install. Bounded: about 30 s.
set -euo pipefail
cd "$1"
timeout 240 python3 tests/ops/ops.py
