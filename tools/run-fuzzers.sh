#!/bin/sh
# tools/run-fuzzers.sh BUILD_DIR SECONDS
#
# Runs every libFuzzer target BUILD_DIR/tests/fuzz/fuzz_* for SECONDS each
# (-max_total_time). Each target starts from its seed corpus
# tests/fuzz/corpus/<name without fuzz_>, copied into a temporary directory:
# nothing is ever written into the repository (new inputs, crash files and
# logs all stay in the temporary directory, which is removed at the end
# unless a target crashed, in which case it is kept and printed).
#
# Prints one line per target with the number of executions (libFuzzer's
# final stat::number_of_executed_units, from -print_final_stats=1) and exits
# non-zero if any target crashed, leaked, timed out or could not run.
#
# Build the targets first, e.g.:
#   cmake -S . -B /tmp/fz -DCMAKE_C_COMPILER=clang -DMG_FUZZ=ON -DMG_TESTS=OFF
#   cmake --build /tmp/fz --target fuzz_ota_cmd fuzz_ota_rsp
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
secs=$2
case $secs in '' | *[!0-9]*) echo "$0: SECONDS must be a whole number" >&2; exit 2 ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
fuzzdir=$build/tests/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/mg-fuzz.XXXXXX") || exit 1

found=0
failed=0
for bin in "$fuzzdir"/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    found=$((found + 1))
    name=$(basename "$bin")
    short=${name#fuzz_}
    corpus=$work/$short/corpus
    mkdir -p "$corpus" "$work/$short/artifacts"
    if [ -d "$src/tests/fuzz/corpus/$short" ]; then
        cp "$src/tests/fuzz/corpus/$short"/* "$corpus"/ 2>/dev/null || true
    fi
    log=$work/$short/log
    # -rss_limit_mb and -timeout: a slow or growing input counts as a finding.
    (cd "$work/$short" && "$bin" -max_total_time="$secs" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/$short/artifacts/" \
        "$corpus") >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    inputs=$(ls "$corpus" | wc -l)
    if [ "$rc" -ne 0 ] || [ -z "$execs" ] || ls "$work/$short/artifacts"/* >/dev/null 2>&1; then
        failed=$((failed + 1))
        printf '%-20s FAIL (exit %s) executions %s; log %s\n' "$name" "$rc" "${execs:-?}" "$log"
        grep -E 'ERROR|SUMMARY|Test unit written|deadly signal' "$log" | head -n 10 | sed 's/^/    /'
    else
        printf '%-20s ok   %s s, %s executions (%s/s), coverage %s edges, corpus %s inputs\n' \
            "$name" "$secs" "$execs" "$((execs / (secs > 0 ? secs : 1)))" "${cov:-?}" "$inputs"
    fi
done

if [ "$found" -eq 0 ]; then
    echo "no fuzz_* binaries in $fuzzdir (build with -DMG_FUZZ=ON and clang)" >&2
    rm -rf "$work"
    exit 1
fi
if [ "$failed" -ne 0 ]; then
    echo "$failed of $found fuzz targets failed; artifacts kept in $work" >&2
    exit 1
fi
rm -rf "$work"
exit 0
