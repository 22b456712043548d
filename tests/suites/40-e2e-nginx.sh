#!/usr/bin/env bash
# End-to-end through nginx (deploy/nginx/, unchanged) in front of real Prometheus and
# Alertmanager and a recording upstream: tests/e2e/gateway.sh. Bounded to 90 s.
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
timeout -k 10 90 bash "$root/tests/e2e/gateway.sh" nginx "$root"
rc=$?
case $rc in
124 | 137) echo "FAIL e2e-nginx: global timeout (90 s)" ;;
esac
exit $rc
