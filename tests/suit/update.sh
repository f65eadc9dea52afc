#!/usr/bin/env bash
# SUIT updates end to end (issue 14) with real components: the m2mguard CA,
# Mosquitto with the m2mguard plugin, three reference agents of class
# `meter-v2` (IP, A/B slots), the `update` CLI as the application `ota`
# (role updater). Checks: the class updated (every agent boots the new
# image, update_ok events authenticated); a rollback (lower sequence)
# refused; a bit-flipped image refused with update_failed image_digest; a
# manifest for another class refused (wrong_class); an envelope signed by an
# unknown key refused; the plugin's ACL keeps the updater to down/update;
# tamper on one device: alarm -> event tamper (authenticated), keys wiped,
# the agent refuses to start again.
source "$(dirname "$0")/lib.sh"
suit_class=meter-v2
suit_setup "$suit_class" m-1 m-2 m-3
start_broker
for n in m-1 m-2 m-3; do start_agent "$n"; eval "pid_$(tr - _ <<<"$n")=$agent_pid"; done
for n in m-1 m-2 m-3; do wait_for 20 connected "$n" || fail "$n did not connect"; done
grep -q "boot slot 0 sequence 0" "$tmp/m-1.log" || fail "factory boot not logged"
ok "3 agents of class $suit_class connected with updates on (factory image, slot 0)"

head -c 40000 /dev/urandom > "$tmp/v1.bin"
head -c 70001 /dev/urandom > "$tmp/v2.bin"
create 1 "$tmp/v1.bin" "$tmp/v1.suit"
"$bin" update verify "$tmp/v1.suit" --anchor "$tmp/keys/vendor.pub" --image "$tmp/v1.bin" > "$tmp/verify.out"
grep -q "^sequence: 1$" "$tmp/verify.out" && grep -q "signature: verified; image verified" "$tmp/verify.out" \
  || fail "update verify: $(cat "$tmp/verify.out")"
set +e
"$bin" update verify "$tmp/v1.suit" --anchor "$tmp/keys/vendor.pub" --image "$tmp/v2.bin" 2> "$tmp/verify.err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "refused: image_" "$tmp/verify.err" || fail "verify with the wrong image: $rc"
ok "update create / verify (signature, image) / verify refuses the wrong image"

push "$tmp/v1.suit" "$tmp/v1.bin" --class "$suit_class"
[ $push_rc -eq 0 ] || fail "push v1 to the class: $push_rc: $push_out"
for n in m-1 m-2 m-3; do
  grep -q "^$n update_ok 1$" <<<"$push_out" || fail "$n: $push_out"
  booted "$n" "$tmp/v1.bin" || fail "$n does not boot v1"
done
wait_for 5 test "$(auth_events update_ok)" -eq 3 || fail "update_ok events: $(auth_events update_ok)"
ok "v1 (40000 octets, seq 1) rolled out to the class: 3 x update_ok, each boots v1, 3 authenticated events"

create 2 "$tmp/v2.bin" "$tmp/v2.suit"
push "$tmp/v2.suit" "$tmp/v2.bin" --class "$suit_class"
[ $push_rc -eq 0 ] || fail "push v2: $push_out"
for n in m-1 m-2 m-3; do booted "$n" "$tmp/v2.bin" || fail "$n does not boot v2"; done
grep -q "boot slot 0 sequence 2" "$tmp/m-2.log" || fail "v2 not in slot 0"
ok "v2 (seq 2) rolled out: every device switched slots and boots v2"

# rollback: the old, genuinely signed v1 envelope again
push "$tmp/v1.suit" "$tmp/v1.bin" m-1
[ $push_rc -eq 1 ] && grep -q "^m-1 update_failed 1 rollback$" <<<"$push_out" || fail "rollback: $push_out"
booted m-1 "$tmp/v2.bin" || fail "m-1 no longer boots v2"
ok "rollback to seq 1 refused (update_failed rollback), m-1 still boots v2"

