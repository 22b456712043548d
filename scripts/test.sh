#!/usr/bin/env bash
# `make test`: installs what is missing, builds (plain and ASan+UBSan), and runs
# every suite. Exit code 0 only when all pass. Each suite starts and stops the
# servers it needs on loopback.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh test || { echo "test: dependency installation failed" >&2; exit 1; }

failed=()
passed=()
suite() { # suite NAME COMMAND...
    local name=$1; shift
    local t0=$SECONDS
    echo "=== $name"
    if "$@"; then passed+=("$name"); echo "--- $name: ok ($((SECONDS - t0)) s)"
    else failed+=("$name"); echo "--- $name: FAILED ($((SECONDS - t0)) s)"; fi
}

# Warnings are errors here (both compilers), also in a build directory made
# before: `meson configure` turns it on there, and changes nothing when it is on.
build() {
    [ -f build/build.ninja ] || meson setup build --buildtype=release -Doptimization=2 \
        -Dwerror=true >/dev/null
    meson configure build -Dwerror=true >/dev/null
    ninja -C build >/dev/null
}
build_asan() {
    [ -f build-asan/build.ninja ] || CC=clang meson setup build-asan --buildtype=debug \
        -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >/dev/null
    meson configure build-asan -Dwerror=true >/dev/null
    ninja -C build-asan >/dev/null
}
suite build build || { echo "build failed"; exit 1; }
suite build-asan build_asan

# The nginx module's build is mostly nginx's ./configure: one core for about 35 s. Started
# now, it runs beside the first suites; 42-e2e-nginx-module's own build waits for it
# (scripts/nginx-module.sh takes a lock) and then finds the module built. A failure here
# is reported by that suite, which builds again.
prebuild=
if [ -f /usr/share/nginx/src/conf_flags ]; then
    mkdir -p build-nginx
    scripts/nginx-module.sh build-nginx >build-nginx/prebuild.log 2>&1 &
    prebuild=$!
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

for t in tests/suites/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    suite "$name" bash "$t" "$root"
done

[ -z "$prebuild" ] || wait "$prebuild" 2>/dev/null
echo
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
echo "${#passed[@]} passed, 0 failed"
