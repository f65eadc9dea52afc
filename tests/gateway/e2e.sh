#!/usr/bin/env bash
# End to end: gateway <-> real SMSC (npm smpp server) <-> device agents.
# Telemetry up and an `unlock` down arrive once; forged, replayed, unknown,
# revoked and quarantined messages are refused, each with its event; a key
# rotation switches over on the proof of receipt.
source "$(dirname "$0")/lib.sh"

new_workdir
start_smsc
"$bin" device add lock-1 --msisdn +4915100000001 > /dev/null
"$bin" device add lock-2 --msisdn +4915100000002 > /dev/null
"$bin" device add lock-3 --msisdn +4915100000003 > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
ok "gateway bound to the SMSC"

# 1. telemetry up, once each
start_agent lock-1 --count 1 --telemetry "temp=20.5C"; a1=$agent_pid
start_agent lock-2 --count 1 --telemetry "temp=18.0C"; a2=$agent_pid
wait_for 20 inbox_at_least 2 || fail "telemetry did not arrive"
sleep 0.5
[ "$(inbox_lines)" -eq 2 ] || fail "expected 2 inbox lines, got $(inbox_lines)"
grep -q '"device":"lock-1".*"text":"temp=20.5C seq=1"' "$M2MGUARD_HOME/inbox.jsonl" || fail "lock-1 telemetry"
grep -q '"device":"lock-2".*"text":"temp=18.0C seq=1"' "$M2MGUARD_HOME/inbox.jsonl" || fail "lock-2 telemetry"
ok "telemetry from 2 devices arrived once each"

# 2. unlock down, executed once, PoR back
out=$("$bin" send --wait 20 lock-1 unlock) || fail "send unlock: $out"
grep -q "done" <<<"$out" || fail "unlock not confirmed: $out"
[ "$(grep -c '"command":"unlock"' "$tmp/lock-1.jsonl")" -eq 1 ] || fail "lock-1 did not unlock exactly once"
[ ! -s "$tmp/lock-2.jsonl" ] || fail "lock-2 executed something"
has_event por_ok "unlock" || fail "no por_ok event"
ok "unlock delivered once, proof of receipt verified"

# 3. forged: right sender MSISDN, checksum made with a guessed key
forged=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 00000000ff \
  --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 756e6c6f636b)
inject --from +4915100000001 --to "$gateway_number" "027000$forged"
wait_for 10 has_event auth_fail '"source":"+4915100000001"' || fail "no auth_fail event"
ok "forged SMS with the right sender refused (auth_fail)"

# 4. replay of the device's genuine telemetry SMS
inject --from +4915100000001 --to "$gateway_number" "$(head -n1 "$tmp/lock-1.sent")"
wait_for 10 has_event replay '"source":"+4915100000001"' || fail "no replay event"
ok "replayed SMS refused (replay)"

# 5. unknown number
inject --from +4915199999999 --to "$gateway_number" "027000$forged"
wait_for 10 has_event unknown_sender '"source":"+4915199999999"' || fail "no unknown_sender event"
ok "SMS from an unknown number refused (unknown_sender)"

# 6. plain-text SMS claiming to be a device
inject --plain --from +4915100000002 --to "$gateway_number" 756e6c6f636b
wait_for 10 has_event insufficient_security '"source":"+4915100000002"' || fail "no insufficient_security event"
ok "plain-text SMS refused (insufficient_security)"

# 6b. garbage user data header from a device's number: an event, nothing else
inject --from +4915100000001 --to "$gateway_number" 0570ff00
wait_for 10 has_event malformed '"source":"+4915100000001"' || fail "no malformed event for a garbage UDH"
ok "garbage UDH refused (malformed)"

# 7. revoked and quarantined devices (the revoked device keeps a copy of its
#    keys, as a stolen device would; revoke removes the registry's .prov file)
cp -p "$M2MGUARD_HOME/devices/lock-3.prov" "$tmp/lock-3.prov"
"$bin" device revoke lock-3 > /dev/null
"$bin" device quarantine lock-2 > /dev/null
sleep 1.2 # the gateway re-reads device status every second
PROV=$tmp/lock-3.prov start_agent lock-3 --count 1
wait_for 10 has_event revoked '"source":"+4915100000003"' || fail "no revoked event"
kill "$a2"; wait "$a2" 2>/dev/null || true
start_agent lock-2 --count 1 --telemetry "after-quarantine"; a2=$agent_pid
wait_for 10 has_event quarantined '"source":"+4915100000002"' || fail "no quarantined event"
ok "revoked and quarantined devices refused, with events"
[ "$(inbox_lines)" -eq 2 ] || fail "attacks reached the inbox: $(inbox_lines) lines"
ok "no refused message reached the application"

# 8. key rotation: new version delivered under the old one, switch-over on PoR
out=$("$bin" key rotate --wait 20 lock-1) || fail "key rotate: $out"
grep -q "done" <<<"$out" || fail "rotation not confirmed: $out"
"$bin" device show lock-1 | grep -q "key_version: 2" || fail "key version 2 not active"
has_event key_rotated "\"device\":\"lock-1\"" || fail "no key_rotated event"
kill "$a1"; wait "$a1" 2>/dev/null || true
start_agent lock-1 --count 1 --telemetry "new-keys"; a1=$agent_pid
wait_for 20 grep -q '"text":"new-keys seq=' "$M2MGUARD_HOME/inbox.jsonl" || fail "telemetry under the new keys"
out=$("$bin" send --wait 20 lock-1 lock) || fail "send lock under new keys: $out"
ok "key rotation: switch-over on proof of receipt, traffic continues under version 2"

# no key in any output or log
for f in "$tmp"/*.log "$tmp"/*.jsonl "$M2MGUARD_HOME/inbox.jsonl"; do
  while read -r k; do
    [ -n "$k" ] && ! grep -qi "$k" "$f" || fail "a key appears in $f"
  done < <(sed -n 's/^ki[cd]=//p' "$M2MGUARD_HOME"/devices/*.prov)
done
ok "no key in any log, event or output"

echo "gateway e2e: $pass passed, 0 failed"
