#!/usr/bin/env bash
# Issue 9, defects 2, 3, 4 and 9: the gateway against an SMSC configured like real
# deployments. International numbers as TON 1 digits without '+'; 8-bit data as DCS
# 0x02 and 0xF6; user data in message_payload; concatenated MO as UDH IE 00 and as
# SAR TLVs; an SMSC that refuses bind_transceiver (transmitter+receiver pair);
# delivery receipts used for the command's DELIVERED state.
source "$(dirname "$0")/lib.sh"

new_workdir
set_conf reconnect_max_ms 1000
dev=+4915100000201
"$bin" device add meter-1 --msisdn "$dev" > /dev/null

# telemetry TEXT: one agent run of meter-1 sends TEXT once (counters kept in its
# state file between runs, reserved in blocks: N is not predictable); the inbox must
# then hold exactly one "TEXT seq=...".
telemetry() {
  local text=$1
  start_agent meter-1 --count 1 --exit-when-done --telemetry "$text"
  local a=$agent_pid
  wait_for 20 grep -qF "\"text\":\"$text seq=" "$M2MGUARD_HOME/inbox.jsonl" \
    || fail "telemetry '$text' not accepted"
  wait "$a" 2>/dev/null || true
  sleep 0.3
  [ "$(grep -cF "\"text\":\"$text seq=" "$M2MGUARD_HOME/inbox.jsonl")" -eq 1 ] || fail "'$text' accepted more than once"
}
# round_trip CMD: a command to meter-1 (agent running) done por_ok, executed once.
round_trip() {
  local out id
  out=$("$bin" send --wait 20 meter-1 "$1") || fail "send $1: $out"
  id=$(cmd_id "$out")
  grep -q "^command $id: done por_ok" <<<"$out" || fail "$1 not done por_ok: $out"
  sleep 0.3
  [ "$(grep -c "\"command\":\"$1\"" "$tmp/meter-1.jsonl")" -eq 1 ] || fail "$1 not executed exactly once"
}
rebound() { [ "$(gw_binds)" -gt "$1" ]; }

# ---- the SMSC's defaults: TON 1 numbers without '+', DCS passed through ----
start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
telemetry "ton1=ok"
ok "TON 1 sender without '+' (SMSC default) matched to the device"
start_agent meter-1; a1=$agent_pid
wait_for 10 grep -q "agent: bound" "$tmp/meter-1.log" || fail "agent did not bind"
round_trip valve-open
ok "command round trip with TON 1 numbers: done por_ok, executed once"
stop_pid "$a1"

# ---- concatenated MO, UDH IE 00 (passed through by the SMSC) ----
long=$(printf 'flow-log:%s' "$(printf '%04d,' $(seq 1 50))")   # 259 characters: 2-3 SMS
before=$(wc -l < "$tmp/meter-1.sent")
telemetry "$long"
parts=$(( $(wc -l < "$tmp/meter-1.sent") - before ))
[ "$parts" -ge 2 ] && [ "$parts" -le 3 ] || fail "the long telemetry went as $parts SMS"
[ "$(tail -n "$parts" "$tmp/meter-1.sent" | grep -ciE '^[0-9a-f]{2}0003')" -eq "$parts" ] \
  || fail "the parts do not start with the concatenation IE 00"
ok "concatenated telemetry ($parts SMS, UDH IE 00) accepted once, whole (${#long} characters)"

# ---- DCS rewritten by the SMSC ----
for dcs in 0x02 0xF6; do
  b=$(gw_binds)
  restart_smsc SMSC_DCS=$dcs
  wait_for 20 rebound "$b" || fail "gateway did not re-bind"
  telemetry "dcs=$dcs"
  ok "telemetry delivered with DCS $dcs accepted"
done
b=$(gw_binds)
restart_smsc SMSC_DCS=0x00
wait_for 20 rebound "$b" || fail "gateway did not re-bind"
start_agent meter-1 --count 1 --exit-when-done --telemetry "dcs=gsm7"; a=$agent_pid
wait_for 10 has_event insufficient_security "\"source\":\"$dev\".*data coding" \
  || fail "no precise refusal of DCS 0x00: $("$bin" events --json | tail -n 2)"
