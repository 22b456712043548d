#!/usr/bin/env bash
# Installs the Debian packages the project needs, only when some are missing.
# usage: scripts/deps.sh [run|demo|test]   (default: test, a superset of the others;
# demo = run + what `make demo` starts: nginx and Prometheus)
set -euo pipefail
profile=${1:-test}

run_pkgs=(gcc make meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev
          libsqlite3-dev libsodium-dev libpq-dev libcurl4-openssl-dev curl)
test_pkgs=(clang libclang-rt-14-dev libcmocka-dev nodejs npm chromium nginx nginx-dev libpcre2-dev
           zlib1g-dev libssl-dev caddy prometheus
           prometheus-alertmanager postgresql valgrind sqlite3 python3 wrk procps
           cppcheck clang-format git iproute2 binutils util-linux
           victoria-metrics syslog-ng-core syslog-ng-mod-http)

demo_pkgs=(nginx prometheus)

pkgs=("${run_pkgs[@]}")
case $profile in
run) ;;
demo) pkgs+=("${demo_pkgs[@]}") ;;
test) pkgs+=("${test_pkgs[@]}") ;;
*) echo "usage: $0 [run|demo|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    # Accept a command already on PATH for node/npm (some images ship them outside dpkg).
    case $p in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Several checkouts (or suites) may install at once: one at a time, the others wait.
if [ -z "${CT_DEPS_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    exec env CT_DEPS_LOCKED=1 flock /tmp/cockpit-tokens-deps.lock "$0" "$@"
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the packages' own services (nginx, postgresql, prometheus) from
# starting system-wide: the tests start their own instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$SUDO" ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
