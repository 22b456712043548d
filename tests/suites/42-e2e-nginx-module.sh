#!/usr/bin/env bash
# The nginx module (src/nginx/): builds it for the installed nginx
# (scripts/nginx-module.sh), then the end-to-end scenario of tests/e2e/gateway.sh
# through it (deploy/nginx-module/ unchanged, two workers, the service publishing its
# shared index), then tests/e2e/module-stress.sh (tokens created and deleted while
# nginx workers decide). Bounded to 270 s in parts (about 60 s on an idle machine, most of it
# nginx's ./configure).
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
t0=$SECONDS
timeout -k 10 150 "$root/scripts/nginx-module.sh" "$root/build-nginx" >/dev/null ||
    { echo "FAIL e2e-nginx-module: building the module"; exit 1; }
echo "e2e-nginx-module: module built in $((SECONDS - t0)) s"
export CT_NGINX_MODULE=$root/build-nginx/ngx_http_cockpit_tokens_module.so
rc=0
timeout -k 10 60 bash "$root/tests/e2e/gateway.sh" nginx-module "$root" || rc=$?
case $rc in
124 | 137) echo "FAIL e2e-nginx-module: scenario timeout (60 s)" ;;
esac
if [ $rc -eq 0 ] && [ -f "$root/tests/e2e/module-stress.sh" ]; then
    timeout -k 10 60 bash "$root/tests/e2e/module-stress.sh" "$root" || rc=$?
    case $rc in
    124 | 137) echo "FAIL e2e-nginx-module: stress timeout (60 s)" ;;
    esac
fi
exit $rc
