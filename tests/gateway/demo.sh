#!/usr/bin/env bash
# `make demo` (tools/demo.sh) runs to the end and says what the profile promises.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$("$src/tools/demo.sh" "$bin" 2>&1) || { echo "$out"; echo "FAIL: tools/demo.sh exited non-zero"; exit 1; }
grep -q "summary: 17/17 checks as expected" <<<"$out" || { echo "$out"; echo "FAIL: part 1"; exit 1; }
grep -q "summary: the genuine messages got through once; every attack was refused and left an event." <<<"$out" \
  || { echo "$out"; echo "FAIL: part 2"; exit 1; }
for k in replay auth_fail wrong_direction unknown_sender quarantined; do
  grep -q " $k " <<<"$out" || { echo "$out"; echo "FAIL: no $k event shown"; exit 1; }
done
echo "demo: 7 passed, 0 failed"
