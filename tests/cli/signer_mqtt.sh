#!/usr/bin/env bash
# Signed commands over MQTT through the real broker (Mosquitto + the m2mguard
# plugin, tests/mqtt/lib.sh): a command signed by two roles is published on
# m2m/NAME/down/scmd as "<id> " + its COSE bytes (unchanged); one signed by a
# single role is refused by the plugin's policy check (FAILED, event
# cmd_policy_refused on bearer mqtt) and never published.
# usage: signer_mqtt.sh M2MGUARD_BIN  (the plugin is found beside it)
set -euo pipefail
plugin=$(dirname "$1")/m2mguard_mosquitto.so
if [ ! -f "$plugin" ] || ! command -v mosquitto_sub > /dev/null ||
   { ! command -v mosquitto > /dev/null && [ ! -x /usr/sbin/mosquitto ]; }; then
  echo "SKIP: no broker plugin or no mosquitto" >&2
  echo "0 passed, 0 failed"
  exit 0
fi
export PATH=$PATH:/usr/sbin # after a sanitizer wrapper that may come first (tests/CMakeLists.txt)
set -- "$1" "$plugin"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/mqtt/lib.sh"
setup
new_device dev1
for k in alice bob; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$k.pem" 2>/dev/null
  chmod 600 "$tmp/$k.pem"
done
"$bin" signer add alice --role operator --key "$tmp/alice.pem" >> "$tmp/init.log"
"$bin" signer add bob --role security --key "$tmp/bob.pem" >> "$tmp/init.log"
cat > "$M2MGUARD_HOME/policy.yaml" <<'YAML'
rules:
  - command: unlock
    roles: [operator, security]
    critical: true
YAML
start_broker
wait_for 10 grep -q "policy .*policy.yaml (1 rules)" "$tmp/broker.log" || fail "plugin did not load the policy"
ok "plugin loaded WORKDIR/policy.yaml beside the store"

# the device waits on down/scmd (payload printed as hex)
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/dev1.crt" --key "$tmp/dev1.key" \
  -i dev1 -q 1 -t m2m/dev1/down/scmd -C 1 -W 20 -F '%x' > "$tmp/dev1.scmd" 2>> "$tmp/dev1.sub.log" &
sub_pid=$!
pids+=("$sub_pid")
wait_for 5 grep -q "Sending SUBACK to dev1" "$tmp/broker.log" || fail "dev1 did not subscribe"

# one role: refused by the plugin, nothing published
out=$("$bin" send --sign "$tmp/alice.pem" dev1 unlock)
one=$(sed -n 's/^command \([0-9]*\) queued.*/\1/p' <<<"$out")
wait_for 10 has_event cmd_policy_refused "command $one: critical_needs_two_roles" || fail "no refusal for $one"
has_event cmd_policy_refused '"bearer":"mqtt"' || fail "refusal not on bearer mqtt"
st=$(sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT state || ' ' || detail FROM commands WHERE id=$one")
case "$st" in "3 policy: critical_needs_two_roles"*) ;; *) fail "command $one: $st" ;; esac
ok "one signer: refused by the plugin (FAILED, cmd_policy_refused on mqtt)"

# two roles: published on down/scmd as "<id> " + the stored COSE bytes
out=$("$bin" send --sign "$tmp/alice.pem" --sign "$tmp/bob.pem" dev1 unlock)
two=$(sed -n 's/^command \([0-9]*\) queued.*/\1/p' <<<"$out")
wait "$sub_pid" || fail "dev1 received no signed command"
cose=$(sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT lower(hex(cose)) FROM command_sigs WHERE command_id=$two")
want=$(printf '%s ' "$two" | od -An -tx1 | tr -d ' \n')$cose
got=$(tr -d '\n' < "$tmp/dev1.scmd")
[ "$got" = "$want" ] || fail "down/scmd payload: got $got want $want"
case "$cose" in d862*) ;; *) fail "not a COSE_Sign: $cose" ;; esac
has_event cmd_sent "command $two sent on m2m/dev1/down/scmd" || fail "no cmd_sent event"
ok "two signers: published on m2m/dev1/down/scmd as '<id> ' + COSE_Sign bytes"
echo "$pass passed, 0 failed"
