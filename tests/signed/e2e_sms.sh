#!/usr/bin/env bash
# Signed commands end to end over SMS: SMSC (npm smpp) + gateway + SMS agent.
# An `unlock` signed by an authorised operator (a PEM key, and a key inside a
# SoftHSM2 token through a pkcs11: URI) opens the door, once each. The same
# command unsigned, signed by a key without the role, or by an unknown key is
# refused at the gateway (event cmd_policy_refused) and never reaches the air.
# Injected past the gateway with the device's valid SMS keys (agent inject),
# a bad signature, another device's command, a replay, an expired command,
# an unsigned unlock and a single signer for anchor-rotate are refused by the
# device (agent stderr + refused line). The two-person rule: anchor-rotate needs
# two signatures by two different roles at the gateway and two anchors at
# the device.
source "$(dirname "$0")/../gateway/lib.sh"
source "$(dirname "$0")/token.sh"
unlocks() { grep -c '"command":"unlock"' "$tmp/lock-1.jsonl" || true; }
refusals() { grep -c "agent: command [0-9]* refused: $1" "$tmp/lock-1.log" || true; }

new_workdir
start_smsc
# operators: op1 (PEM), op2 (inside a token), intern (PEM, role viewer),
# sec1 (PEM, role security: the second person of the two-person rule)
new_token ops
token_key ops op2 02
op2_uri=$(token_uri ops op2)
for k in op1 intern sec1 rogue intern2; do es256_key "$k"; done
# the anchor-rotate arguments: intern's anchor gets a new key
rot="intern:ES256:$(pubhex intern2)"
"$bin" signer add op1 --role operator --pub "$tmp/op1.pub" > /dev/null
"$bin" signer add op2 --role operator --key "$op2_uri" > /dev/null # public key read through the token
"$bin" signer add intern --role viewer --pub "$tmp/intern.pub" > /dev/null
"$bin" signer add sec1 --role security --pub "$tmp/sec1.pub" > /dev/null
"$bin" signer list > "$tmp/signers"
has_signer() { grep -E "^$1[[:space:]].*$2" "$tmp/signers" > /dev/null; }
has_signer op1 operator && has_signer op2 operator && has_signer intern viewer && has_signer sec1 security ||
  fail "signer list: $(cat "$tmp/signers")"
ok "4 signers registered (op2's key inside a SoftHSM2 token)"
cat > "$M2MGUARD_HOME/policy.yaml" <<'YAML'
# who may issue what to which class of device
default: deny
rules:
  - command: unlock
    classes: [door-lock]
    roles: [operator]
    require_signed: true
  - command: anchor-rotate
    classes: [door-lock]
    roles: [operator, security]
    critical: true
  - command: status
YAML
chmod 600 "$M2MGUARD_HOME/policy.yaml"
anchors=()
for k in op1 op2 intern sec1; do anchors+=(--anchor "$k:ES256:$(pubhex "$k")"); done
"$bin" device add lock-1 --msisdn +4915100000001 --class door-lock "${anchors[@]}" \
  --signed unlock,anchor-rotate --two-signers anchor-rotate > /dev/null
"$bin" device add lock-2 --msisdn +4915100000002 --class door-lock "${anchors[@]}" \
  --signed unlock,anchor-rotate --two-signers anchor-rotate > /dev/null
grep -c '^anchor=' "$M2MGUARD_HOME/devices/lock-1.prov" | grep -x 4 > /dev/null || fail "lock-1.prov anchors"
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent lock-1
start_agent lock-2
sleep 1
ok "gateway and two door locks (4 anchors, unlock signed, anchor-rotate two signers) up"

