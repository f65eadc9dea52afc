#!/usr/bin/env bash
# (A benchmark: `make bench` runs it, not ctest.)
# Throughput of `update push` over the real broker and plugin (TLS): one
# device, a 256 KiB image, at the default pace (15 messages/s) and at 19/s
# (just under the plugin's per-client rate of 20/s), window 4 and 8. Prints
# octets per second; checks each update completes and boots.
source "$(dirname "$0")/../tests/suit/lib.sh"
suit_class=meter-v2
suit_setup "$suit_class" s-1
start_broker
start_agent s-1
wait_for 20 connected s-1 || fail "s-1 did not connect"
size=262144
seq=0
for args in "--rate 15 --window 4" "--rate 19 --window 8"; do
  seq=$((seq + 1))
  head -c $size /dev/urandom > "$tmp/img$seq.bin"
  create $seq "$tmp/img$seq.bin" "$tmp/img$seq.suit"
  t0=$(date +%s.%N)
  PUSH_ARGS=$args push "$tmp/img$seq.suit" "$tmp/img$seq.bin" s-1
  t1=$(date +%s.%N)
  [ $push_rc -eq 0 ] && booted s-1 "$tmp/img$seq.bin" || fail "push $args: $push_out"
  ok "$(awk -v s=$size -v a="$t0" -v b="$t1" 'BEGIN { printf "%d octets in %.1f s = %.1f KiB/s", s, b - a, s / (b - a) / 1024 }') ($args, chunk 2048)"
done
echo "PASS: $pass checks"
