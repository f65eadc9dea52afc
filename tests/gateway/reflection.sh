#!/usr/bin/env bash
# Issue 9, defects 1 and 10: the directions are cryptographically distinct.
# (a) An SMSC that loops each MT straight back to the gateway as MO (SMSC_LOOP_MT):
#     the gateway refuses its own command (wrong_direction) and its own PoR; `send
#     --wait` never reports "done por_ok" for a command no device received.
# (b) An SMSC that turns each submit around to the sender it names (SMSC_REFLECT):
#     the device refuses its own telemetry coming back from the gateway's number and
#     executes nothing; genuine commands still work, once.
# (c) A PoR replayed after its command is done: por_unknown, the command stays done.
source "$(dirname "$0")/lib.sh"

new_workdir
set_conf reconnect_max_ms 1000
dev=+4915100000101
"$bin" device add lock-r --msisdn "$dev" > /dev/null

# ---- (a) loop MT back to the gateway, no device on the air ----
SMSC_LOOP_MT=1 start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
ok "gateway bound to an SMSC that loops MT back (SMSC_LOOP_MT=1)"

out=$("$bin" send --wait 5 lock-r unlock) && fail "send --wait succeeded with no device: $out"
id=$(cmd_id "$out")
[ -n "$id" ] || fail "no command id in: $out"
grep -q "por_ok" <<<"$out" && fail "the gateway confirmed its own command: $out"
grep -q "^command $id: done" <<<"$out" && fail "command done with no device: $out"
case "$(cmd_state "$id")" in 2\|*) fail "command $id is done: $(cmd_state "$id")" ;; esac
ok "send --wait 5 unlock with no device: not done ($(tail -n1 <<<"$out"))"
wait_for 10 has_event wrong_direction "\"source\":\"$dev\"" || fail "no wrong_direction event"
ok "the looped-back command is refused: wrong_direction"
! grep -q unlock "$M2MGUARD_HOME/inbox.jsonl" 2>/dev/null || fail "the command reached the inbox"
[ "$(inbox_lines)" -eq 0 ] || fail "the inbox has $(inbox_lines) lines"
[ "$(count_events por_ok)" -eq 0 ] || fail "a por_ok event with no device"
ok "nothing looped back reached the inbox, no por_ok"

# ---- (b) reflect each submit to the sender it names; the device is on the air ----
b0=$(gw_binds)
restart_smsc SMSC_REFLECT=1
wait_for 20 bash -c "[ \$(grep -c smpp_bound '$tmp/gateway.log') -gt $b0 ]" || fail "gateway did not re-bind"
start_agent lock-r --count 2 --interval-ms 300 --telemetry "temp=21.0C"; a1=$agent_pid
wait_for 20 inbox_at_least 2 || fail "telemetry did not arrive"
wait_for 10 grep -q "refused SMS from" "$tmp/lock-r.log" || fail "the device did not refuse its reflected telemetry"
grep "refused SMS from" "$tmp/lock-r.log" | head -n1 | sed 's/^/  /'
ok "the device's own telemetry reflected to it from the gateway's number is refused"
[ "$(inbox_lines)" -eq 2 ] || fail "expected 2 inbox lines, got $(inbox_lines)"
ok "telemetry accepted once each (2 inbox lines)"

# a genuine command (the unlock of (a) went with the killed SMSC's memory: never delivered)
wd0=$(count_events wrong_direction)
out=$("$bin" send --wait 20 lock-r open-door) || fail "send open-door: $out"
id2=$(cmd_id "$out")
grep -q "^command $id2: done por_ok" <<<"$out" || fail "open-door not done por_ok: $out"
sleep 1
[ "$(grep -c '"command":"open-door"' "$tmp/lock-r.jsonl")" -eq 1 ] || fail "open-door not executed exactly once"
[ "$(count_events por_ok open-door)" -eq 1 ] || fail "expected one por_ok event for open-door, got $(count_events por_ok open-door)"
ok "a genuine command: done por_ok, executed once, one por_ok event"
[ "$(wc -l < "$tmp/lock-r.jsonl")" -eq 1 ] || fail "the device executed more than open-door: $(cat "$tmp/lock-r.jsonl")"
! grep -q '"text":"open-door' "$M2MGUARD_HOME/inbox.jsonl" || fail "the reflected command reached the inbox"
wait_for 10 bash -c "[ \$('$bin' events --json | grep -c '\"kind\":\"wrong_direction\"') -gt $wd0 ]" \
  || fail "no wrong_direction for the reflected command"
ok "reflected command refused by the gateway; the device executed no telemetry"

# ---- (c) the device's PoR replayed after the command is done ----
por=$(grep -i '^027100' "$tmp/lock-r.sent" | tail -n1) # UDH IE 71: a response packet
[ -n "$por" ] || fail "no PoR in the device's sent log"
n_unknown=$(count_events por_unknown)
inject --from "$dev" --to "$gateway_number" "$por" || fail "inject"
wait_for 10 bash -c "[ \$('$bin' events --json | grep -c '\"kind\":\"por_unknown\"') -gt $n_unknown ]" \
  || fail "no por_unknown event for the replayed PoR"
sleep 0.5
[ "$(cmd_state "$id2")" = "2|por_ok" ] || fail "command $id2 state changed: $(cmd_state "$id2")"
[ "$(count_events por_ok open-door)" -eq 1 ] || fail "a second por_ok for open-door"
ok "replayed PoR refused (por_unknown); the command stays done, one por_ok event"

echo "gateway reflection: $pass passed, 0 failed"