# ---- authorised: opens the door, once each -----------------------------------------
out=$("$bin" send --wait 30 --sign "$tmp/op1.key" --kid op1 lock-1 unlock) || fail "signed unlock (PEM): $out"
grep -q "done" <<<"$out" || fail "signed unlock (PEM) not done: $out"
[ "$(unlocks)" -eq 1 ] || fail "lock-1 unlocked $(unlocks) times after op1's command"
ok "unlock signed by op1 (PEM key) opened lock-1 over SMS"
out=$("$bin" send --wait 30 --sign "$op2_uri" --kid op2 lock-1 unlock) || fail "signed unlock (token): $out"
grep -q "done" <<<"$out" || fail "signed unlock (token) not done: $out"
[ "$(unlocks)" -eq 2 ] || fail "lock-1 unlocked $(unlocks) times after op2's command"
ok "unlock signed by op2 (key in the SoftHSM2 token, pkcs11: URI) opened lock-1"
h=$("$bin" cmd sign --key "$op2_uri" --kid op2 --device lock-1 --seq 900 --command unlock) \
  || fail "cmd sign with the token key"
out=$("$bin" cmd verify --anchor "op2=$tmp/op2.pub" --device lock-1 --last-seq 899 "$h") \
  || fail "cmd verify of the token-signed command: $out"
ok "cmd sign --key pkcs11:... signs in the token; cmd verify accepts it ($out)"

