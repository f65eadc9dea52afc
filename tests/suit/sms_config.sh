#!/usr/bin/env bash
# A small configuration update over secured SMS (issue 14 item 1): the real
# SMSC (npm smpp), the gateway and the SMS reference agent with --update.
# `update push --sms` puts the file into the SUIT envelope as its integrated
# payload "#config" and queues it; the gateway sends it as the secured data
# of one concatenated command; the device library verifies the signature
# (the .prov's anchor), vendor/class, the sequence and the payload's digest,
# switches slots and writes STATE.config atomically; the report "update_ok
# SEQ" comes back as secured telemetry: event update_ok, authenticated.
# Then: the same envelope again (rollback) refused; a bit-flipped signature
# refused; a payload that is not the one the manifest describes refused; a
# payload too large for SMS refused by `update push` naming the limit.
source "$(dirname "$0")/../gateway/lib.sh"
new_workdir
start_smsc
"$bin" device add meter-1 --msisdn +4915100000011 > /dev/null
prov=$M2MGUARD_HOME/devices/meter-1.prov
config=$prov.state.config

mkdir -m 700 "$tmp/keys"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/keys/vendor.pem" 2>/dev/null
chmod 600 "$tmp/keys/vendor.pem"
pub=$(openssl pkey -in "$tmp/keys/vendor.pem" -pubout -outform DER | tail -c 65 | od -An -tx1 | tr -d ' \n')
printf 'anchor=vendor:ES256:%s\n' "$pub" >> "$prov"

# create SEQ FILE OUT: an envelope naming the integrated payload "#config".
create() {
  "$bin" update create --image "$2" --vendor example.com --class meter --seq "$1" \
    --key "$tmp/keys/vendor.pem" --kid vendor --uri '#config' -o "$3" 2>> "$tmp/create.log" \
    || fail "update create $1"
}
# push ENVELOPE FILE [options]: update push --sms; output in $push_out, exit in $push_rc.
push() {
  local env=$1 img=$2; shift 2
  set +e
  push_out=$("$bin" update push meter-1 "$env" --image "$img" --sms "$@" 2> "$tmp/push.err")
  push_rc=$?
  set -e
  cat "$tmp/push.err" >> "$tmp/push.log"
}
auth_events() { sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
  "SELECT count(*) FROM events WHERE kind = '$1' AND auth = 1 AND bearer = 'sms' ${2:+AND reason LIKE '%$2%'}"; }
# (wait_for runs its command again: the count is taken inside)
auth_is() { [ "$(auth_events "$1" "$2")" -eq 1 ]; }

