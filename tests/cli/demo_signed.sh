#!/usr/bin/env bash
# make demo part 4 (tools/demo-signed.sh) runs to the end: signed commands
# by authorised operators (PEM and token keys) open the door once each;
# the policy refusals happen at the gateway, the forged/replayed/expired/
# misaddressed ones at the device; anchor-rotate needs two roles.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$("$src/tools/demo-signed.sh" "$bin")
echo "$out"
pass=0
expect() {
  if ! grep -Eq -- "$1" <<<"$out"; then echo "FAIL: no line matching: $1" >&2; exit 1; fi
  pass=$((pass + 1))
}
expect "'unlock' signed by op1 \(PEM key\) +.*done"
expect "'unlock' signed by op2 \(key inside the token, pkcs11: URI\) +.*done"
expect "'unlock' unsigned +.*fail"
expect "'unlock' signed by intern \(role viewer\) +.*fail"
expect "'unlock' signed by an unregistered key +no signer 'rogue'"
expect "'anchor-rotate' signed by op1 alone +.*fail"
expect "'anchor-rotate' signed by op1 \+ op2 \(both operators\) +.*fail"
expect "a genuine signed 'unlock' \(op1\), injected +executed"
expect "the same signed 'unlock' again \(replay\) +refused \(seq_not_higher\)"
expect "one bit flipped +refused \(bad_signature\)"
expect "for door-2 +refused \(wrong_audience\)"
expect "expired 9 minutes ago +refused \(expired\)"
expect "by an unknown key +refused \(unknown_kid\)"
expect "a plain 'unlock' \(no signature\) +refused \(signature_required\)"
expect "'anchor-rotate' signed by op1 \(operator\) \+ sec1 \(security\) +.*done"
expect "cmd_policy_refused"
expect "^summary: only commands signed by the right people opened the door"
if grep -q FAIL <<<"$out"; then exit 1; fi
echo "cli demo_signed: $pass passed, 0 failed"
