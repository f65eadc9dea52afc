#!/usr/bin/env bash
# make demo, part 4: signed commands (issue 12). A door lock trusts four
# operator keys; the policy (WORKDIR/policy.yaml) says who may send what.
# An `unlock` signed by an operator — a PEM key, then a key that never leaves
# a SoftHSM2 token — opens the door; unsigned, wrong-role and unknown-key
# commands are refused at the gateway; forged, replayed, expired and
# misaddressed signed commands injected past the gateway with the device's
# own SMS keys (as a compromised gateway could) are refused by the device;
# anchor-rotate (a new key for a trust anchor) needs two people of two roles.
# Every process started here is stopped by its PID.
# Usage: tools/demo-signed.sh BUILD_DIR/m2mguard
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
set -- "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
echo
echo "=================================================================================="
echo "m2mguard demo, part 4: signed commands (COSE) and the two-person rule"
echo "=================================================================================="
export MG_SMSC_QUIET=1
source "$here/../tests/gateway/lib.sh"
source "$here/../tests/signed/token.sh"
say() { printf '  %-62s %s\n' "$1" "$2"; }
unlocks() { grep -c '"command":"unlock"' "$tmp/door-1.jsonl" || true; }
refusals() { grep -c "agent: command [0-9]* refused: $1" "$tmp/door-1.log" || true; }

new_workdir
start_smsc
new_token ops
token_key ops op2 02
op2_uri=$(token_uri ops op2)
for k in op1 intern sec1 rogue intern2; do es256_key "$k"; done
# the anchor-rotate arguments: intern's anchor gets a new key
rot="intern:ES256:$(pubhex intern2)"
"$bin" signer add op1 --role operator --pub "$tmp/op1.pub" > /dev/null
"$bin" signer add op2 --role operator --pub "$tmp/op2.pub" > /dev/null
"$bin" signer add intern --role viewer --pub "$tmp/intern.pub" > /dev/null
"$bin" signer add sec1 --role security --pub "$tmp/sec1.pub" > /dev/null
say "signers: op1, op2 (operator; op2 in a SoftHSM2 token), intern, sec1" "registered"
cat > "$M2MGUARD_HOME/policy.yaml" <<'YAML'
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
YAML
chmod 600 "$M2MGUARD_HOME/policy.yaml"
say "policy: unlock = signed by an operator; anchor-rotate = critical" "policy.yaml"
anchors=()
for k in op1 op2 intern sec1; do anchors+=(--anchor "$k:ES256:$(pubhex "$k")"); done
"$bin" device add door-1 --msisdn +4915100000001 --class door-lock "${anchors[@]}" \
  --signed unlock,anchor-rotate --two-signers anchor-rotate > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent door-1
sleep 1
say "door-1 trusts 4 anchors; unlock must be signed, anchor-rotate by two" "up"

out=$("$bin" send --wait 30 --sign "$tmp/op1.key" --kid op1 door-1 unlock | tail -n 1)
say "'unlock' signed by op1 (PEM key)" "${out#*: }"
out=$("$bin" send --wait 30 --sign "$op2_uri" --kid op2 door-1 unlock | tail -n 1)
say "'unlock' signed by op2 (key inside the token, pkcs11: URI)" "${out#*: }"
[ "$(unlocks)" -eq 2 ] || fail "door-1 unlocked $(unlocks) times, want 2"

echo
echo "  refused at the gateway (policy):"
gw_refuse() { # WHAT send-args...
  local what=$1; shift
  local o; o=$("$bin" send --wait 20 "$@" 2>&1 | tail -n 1 || true)
  say "$what" "${o#*: }"
}
gw_refuse "'unlock' unsigned" door-1 unlock
gw_refuse "'unlock' signed by intern (role viewer)" --sign "$tmp/intern.key" --kid intern door-1 unlock
gw_refuse "'unlock' signed by an unregistered key" --sign "$tmp/rogue.key" --kid rogue door-1 unlock
gw_refuse "'anchor-rotate' signed by op1 alone" --sign "$tmp/op1.key" --kid op1 door-1 anchor-rotate "$rot"
gw_refuse "'anchor-rotate' signed by op1 + op2 (both operators)" --sign "$tmp/op1.key" --kid op1 \
  --sign "$op2_uri" --kid op2 door-1 anchor-rotate "$rot"

echo
echo "  the two-person rule:"
out=$("$bin" send --wait 30 --sign "$tmp/op1.key" --kid op1 --sign "$tmp/sec1.key" --kid sec1 door-1 anchor-rotate "$rot" | tail -n 1)
say "'anchor-rotate' signed by op1 (operator) + sec1 (security)" "${out#*: }"
wait_for 10 grep -q 'anchor-rotate applied' "$tmp/door-1.log" || fail "door-1 did not apply anchor-rotate"

echo
echo "  injected past the gateway with door-1's own SMS keys (refused by the device):"
cntr=1000
dev_refuse() { # WHAT REASON COSE_HEX
  local before; before=$(refusals "$2")
  cntr=$((cntr + 1))
  inject_cmd +4915100000001 "$(pack_for door-1 "$cntr" "$3")"
  local reason=$2
  wait_cond 15 '[ "$(refusals "$reason")" -gt "$before" ]' || fail "door-1 did not refuse: $1"
  say "$1" "refused ($2)"
}
sign() { "$bin" cmd sign --key "$tmp/$1.key" --kid "$1" "${@:2}"; }
good=$(sign op1 --device door-1 --seq 1000000 --command unlock)
cntr=$((cntr + 1))
inject_cmd +4915100000001 "$(pack_for door-1 "$cntr" "$good")"
wait_cond 15 '[ "$(unlocks)" -eq 3 ]' || fail "the injected genuine command was not executed"
say "a genuine signed 'unlock' (op1), injected" "executed"
dev_refuse "the same signed 'unlock' again (replay)" seq_not_higher "$good"
bad=${good:0:$((${#good} - 2))}$(printf '%02x' $(( (0x${good: -2} ^ 1) )))
dev_refuse "a signed 'unlock' with one bit flipped" bad_signature "$bad"
dev_refuse "a signed 'unlock' for door-2" wrong_audience "$(sign op1 --device door-2 --seq 1000001 --command unlock)"
dev_refuse "a signed 'unlock' that expired 9 minutes ago" expired \
  "$(sign op1 --device door-1 --seq 1000002 --command unlock --iat $(( $(date +%s) - 600 )) --ttl 60)"
dev_refuse "a signed 'unlock' by an unknown key" unknown_kid "$(sign rogue --device door-1 --seq 1000003 --command unlock)"
dev_refuse "a plain 'unlock' (no signature)" signature_required "$(printf unlock | od -An -v -tx1 | tr -d ' \n')"

echo
echo "  policy refusals at the gateway (m2mguard events):"
"$bin" events | awk -F'\t' '$5 == "cmd_policy_refused" { printf "    %-20s %-7s %-4s %-18s %s\n", $1, $2, $3, $5, $6 }'
sleep 0.5
[ "$(unlocks)" -eq 3 ] || fail "door-1 unlocked $(unlocks) times, want 3"
echo
echo "summary: only commands signed by the right people opened the door, each once; every other one was refused."