printf 'interval=60\nserver=10.0.0.1\n' > "$tmp/cfg2"
create 2 "$tmp/cfg2" "$tmp/u2.suit"
"$bin" update inspect --json "$tmp/u2.suit" > "$tmp/u2.json"
v=$(sed -n 's/.*"vendor":"\([0-9a-f-]*\)".*/\1/p' "$tmp/u2.json")
c=$(sed -n 's/.*"class":"\([0-9a-f-]*\)".*/\1/p' "$tmp/u2.json")
[ ${#v} -eq 36 ] && [ ${#c} -eq 36 ] || fail "no vendor/class UUID from update inspect"
printf 'vendor=%s\nclass=%s\nslot_size=4096\n' "$v" "$c" > "$tmp/update.prov"

start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent meter-1 --count 1 --telemetry "boot" --update "$tmp/update.prov"
wait_for 20 inbox_at_least 1 || fail "the agent's telemetry did not arrive"

# 1. applied
push "$tmp/u2.suit" "$tmp/cfg2"
[ $push_rc -eq 0 ] || fail "update push --sms: exit $push_rc: $(cat "$tmp/push.err")"
grep -q "^meter-1 queued update 2 (command [0-9]*)$" <<<"$push_out" || fail "push output: $push_out"
wait_for 30 test -f "$config" || fail "no $config: $(tail -n5 "$tmp/meter-1.log")"
cmp -s "$config" "$tmp/cfg2" || fail "the installed configuration differs from the pushed file"
wait_for 20 auth_is update_ok 'update 2 installed' || fail "no authenticated update_ok event"
grep -q '"update":"update_ok 2"' "$tmp/meter-1.jsonl" || fail "agent output: $(cat "$tmp/meter-1.jsonl")"
ok "config update over SMS applied: $config equals the file; event update_ok (sms, authenticated)"

# 2. the same envelope again: rollback
push "$tmp/u2.suit" "$tmp/cfg2"
[ $push_rc -eq 0 ] || fail "second push: exit $push_rc"
wait_for 30 auth_is update_failed rollback || fail "no update_failed rollback event"
cmp -s "$config" "$tmp/cfg2" || fail "the configuration changed after a rollback"
ok "the same sequence again: refused by the device (update_failed rollback)"

# 3. a bit flipped in the signature: refused by the device, nothing installed
printf 'interval=30\n' > "$tmp/cfg3"
create 3 "$tmp/cfg3" "$tmp/u3.suit"
python3 - "$tmp/u3.suit" "$tmp/u3.bad" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(b'\x58\x40')          # the 64-octet signature bstr of the COSE_Sign1
assert i > 0
b[i + 2 + 10] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
push "$tmp/u3.bad" "$tmp/cfg3"
[ $push_rc -eq 0 ] || fail "push of the flipped envelope: exit $push_rc (the CLI does not verify)"
wait_for 30 auth_is update_failed bad_signature || \
  fail "no update_failed bad_signature event: $("$bin" events --json | tail -n3)"
cmp -s "$config" "$tmp/cfg2" || fail "the configuration changed after a forged envelope"
ok "a bit-flipped signature: refused by the device (update_failed bad_signature)"

# 4. a payload that is not the manifest's (--unchecked): the digest refuses it
printf 'interval=31\n' > "$tmp/cfg3x"
push "$tmp/u3.suit" "$tmp/cfg3x" --unchecked
[ $push_rc -eq 0 ] || fail "push --unchecked: exit $push_rc"
wait_for 30 auth_is update_failed image_digest || fail "no update_failed image_digest event"
cmp -s "$config" "$tmp/cfg2" || fail "the configuration changed after a wrong payload"
ok "a payload other than the manifest's digest: refused (update_failed image_digest)"

# 5. the genuine one applies
push "$tmp/u3.suit" "$tmp/cfg3"
wait_for 30 cmp -s "$config" "$tmp/cfg3" || fail "update 3 not installed"
wait_for 20 auth_is update_ok 'update 3 installed' || fail "no update_ok 3 event"
ok "the next sequence applies (the other slot)"

# 6. too large for SMS: refused by update push, naming the limit; nothing queued
head -c 600 /dev/urandom > "$tmp/big"
create 4 "$tmp/big" "$tmp/u4.suit"
before=$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM commands")
push "$tmp/u4.suit" "$tmp/big"
[ $push_rc -eq 3 ] || fail "too large: exit $push_rc"
grep -q "at most 472 (MG_SMS_DATA_MAX" "$tmp/push.err" || fail "message: $(cat "$tmp/push.err")"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM commands")" -eq "$before" ] || fail "queued anyway"
ok "a payload too large: refused by update push: $(cat "$tmp/push.err")"

# 7. an envelope without an integrated payload uri: refused by update push
"$bin" update create --image "$tmp/cfg3" --vendor example.com --class meter --seq 5 \
  --key "$tmp/keys/vendor.pem" -o "$tmp/u5.suit" 2>> "$tmp/create.log"
push "$tmp/u5.suit" "$tmp/cfg3"
[ $push_rc -eq 3 ] && grep -q "names no integrated payload" "$tmp/push.err" || fail "no-uri: $push_rc $(cat "$tmp/push.err")"
ok "an envelope naming no integrated payload: refused by update push"
echo "PASS: $pass checks"