# ---- refused at the gateway ----------------------------------------------------------
refused_at_gw() { # refused_at_gw WHAT REASON_REGEX send-args...
  local what=$1 re=$2; shift 2
  local before; before=$(count_events cmd_policy_refused)
  set +e; out=$("$bin" send --wait 20 "$@" 2>&1); set -e
  wait_cond 10 '[ "$(count_events cmd_policy_refused)" -gt "$before" ]' || fail "$what: no cmd_policy_refused event ($out)"
  "$bin" events --json | grep '"kind":"cmd_policy_refused"' | tail -n 1 > "$tmp/last_refusal"
  grep -E -- "$re" "$tmp/last_refusal" > /dev/null || fail "$what: reason $(cat "$tmp/last_refusal")"
  grep -E "fail|refused" <<<"$out" > /dev/null || fail "$what: send says $out"
  ok "$what: refused at the gateway ($(sed 's/.*"reason":"\([^"]*\)".*/\1/' "$tmp/last_refusal"))"
}
refused_at_gw "unsigned unlock" "unsigned|signature" lock-1 unlock
refused_at_gw "unlock signed by intern (role viewer)" "role" --sign "$tmp/intern.key" --kid intern lock-1 unlock
set +e; out=$("$bin" send --sign "$tmp/rogue.key" --kid rogue lock-1 unlock 2>&1); rc=$?; set -e
[ "$rc" -ne 0 ] && grep -q "no signer 'rogue'" <<<"$out" || fail "unregistered key: $rc $out"
ok "unlock signed by an unregistered key: refused by send, nothing queued"
refused_at_gw "anchor-rotate with one signer" "critical|two|signer" --sign "$tmp/op1.key" --kid op1 lock-1 anchor-rotate "$rot"
refused_at_gw "anchor-rotate by two operators (one role)" "critical|role" \
  --sign "$tmp/op1.key" --kid op1 --sign "$op2_uri" --kid op2 lock-1 anchor-rotate "$rot"
# queued while the gateway is down: one expires, one's signer is revoked
stop_pid "$gw_pid"
"$bin" signer add temp --role operator --pub "$tmp/rogue.pub" > /dev/null
out=$("$bin" send --sign "$tmp/op1.key" --kid op1 --ttl 1 lock-1 unlock); expired_id=$(cmd_id "$out")
out=$("$bin" send --sign "$tmp/rogue.key" --kid temp lock-1 unlock); revoked_id=$(cmd_id "$out")
[ -n "$expired_id" ] && [ -n "$revoked_id" ] || fail "no command ids: $out"
"$bin" signer revoke temp > /dev/null
sleep 2
start_gateway
wait_cond 20 '[ "$(gw_binds)" -ge 2 ]' || fail "gateway did not bind again"
wait_for 20 has_event cmd_policy_refused "command $expired_id:" || fail "expired command: no event"
wait_for 20 has_event cmd_policy_refused "command $revoked_id:" || fail "revoked signer: no event"
"$bin" events --json | grep "\"command $expired_id:" > "$tmp/ev_exp"
"$bin" events --json | grep "\"command $revoked_id:" > "$tmp/ev_rev"
grep -E "expired" "$tmp/ev_exp" > /dev/null || fail "expired: $(cat "$tmp/ev_exp")"
grep -E "revoked" "$tmp/ev_rev" > /dev/null || fail "revoked: $(cat "$tmp/ev_rev")"
ok "queued unlock that expired before sending: refused at the gateway ($(sed 's/.*"reason":"\([^"(]*\).*/\1/' "$tmp/ev_exp"))"
ok "queued unlock whose signer was revoked meanwhile: refused at the gateway ($(sed 's/.*"reason":"\([^"(]*\).*/\1/' "$tmp/ev_rev"))"
sleep 1
[ "$(unlocks)" -eq 2 ] || fail "a refused command reached lock-1"
grep -c 'anchor-rotate applied' "$tmp/lock-1.log" > /dev/null && fail "a refused anchor-rotate reached lock-1"
ok "nothing refused at the gateway reached the device"

# ---- two-person rule: two roles at the gateway, two anchors at the device -----------
out=$("$bin" send --wait 30 --sign "$tmp/op1.key" --kid op1 --sign "$tmp/sec1.key" --kid sec1 lock-1 anchor-rotate "$rot") ||
  fail "anchor-rotate by op1 + sec1: $out"
grep -q "done" <<<"$out" || fail "anchor-rotate by op1 + sec1 not done: $out"
wait_for 10 grep -q 'anchor-rotate applied' "$tmp/lock-1.log" || fail "lock-1 did not apply anchor-rotate"
ok "anchor-rotate signed by operator op1 + security sec1 (COSE_Sign) applied by lock-1"

# ---- injected past the gateway: the device refuses -----------------------------------
cntr=1000
device_refuses() { # device_refuses WHAT REASON COSE_HEX
  local before; before=$(refusals "$2")
  cntr=$((cntr + 1))
  inject_cmd +4915100000001 "$(pack_for lock-1 "$cntr" "$3")"
  local reason=$2
  wait_cond 15 '[ "$(refusals "$reason")" -gt "$before" ]' || fail "$1: lock-1 did not refuse with $2: $(tail -n 3 "$tmp/lock-1.log")"
  ok "$1: refused by the device ($2)"
}
sign() { "$bin" cmd sign --key "$tmp/$1.key" --kid "$1" "${@:2}"; }
# the device's last signed sequence is at least 3; 1000000 is above it
good=$(sign op1 --device lock-1 --seq 1000000 --command unlock)
bad=${good:0:$((${#good} - 2))}$(printf '%02x' $(( (0x${good: -2} ^ 1) )))
device_refuses "bad signature (last octet flipped)" bad_signature "$bad"
device_refuses "signed for lock-2" wrong_audience "$(sign op1 --device lock-2 --seq 1000001 --command unlock)"
device_refuses "expired" expired "$(sign op1 --device lock-1 --seq 1000002 --command unlock --iat $(( $(date +%s) - 600 )) --ttl 60)"
device_refuses "unknown key" unknown_kid "$(sign rogue --device lock-1 --seq 1000003 --command unlock)"
device_refuses "unsigned unlock" signature_required "$(printf unlock | od -An -v -tx1 | tr -d ' \n')"
device_refuses "anchor-rotate with one signer" too_few_signers "$(sign op1 --device lock-1 --seq 1000004 --command anchor-rotate --args "$rot")"
device_refuses "unlock signed with intern's rotated-out key" bad_signature "$(sign intern --device lock-1 --seq 1000005 --command unlock)"
# a genuine one, then the same bytes again: replay
cntr=$((cntr + 1))
inject_cmd +4915100000001 "$(pack_for lock-1 "$cntr" "$good")"
wait_cond 15 '[ "$(unlocks)" -eq 3 ]' || fail "the injected genuine unlock was not executed"
ok "a genuine signed unlock injected with the device's keys is executed"
device_refuses "replay of that signed unlock (new SMS counter)" seq_not_higher "$good"
sleep 1
[ "$(unlocks)" -eq 3 ] || fail "lock-1 unlocked $(unlocks) times, want 3"
ok "lock-1 unlocked exactly 3 times: 2 through the gateway, 1 genuine injection"
echo "e2e_sms: $pass checks passed"
