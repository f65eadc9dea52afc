#!/usr/bin/env bash
# End-to-end throughput: device agents -> real SMSC peer (npm smpp) -> gateway
# (verify + durable counters + output). Prints messages/s; also the SMSC
# alone (submit -> deliver between two agents is not measured here: see
# docs/smpp.md for the session-to-session figure).
# Usage: bench/e2e_smpp.sh BUILD_DIR/m2mguard [MESSAGES_PER_DEVICE] [DEVICES]
source "$(dirname "$0")/../tests/gateway/lib.sh"
N=${2:-5000}
D=${3:-2}
new_workdir
sed -i "s/^window=.*/window=64/" "$M2MGUARD_HOME/m2mguard.conf"
start_smsc
for i in $(seq 1 "$D"); do "$bin" device add "bench-$i" --msisdn "+49153000000$i" > /dev/null; done
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
t0=$(date +%s.%N)
for i in $(seq 1 "$D"); do start_agent "bench-$i" --count "$N" --interval-ms 0 --exit-when-done; done
total=$((N * D))
wait_for 600 inbox_at_least "$total" || fail "only $(inbox_lines) of $total"
t1=$(date +%s.%N)
python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print(f'end-to-end SMPP: {n} messages from {sys.argv[4]} devices in {t:.2f} s = {n/t:.0f} messages/s (agents -> SMSC -> gateway, durable)')" "$t0" "$t1" "$total" "$D"
