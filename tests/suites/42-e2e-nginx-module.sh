#!/usr/bin/env bash
# The nginx module (src/nginx/): builds it for the installed nginx
# (scripts/nginx-module.sh), then the end-to-end scenario of tests/e2e/gateway.sh
# through it (deploy/nginx-module/ unchanged, two workers, the service publishing its
# shared index), then tests/e2e/module-stress.sh (tokens created and deleted while
# nginx workers decide). Bounded to 270 s in parts (about 60 s on an idle machine, most of it
# nginx's ./configure when run alone; `make test` starts that build in the background at
# its beginning, and the module is then built already).
set -uo pipefail
root=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
t0=$SECONDS
timeout -k 10 150 "$root/scripts/nginx-module.sh" "$root/build-nginx" >/dev/null ||
    { echo "FAIL e2e-nginx-module: building the module"; exit 1; }
echo "e2e-nginx-module: module built in $((SECONDS - t0)) s"
export CT_NGINX_MODULE=$root/build-nginx/ngx_http_cockpit_tokens_module.so

# make install-nginx-module: the module and its modules-available snippet, which nginx
# accepts (nginx -t on a configuration loading the installed copy).
dest=$(mktemp -d /tmp/ct-nginx-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
make -s -C "$root" install-nginx-module DESTDIR="$dest" prefix=/usr/local >/dev/null ||
    { echo "FAIL e2e-nginx-module: make install-nginx-module"; exit 1; }
so=$dest/usr/local/lib/nginx/modules/ngx_http_cockpit_tokens_module.so
snippet=$dest/usr/local/share/nginx/modules-available/mod-http-cockpit-tokens.conf
[ -f "$so" ] && [ "$(cat "$snippet" 2>/dev/null)" = "load_module /usr/local/lib/nginx/modules/ngx_http_cockpit_tokens_module.so;" ] ||
    { echo "FAIL e2e-nginx-module: installed files: $(find "$dest" -type f | tr '\n' ' ')"; exit 1; }
sed "s|/usr/local|$dest/usr/local|" "$snippet" >"$dest/nginx.conf"
printf 'events {}\nhttp { cockpit_tokens_index %s/index; server { listen 127.0.0.1:1; cockpit_tokens metrics; cockpit_tokens_region fr-par; } }\n' "$dest" >>"$dest/nginx.conf"
nginx -t -q -p "$dest/" -e "$dest/error.log" -c "$dest/nginx.conf" -g "pid $dest/nginx.pid;" 2>"$dest/t.log" ||
    { echo "FAIL e2e-nginx-module: nginx -t with the installed module: $(cat "$dest/t.log")"; exit 1; }
echo "PASS e2e-nginx-module: make install-nginx-module installs a module and snippet nginx -t accepts"
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
