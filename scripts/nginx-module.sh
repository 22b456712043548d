#!/usr/bin/env bash
# Builds the nginx module (src/nginx/) for the installed nginx, from the sources and
# exact configure flags Debian's nginx-dev ships in /usr/share/nginx/src.
#   usage: scripts/nginx-module.sh [OUT_DIR]   (default: build-nginx)
# Writes OUT_DIR/ngx_http_cockpit_tokens_module.so. Configures once per nginx version
# and module build description; later runs only recompile what changed. Concurrent
# runs on one OUT_DIR wait for each other.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-nginx}
ngx_src=/usr/share/nginx/src
name=ngx_http_cockpit_tokens_module
if [ ! -f "$ngx_src/conf_flags" ]; then
    echo "nginx-module: $ngx_src is missing: install nginx-dev (scripts/deps.sh test)" >&2
    exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# One build at a time in OUT_DIR: `make test` starts one early, in the background, and
# 42-e2e-nginx-module's own call waits here for it, then finds the module built.
exec 9>"$out/.lock"
flock 9
stamp="$(nginx -v 2>&1) $(cksum <"$root/src/nginx/config") $root"
if [ ! -f "$out/nginx/objs/Makefile" ] || [ "$(cat "$out/configured" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out/nginx" "$out/configured"
    cp -a "$ngx_src/." "$out/nginx/"
    (
        cd "$out/nginx"
        # shellcheck disable=SC1091
        . ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$root/src/nginx" \
            >"$out/configure.log" 2>&1
    ) || { tail -n 20 "$out/configure.log" >&2; echo "nginx-module: configure failed" >&2; exit 1; }
    echo "$stamp" >"$out/configured"
fi
make -s -C "$out/nginx" -f objs/Makefile -j"$(nproc)" modules >"$out/make.log" 2>&1 ||
    { cat "$out/make.log" >&2; echo "nginx-module: compile failed" >&2; exit 1; }
cp "$out/nginx/objs/$name.so" "$out/$name.so.tmp"
mv "$out/$name.so.tmp" "$out/$name.so"
echo "$out/$name.so"
