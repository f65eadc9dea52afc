#!/usr/bin/env bash
# Issue 11 item 3, the measurement: legitimate delivery at the gateway under a
# flood of forged SMS at FACTOR x the legitimate rate, through the real SMSC
# (tests/smsc/smsc.js, SMSC_SPOOF=1) and the real gateway daemon. Forged: random
# unknown numbers, registered numbers with a broken checksum, replays of genuine
# packets (tests/smsc/flood_mix.js). It runs tests/gateway/flood_mix.sh bigger and
# prints: legitimate sent/delivered and %, the forged rate, event rows added (and
# the occurrences they stand for), the gateway's resident memory.
# Usage: bench/bench_flood.sh BUILD_DIR/m2mguard [DEVICES [MESSAGES_PER_DEVICE [LEGIT_PER_S [FACTOR]]]]
# Defaults: 50 devices x 60 messages at 50/s (60 s), factor 10 (500 forged/s).
set -euo pipefail
bin=${1:?usage: bench/bench_flood.sh BUILD_DIR/m2mguard [DEVICES [PER_DEVICE [LEGIT_PER_S [FACTOR]]]]}
here=$(cd "$(dirname "$0")/.." && pwd)
export MG_SOURCE_DIR=${MG_SOURCE_DIR:-$here}
export FLOOD_MIX_DEVICES=${2:-50} FLOOD_MIX_PER_DEVICE=${3:-60} FLOOD_MIX_RATE=${4:-50} FLOOD_MIX_FACTOR=${5:-10}
echo "bench_flood: $FLOOD_MIX_DEVICES devices x $FLOOD_MIX_PER_DEVICE messages at $FLOOD_MIX_RATE/s, forged x$FLOOD_MIX_FACTOR"
bash "$here/tests/gateway/flood_mix.sh" "$bin" | grep -E '^(flood_mix|ok|FAIL)' | sed 's/^/bench_flood: /'
