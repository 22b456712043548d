#!/usr/bin/env bash
# End-to-end through caddy (deploy/caddy/, unchanged) in front of real Prometheus and
# Alertmanager and a recording upstream: tests/e2e/gateway.sh. Bounded to 60 s.
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
timeout -k 10 60 bash "$root/tests/e2e/gateway.sh" caddy "$root"
rc=$?
case $rc in
124 | 137) echo "FAIL e2e-caddy: global timeout (60 s)" ;;
esac
exit $rc
