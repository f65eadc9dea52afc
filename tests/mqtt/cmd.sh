#!/usr/bin/env bash
# Commands over MQTT (issue 10 part 5, MQTT half): `m2mguard send` queues a
# command, the plugin delivers it to m2m/NAME/down/cmd (QoS 1, "<id> <text>")
# of the connected device, the device's receipt on m2m/NAME/up/receipt
# completes it once; a second receipt changes nothing; a receipt for another
# device's command is refused; a malformed one is an event; without a receipt
# the command times out.
# usage: cmd.sh M2MGUARD_BIN PLUGIN_SO
source "$(dirname "$0")/lib.sh"
setup
set_opt cmd_timeout 3
new_device dev1
new_device dev2
start_broker

# device_wait NAME: mosquitto_sub -C 1 on its command topic; sets dsub_pid
device_wait() {
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/$1.crt" --key "$tmp/$1.key" \
    -i "$1" -q 1 -t "m2m/$1/down/cmd" -C 1 -W 20 > "$tmp/$1.cmd" 2>> "$tmp/$1.sub.log" &
  dsub_pid=$!
  pids+=("$dsub_pid")
  wait_for 5 grep -q "Sending SUBACK to $1" "$tmp/broker.log" || fail "$1 did not subscribe"
}

# 1. delivered and completed by an ok receipt
device_wait dev1
"$bin" send --wait 15 dev1 unlock door 3 > "$tmp/send1.out" 2>&1 &
send_pid=$!; pids+=("$send_pid")
wait "$dsub_pid" || fail "dev1 received no command"
read -r id1 text1 < "$tmp/dev1.cmd"
[[ "$id1" =~ ^[1-9][0-9]*$ ]] && [ "$text1" = "unlock door 3" ] || fail "payload: $(cat "$tmp/dev1.cmd")"
has_event cmd_sent "command $id1 sent on m2m/dev1/down/cmd" || fail "no cmd_sent event"
ok "queued command delivered on m2m/dev1/down/cmd as '$id1 unlock door 3'"
# the device stays connected to answer (a receipt from a new connection is fine too)
mpub dev1 dev1 m2m/dev1/up/receipt "$id1 ok"
wait "$send_pid" || fail "send --wait did not report success: $(cat "$tmp/send1.out")"
has_event cmd_done "command $id1 receipt ok" || fail "no cmd_done event"
ok "receipt '$id1 ok' completed the command (send --wait: $(tail -n 1 "$tmp/send1.out"))"

# 2. a second receipt changes nothing
mpub dev1 dev1 m2m/dev1/up/receipt "$id1 fail late"
wait_for 5 has_event mqtt_bad_receipt "command $id1 in state done" ||
  wait_for 1 has_event mqtt_bad_receipt "command $id1 already completed" || fail "second receipt: no event"
has_event cmd_failed "command $id1" && fail "the second receipt changed the outcome"
ok "second receipt for $id1: event, outcome unchanged"

# 3. a receipt for another device's command is refused; that command then times out
device_wait dev2
"$bin" send dev2 reboot > "$tmp/send2.out" 2>&1
wait "$dsub_pid" || fail "dev2 received no command"
read -r id2 text2 < "$tmp/dev2.cmd"
[ "$text2" = reboot ] || fail "dev2 payload: $(cat "$tmp/dev2.cmd")"
mpub dev1 dev1 m2m/dev1/up/receipt "$id2 ok"
wait_for 5 has_event mqtt_bad_receipt "receipt for command $id2 that is not this device" ||
  fail "receipt for dev2's command from dev1: no event"
mpub dev1 dev1 m2m/dev2/up/receipt "$id2 ok"  # not its topic: ACL
wait_for 5 has_event mqtt_acl_deny "publish m2m/dev2/up/receipt denied" || fail "no acl_deny"
has_event cmd_done "command $id2" && fail "dev1 completed dev2's command"
wait_for 10 has_event cmd_timeout "command $id2 no receipt within 3 s" || fail "dev2's command did not time out"
ok "receipt for another device's command refused; the command timed out (cmd_timeout 3)"

# 4. malformed receipts: events, no state change
for bad in "$id2" "0 ok" "0$id2 ok" "$id2 OK" "$id2 fail $(head -c 121 /dev/zero | tr '\0' d)" "x"; do
  mpub dev2 dev2 m2m/dev2/up/receipt "$bad"
done
wait_for 5 has_event mqtt_bad_receipt "malformed receipt" || fail "no event for a malformed receipt"
has_event cmd_done "command $id2" && fail "a malformed receipt completed a command"
ok "malformed receipts: events, nothing completed"

# 5. MQTT.js as the device: command in, receipt out, failed outcome recorded
node "$src/tests/mqtt/peer.js" --port "$port" --ca "$chain" --cert "$tmp/dev2.crt" --key "$tmp/dev2.key" \
  --id dev2 --sub m2m/dev2/down/cmd --wait 4000 > "$tmp/peer-dev2.out" 2>> "$tmp/peer.log" &
pp=$!; pids+=("$pp")
wait_for 5 grep -q "Sending SUBACK to dev2" "$tmp/broker.log" || fail "MQTT.js dev2 did not subscribe"
"$bin" send dev2 set mode eco > "$tmp/send3.out"
wait_for 5 grep -q '^msg m2m/dev2/down/cmd [0-9]* set mode eco$' "$tmp/peer-dev2.out" ||
  fail "MQTT.js did not receive the command: $(cat "$tmp/peer-dev2.out")"
id3=$(sed -n 's/^msg m2m\/dev2\/down\/cmd \([0-9]*\) .*/\1/p' "$tmp/peer-dev2.out")
out=$(peer dev2 dev2 --pub "m2m/dev2/up/receipt=$id3 fail mode unsupported")
grep -q "^pub-ok m2m/dev2/up/receipt" <<<"$out" || fail "MQTT.js receipt: $out"
wait_for 5 has_event cmd_failed "command $id3 receipt fail: mode unsupported" || fail "no cmd_failed"
ok "MQTT.js device: command $id3 received, 'fail' receipt recorded"
echo "PASS: $pass checks"
