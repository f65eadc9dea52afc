#!/usr/bin/env bash
# `m2mguard demo` runs to the end with every outcome as the profile promises.
set -euo pipefail
bin=$1
out=$("$bin" demo)
echo "$out"
grep -q "summary: 17/17 checks as expected" <<<"$out"
if grep -q FAIL <<<"$out"; then exit 1; fi
echo "cli demo: 1 passed, 0 failed"