# a bit flip in the image under a valid manifest
create 3 "$tmp/v2.bin" "$tmp/v3.suit"
cp "$tmp/v2.bin" "$tmp/v3-flipped.bin"
printf '\x01' | dd of="$tmp/v3-flipped.bin" bs=1 seek=12345 conv=notrunc status=none
b=$(od -An -tx1 -j12345 -N1 "$tmp/v2.bin" | tr -d ' ')
[ "$b" != 01 ] || printf '\x02' | dd of="$tmp/v3-flipped.bin" bs=1 seek=12345 conv=notrunc status=none
PUSH_ARGS=--unchecked push "$tmp/v3.suit" "$tmp/v3-flipped.bin" m-2
[ $push_rc -eq 1 ] && grep -q "^m-2 update_failed 3 image_digest$" <<<"$push_out" || fail "tampered image: $push_out"
booted m-2 "$tmp/v2.bin" || fail "m-2 no longer boots v2"
wait_for 5 test "$(auth_events update_failed image_digest)" -ge 1 || fail "no update_failed event"
ok "a bit-flipped image refused (update_failed image_digest, authenticated event); m-2 boots v2"

# another class; an unknown signer
create 4 "$tmp/v2.bin" "$tmp/other.suit" pump-v1
push "$tmp/other.suit" "$tmp/v2.bin" m-3
[ $push_rc -eq 1 ] && grep -q "^m-3 update_failed 4 wrong_class$" <<<"$push_out" || fail "wrong class: $push_out"
create 5 "$tmp/v2.bin" "$tmp/rogue.suit" "$suit_class" "$tmp/keys/rogue.pem"
push "$tmp/rogue.suit" "$tmp/v2.bin" m-3
[ $push_rc -eq 1 ] && grep -q "^m-3 update_failed 5 bad_signature$" <<<"$push_out" || fail "rogue key: $push_out"
booted m-3 "$tmp/v2.bin" || fail "m-3 no longer boots v2"
ok "a manifest for class pump-v1 (wrong_class) and one signed by an unknown key (bad_signature) refused"

# the plugin's ACL: the updater cannot forge a device's result, nor read telemetry
before=$(auth_events update_ok)
mosquitto_pub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/ota.crt" --key "$tmp/ota.key" \
  -i ota -q 1 -t m2m/m-2/up/update -m "9 ok" 2>> "$tmp/acl.log" || true
acl_denied() { "$bin" events --json | grep '"kind":"mqtt_acl_deny"' | grep 'm2m/m-2/up/update' > /dev/null; }
wait_for 5 acl_denied || fail "no mqtt_acl_deny for the updater publishing a device's up/update"
[ "$(auth_events update_ok)" -eq "$before" ] || fail "a forged update result became an event"
timeout 5 mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/ota.crt" --key "$tmp/ota.key" \
  -i ota -q 1 -t 'm2m/+/up/telemetry' -W 2 > "$tmp/ota-tel.out" 2>> "$tmp/acl.log" || true
[ ! -s "$tmp/ota-tel.out" ] || fail "the updater read telemetry"
ok "ACL: the updater cannot publish a device's up/update (mqtt_acl_deny, no event) nor read telemetry"

# tamper on m-3: the enclosure switch (SIGUSR1)
kill -USR1 "$pid_m_3"
wait_for 15 grep -q "refusing to operate until re-provisioned" "$tmp/m-3.log" || fail "no tamper response"
wait "$pid_m_3" 2>/dev/null || true
grep -q "tamper alarm acknowledged by the broker" "$tmp/m-3.log" || fail "alarm not acknowledged"
wait_for 5 test "$(auth_events tamper 'tamper alarm: enclosure')" -eq 1 || fail "no authenticated tamper event"
"$bin" events --json --device m-3 | grep '"kind":"tamper"' | grep '"bearer":"mqtt"' > /dev/null || fail "tamper event bearer"
[ ! -e "$tmp/m-3.d/key.pem" ] && [ ! -e "$tmp/m-3.d/cmd.state" ] && [ ! -e "$tmp/m-3.d/update.state" ] \
  || fail "keys or counters left after the tamper response: $(ls "$tmp/m-3.d")"
set +e
"$bin" agent run --mqtt "127.0.0.1:$mport" --name m-3 --cafile "$chain" --state-dir "$tmp/m-3.d" \
  --anchors "$tmp/anchors" --update "$tmp/update.prov" > /dev/null 2> "$tmp/m-3.again.log"; rc=$?
set -e
[ $rc -eq 3 ] && grep -q "refuses to operate until re-provisioned" "$tmp/m-3.again.log" || fail "restart after tamper: $rc"
ok "tamper on m-3: alarm first (event tamper, bearer mqtt, authenticated), keys and counters wiped, restart refused (exit 3)"
echo "PASS: $pass checks"
