#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz: clang, ASan+UBSan, -Dfuzz=true) and
# runs each for SECONDS, starting from its committed seed corpus
# (tests/fuzz/corpus/<target>/) and replaying every regression input
# (tests/fuzz/regressions/<target>/) first.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]      (default: every target built)
#
# New corpus entries go to a scratch directory (FUZZ_WORK, default a temp dir
# removed at the end): the committed corpus is only read. A crash leaves its
# input in FUZZ_ARTIFACTS (default build-fuzz/artifacts/) and fails the run.
# Prints one summary line per target: executions, exec/s, coverage, corpus size.
# FUZZ_JOBS targets run at once (default: the number of cores).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_PER=${1:?usage: $0 SECONDS [TARGET...]}
shift
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
ART=${FUZZ_ARTIFACTS:-$BUILD/artifacts}

if [ ! -f "$BUILD/build.ninja" ]; then
    (cd "$ROOT" && CC=clang meson setup "$BUILD" --buildtype=debugoptimized -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null) || exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for c in "$ROOT"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$c" .c)"); done
fi
outputs=("${targets[@]/#/tests/fuzz/}")
ninja -C "$BUILD" "${outputs[@]}" >/dev/null || { ninja -C "$BUILD" "${outputs[@]}" | tail -20; exit 1; }

WORK=${FUZZ_WORK:-}
own_work=0
if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/ct-fuzz.XXXXXX); own_work=1; fi
trap '[ $own_work = 1 ] && rm -rf "$WORK"' EXIT
mkdir -p "$ART"
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# fuzz_one TARGET: replays its regression inputs, then fuzzes it; writes one summary
# line to WORK/TARGET.sum, and exits non-zero on a failure.
fuzz_one() {
    local t=$1 exe=$BUILD/tests/fuzz/$1 log=$WORK/$1.log sum=$WORK/$1.sum
    [ -x "$exe" ] || { echo "$t: not built" >"$sum"; return 1; }
    # 1. Regression inputs: each must run clean.
    local reg=$ROOT/tests/fuzz/regressions/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        if ! "$exe" "$reg"/* >"$log" 2>&1; then
            { echo "$t: a regression input fails again:"; tail -30 "$log"; } >"$sum"
            return 1
        fi
    fi
    # 2. Fuzz from the seeds for SECONDS.
    mkdir -p "$WORK/corpus-$t"
    "$exe" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$ART/$t-" \
        "$WORK/corpus-$t" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1
    local rc=$? execs rate cov corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    if [ $rc -ne 0 ]; then
        { echo "$t: FAILED (exit $rc) after ${execs:-?} executions; input saved under $ART/"
          grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -10; } >"$sum"
        return 1
    fi
    printf '%-22s %10s execs %8s exec/s  cov %5s  corpus %4s  (%s s)\n' "$t" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${corp:-?}" "$SECONDS_PER" >"$sum"
}

# FUZZ_JOBS targets at a time (default: one per core): each target still gets its
# SECONDS of one core, the run takes a fraction of the wall time. Summaries are
# printed in target order once all are done.
jobs_max=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    (fuzz_one "$t"; echo $? >"$WORK/$t.rc") &
done
wait
failed=()
for t in "${targets[@]}"; do
    cat "$WORK/$t.sum"
    [ "$(cat "$WORK/$t.rc" 2>/dev/null)" = 0 ] || failed+=("$t")
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failed: ${failed[*]}"; exit 1; }
