#!/usr/bin/env bash
# End-to-end through nginx (deploy/nginx/, unchanged) in front of real Prometheus and
# Alertmanager, a recording upstream and the real clients of tests/e2e/clients.sh:
# tests/e2e/gateway.sh. Bounded to 150 s (about 25 s on an idle machine).
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
timeout -k 10 120 "$root/tests/e2e/otel/install.sh" || { echo "FAIL e2e-nginx: npm ci in tests/e2e/otel"; exit 1; }
timeout -k 10 150 bash "$root/tests/e2e/gateway.sh" nginx "$root"
rc=$?
case $rc in
124 | 137) echo "FAIL e2e-nginx: global timeout (150 s)" ;;
esac
exit $rc