wait "$a" 2>/dev/null || true
! grep -q 'dcs=gsm7' "$M2MGUARD_HOME/inbox.jsonl" || fail "DCS 0x00 telemetry accepted"
ok "DCS 0x00 (GSM 7-bit, alters octets) refused: $("$bin" events --json | grep -o '"reason":"[^"]*"' | tail -n1)"

# ---- message_payload ----
b=$(gw_binds)
restart_smsc SMSC_PAYLOAD=1
wait_for 20 rebound "$b" || fail "gateway did not re-bind"
telemetry "payload=ok"
ok "telemetry in message_payload accepted"

# ---- concatenated MO as SAR TLVs ----
b=$(gw_binds)
restart_smsc SMSC_SAR=1
wait_for 20 rebound "$b" || fail "gateway did not re-bind"
telemetry "sar:$long"
ok "concatenated telemetry as SAR TLVs accepted once, whole"
start_agent meter-1; a1=$agent_pid
wait_for 10 grep -q "agent: bound" "$tmp/meter-1.log" || fail "agent did not bind"
round_trip "set-schedule $(printf 'slot%02d=on;' $(seq 1 20))"
stop_pid "$a1"
ok "a concatenated command (SAR TLVs on delivery to the device): done por_ok, executed once"

# ---- an SMSC that requires the transmitter+receiver pair (of the gateway; the
#      device agents bind as transceivers) ----
stop_pid "$gw_pid"
set_conf smsc_bind transmitter+receiver
restart_smsc SMSC_REQUIRE_TXRX="$gateway_number"
b=$(gw_binds)
start_gateway
wait_for 20 rebound "$b" || fail "gateway did not bind as transmitter+receiver"
sleep 0.3
grep -q 'bound "m2mguard" (bind_transmitter)' "$tmp/smsc.log" || fail "no bind_transmitter"
grep -q 'bound "m2mguard" (bind_receiver)' "$tmp/smsc.log" || fail "no bind_receiver"
! grep -q "bind_transceiver refused" "$tmp/smsc.log" || fail "the gateway tried bind_transceiver"
ok "gateway bound as transmitter+receiver to an SMSC that refuses bind_transceiver"
telemetry "txrx=ok"
start_agent meter-1; a1=$agent_pid
wait_for 10 grep -q "agent: bound" "$tmp/meter-1.log" || fail "agent did not bind"
round_trip door-close
stop_pid "$a1"
ok "telemetry and a command round trip over the transmitter+receiver pair"

# ---- delivery receipts: a device that acknowledges the SMS to the SMSC but has
#      wrong keys (so no PoR): the receipt moves the command to DELIVERED ----
"$bin" device add meter-2 --msisdn +4915100000202 > /dev/null
sed 's/^kid=\(.\)/kid=X\1/; s/^kid=X0/kid=1/; s/^kid=X[^0]/kid=0/' "$M2MGUARD_HOME/devices/meter-2.prov" \
  > "$tmp/meter-2-wrongkey.prov"
chmod 600 "$tmp/meter-2-wrongkey.prov"
! cmp -s "$M2MGUARD_HOME/devices/meter-2.prov" "$tmp/meter-2-wrongkey.prov" || fail "key not altered"
PROV=$tmp/meter-2-wrongkey.prov start_agent meter-2; a2=$agent_pid
wait_for 10 grep -q "agent: bound" "$tmp/meter-2.log" || fail "meter-2 agent did not bind"
out=$("$bin" send --wait 5 meter-2 reboot) && fail "a PoR from a device with wrong keys: $out"
grep -q "^command [0-9]*: delivered (no outcome yet)" <<<"$out" || fail "not DELIVERED: $out"
has_event cmd_delivered "reboot" || fail "no cmd_delivered event"
grep -q "refused SMS from" "$tmp/meter-2.log" || fail "the wrong-key device did not refuse the command"
stop_pid "$a2"
ok "delivery receipt: command DELIVERED (cmd_delivered event), no PoR from a device with wrong keys"

echo "gateway interop: $pass passed, 0 failed"
