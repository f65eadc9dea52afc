#!/usr/bin/env bash
# make demo, part 5: signed software updates (SUIT) and tamper response
# (issue 14). Three meters of class `meter-v2` (IP agents with A/B slots)
# behind Mosquitto with the m2mguard plugin. The vendor signs an envelope
# (`update create`), the operator's updater application pushes it to the
# class over MQTT in chunks (`update push --class`); every meter verifies
# the signature before anything else, hashes the image while it streams into
# the inactive slot and switches only after a verified image. Then a rollback
# to the old version and an image with one flipped bit are refused, and one
# meter's enclosure is opened: alarm first, keys wiped, it refuses to run.
# Every process started here is stopped by its PID.
# Usage: tools/demo-update.sh BUILD_DIR/m2mguard
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
set -- "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
echo
echo "=================================================================================="
echo "m2mguard demo, part 5: signed updates (SUIT) to a class, rollback, bad image, tamper"
echo "=================================================================================="
source "$here/../tests/suit/lib.sh"
say() { printf '  %-62s %s\n' "$1" "$2"; }
result() { grep "^$1 " <<<"$push_out" | cut -d' ' -f2- ; }

suit_class=meter-v2
suit_setup "$suit_class" meter-1 meter-2 meter-3
start_broker
for n in meter-1 meter-2 meter-3; do start_agent "$n"; done
m3=$agent_pid
for n in meter-1 meter-2 meter-3; do wait_for 20 connected "$n" || fail "$n did not connect"; done
say "3 meters of class $suit_class connected (mTLS), factory image" "ok"

head -c 48000 /dev/urandom > "$tmp/fw-1.1.bin"
create 2 "$tmp/fw-1.1.bin" "$tmp/fw-1.1.suit"
say "vendor signs fw-1.1 (48000 octets, sequence 2, ES256)" "$(stat -c %s "$tmp/fw-1.1.suit") octet envelope"
t0=$SECONDS
push "$tmp/fw-1.1.suit" "$tmp/fw-1.1.bin" --class "$suit_class"
for n in meter-1 meter-2 meter-3; do
  st=$(result "$n")
  booted "$n" "$tmp/fw-1.1.bin" && st="$st, boots fw-1.1 from slot 1"
  say "update push --class $suit_class -> $n" "$st"
done
say "   (chunks of 2048 octets, QoS 1, flow-controlled)" "$((SECONDS - t0)) s"

head -c 1000 /dev/urandom > "$tmp/fw-1.0.bin"
create 1 "$tmp/fw-1.0.bin" "$tmp/fw-1.0.suit"
push "$tmp/fw-1.0.suit" "$tmp/fw-1.0.bin" meter-1
say "rollback: fw-1.0 (sequence 1, genuinely signed) -> meter-1" "$(result meter-1)"
create 3 "$tmp/fw-1.1.bin" "$tmp/fw-1.2.suit"
cp "$tmp/fw-1.1.bin" "$tmp/fw-1.2-bad.bin"
b=$(od -An -tu1 -j 20000 -N1 "$tmp/fw-1.1.bin" | tr -d ' ')
printf "\\$(printf '%03o' $(( b ^ 4 )))" | dd of="$tmp/fw-1.2-bad.bin" bs=1 seek=20000 conv=notrunc status=none
PUSH_ARGS=--unchecked push "$tmp/fw-1.2.suit" "$tmp/fw-1.2-bad.bin" meter-2
say "image with one flipped bit under a valid manifest -> meter-2" "$(result meter-2)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/keys/attacker.pem" 2>/dev/null
chmod 600 "$tmp/keys/attacker.pem"
create 9 "$tmp/fw-1.1.bin" "$tmp/evil.suit" "$suit_class" "$tmp/keys/attacker.pem"
push "$tmp/evil.suit" "$tmp/fw-1.1.bin" meter-3
say "envelope signed by an attacker's key -> meter-3" "$(result meter-3)"
for n in meter-1 meter-2 meter-3; do booted "$n" "$tmp/fw-1.1.bin" || fail "$n left fw-1.1"; done
say "every meter still boots fw-1.1" "ok"

echo
kill -USR1 "$m3"
wait_for 15 grep -q "refusing to operate until re-provisioned" "$tmp/meter-3.log" || fail "no tamper response"
wait "$m3" 2>/dev/null || true
say "meter-3: enclosure opened (SIGUSR1 = the tamper switch)" "alarm sent, keys wiped"
set +e
"$bin" agent run --mqtt "127.0.0.1:$mport" --name meter-3 --cafile "$chain" --state-dir "$tmp/meter-3.d" \
  --anchors "$tmp/anchors" --update "$tmp/update.prov" > /dev/null 2>&1; rc=$?
set -e
say "meter-3 started again" "refused (exit $rc): re-provision it"
echo
echo "  security events (m2mguard events; update results and the alarm are authenticated:"
echo "  the broker verified the meter's certificate):"
"$bin" events | awk -F'\t' '$5 ~ /^(update_ok|update_failed|tamper)$/ { printf "    %-20s %-8s %-5s %-14s %s\n", $1, $2, $3, $5, $6 }'
[ "$(auth_events update_ok)" -eq 3 ] && [ "$(auth_events tamper)" -eq 1 ] || fail "the demo did not go as promised"
echo
echo "summary: the class runs the signed image; rollback, a flipped bit and a foreign key were refused"
echo "on the device; the opened meter raised its alarm before it wiped its keys."
