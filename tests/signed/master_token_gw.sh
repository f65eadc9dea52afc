#!/usr/bin/env bash
# The gateway with the store's master key in a SoftHSM2 token: after
# `store master-import` and with master.key gone, the gateway unwraps the
# device's SMS keys inside the token to secure a command, the device executes
# it once and the proof of receipt (checked with the same keys) completes it.
source "$(dirname "$0")/../gateway/lib.sh"
source "$(dirname "$0")/token.sh"
new_workdir
start_smsc
"$bin" device add lock-1 --msisdn +4915100000001 > /dev/null
new_token m2mguard
uri="pkcs11:token=m2mguard;object=store-master;type=secret-key?pin-source=$tmp/m2mguard.pin&module-path=$module"
"$bin" store master-import "$uri" > "$tmp/import.log"
mv "$M2MGUARD_HOME/master.key" "$tmp/master.key.offline"
ok "master key moved into the token, master.key gone"
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent lock-1 --count 1 --telemetry "door=locked"
wait_for 20 inbox_at_least 1 || fail "telemetry did not arrive"
ok "telemetry verified by the gateway with keys unwrapped in the token"
out=$("$bin" send --wait 30 lock-1 unlock) || fail "send: $out"
grep -q "done" <<<"$out" || fail "unlock not done: $out"
[ "$(grep -c '"command":"unlock"' "$tmp/lock-1.jsonl")" -eq 1 ] || fail "lock-1 did not unlock once"
ok "the gateway secured 'unlock' with keys unwrapped in the token; PoR verified"
echo "master_token_gw: $pass checks passed"
