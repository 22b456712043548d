#!/usr/bin/env bash
# The web console in headless Chromium (playwright-core) with axe-core on every screen;
# screenshots (desktop and 375 px, light and dark) in build/console-test/. Also: the
# console's settings are checked at start-up like every other.
set -euo pipefail
cd "$1"
bin=build/cockpit-tokens
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
refused() { # refused TEXT ARGS...: serve exits 2 with one line containing TEXT
    local want=$1 rc=0
    shift
    "$bin" serve --db "sqlite:$tmp/never.db" "$@" >"$tmp/out" 2>&1 || rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <"$tmp/out")" -ne 1 ] || ! grep -qF -- "$want" "$tmp/out"; then
        echo "console: FAIL: serve $* -> exit $rc: $(cat "$tmp/out")" >&2
        failures=$((failures + 1))
    fi
}
refused 'console: "maybe" is not on or off' --console maybe
refused 'console_gateway_url: "ftp://gw" is not an http:// or https:// URL' --console-gateway-url ftp://gw
refused 'console_gateway_url' --console-gateway-url 'https://gw/"><script>'
[ ! -e "$tmp/never.db" ] || { echo "console: FAIL: a refused configuration opened the database" >&2; failures=$((failures + 1)); }
[ "$failures" -eq 0 ] || exit 1

command -v chromium >/dev/null || { echo "console: chromium is missing (scripts/deps.sh test installs it)" >&2; exit 1; }
CT_TEST_REPORTER=${CT_TEST_REPORTER:-dot} tests/console/run.sh
