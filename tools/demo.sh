#!/usr/bin/env bash
# make demo: the main job. Part 1 shows the secured-SMS protocol between two
# processes with an attacker in the SMS centre (m2mguard demo). Part 2 runs the
# system: a real SMSC (npm smpp server), the m2mguard gateway and two device
# agents on 127.0.0.1; the attacks go through the SMSC like any SMS would, and
# the events they produced are printed at the end.
# Usage: tools/demo.sh BUILD_DIR/m2mguard
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$1" demo
echo
echo "=================================================================================="
echo "m2mguard demo, part 2: gateway <-> SMSC (SMPP 3.4) <-> device agents"
echo "=================================================================================="
set -- "$1"
source "$here/../tests/gateway/lib.sh"
say() { printf '  %-62s %s\n' "$1" "$2"; }

new_workdir
start_smsc
"$bin" device add door-1 --msisdn +4915100000001 --class door-lock > /dev/null
"$bin" device add door-2 --msisdn +4915100000002 --class door-lock > /dev/null
"$bin" device add meter-9 --msisdn +4915100000009 --class meter > /dev/null
echo "  working directory $M2MGUARD_HOME: 3 devices with random per-device keys"
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
say "gateway bound to the SMSC at 127.0.0.1:$port as $gateway_number" "ok"
start_agent door-1 --count 1 --telemetry "door=locked;battery=91%"; d1=$agent_pid
start_agent door-2 --count 1 --telemetry "door=locked;battery=64%"
wait_for 20 inbox_at_least 2 || fail "telemetry did not arrive"
say "telemetry from door-1 and door-2" "accepted ($(inbox_lines) in inbox.jsonl)"
out=$("$bin" send --wait 20 door-1 unlock | tail -n 1)
say "'unlock' to door-1 (secured, counter, PoR requested)" "${out#*: }"
echo
echo "  attacks, through the same SMSC:"
forged=$("$bin" sms pack --spi 1639 --kic 12 --kid 12 --tar 4d4701 --cntr 0000000009 \
  --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 756e6c6f636b)
inject --from "$gateway_number" --to +4915100000001 "027000$forged"
say "spoofed 'unlock' to door-1 (gateway's number, guessed key)" "sent"
inject --plain --from "$gateway_number" --to +4915100000002 756e6c6f636b
say "plain-text 'unlock' to door-2 (gateway's number)" "sent"
inject --from +4915100000001 --to "$gateway_number" "$(head -n1 "$tmp/door-1.sent")"
say "replay of door-1's telemetry to the gateway" "sent"
forged_mo=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 0000000009 \
  --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 6f70656e)
inject --from +4915100000002 --to "$gateway_number" "027000$forged_mo"
say "forged telemetry with door-2's number" "sent"
inject --from +4915100000002 --to "$gateway_number" "027000$forged"
say "a command packet turned around to the gateway (reflection)" "sent"
inject --from +4915199999999 --to "$gateway_number" "027000$forged"
say "SMS from an unknown number" "sent"
"$bin" device quarantine meter-9 > /dev/null
sleep 1.2
PROV=$M2MGUARD_HOME/devices/meter-9.prov start_agent meter-9 --count 1
say "telemetry from meter-9 after it was quarantined" "sent"
sleep 1.5
unlocks=$(grep -c '"command":"unlock"' "$tmp/door-1.jsonl" "$tmp/door-2.jsonl" | awk -F: '{s+=$2} END {print s}')
echo
say "times a door was unlocked" "$unlocks (the one genuine command)"
say "messages accepted by the gateway" "$(inbox_lines) (the genuine telemetry)"
echo
echo "  refused by the devices (their local security log):"
for d in door-1 door-2; do
  sed -n "s/^agent: refused /    $d refused /p" "$tmp/$d.log"
done
echo
echo "  security events at the gateway (m2mguard events):"
"$bin" events | awk -F'\t' '$5 !~ /^(gateway_start|init|device_add|smpp_bound)$/ { printf "    %-20s %-8s %-15s %-22s %s\n", $1, $2, $4, $5, $6 }'
[ "$unlocks" -eq 1 ] && [ "$(inbox_lines)" -eq 2 ] || fail "the demo did not go as the profile promises"
echo
echo "summary: the genuine messages got through once; every attack was refused and left an event."
"$here/demo-ip.sh" "$1"
"$here/demo-signed.sh" "$1"
"$here/demo-update.sh" "$1"
