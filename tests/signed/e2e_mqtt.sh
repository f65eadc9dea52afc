#!/usr/bin/env bash
# Signed commands end to end over MQTT: CA + EST + Mosquitto with the m2mguard
# plugin + the IP agent (--anchors). An `unlock` signed by an authorised
# operator (PEM key, and a key inside a SoftHSM2 token) is published on
# m2m/NAME/down/scmd and opens the door once each; unsigned, wrong role,
# unknown key and a single signer for a critical command are refused by the
# plugin (event cmd_policy_refused, bearer mqtt) and never published; nobody
# but the plugin can publish under down/ (a direct publish to down/scmd by an
# operator application is refused: mqtt_acl_deny). The two-person rule holds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/token.sh"
events_has() { "$bin" events | awk -F'\t' -v k="$1" -v s="$2" '$5 == k && index($0, s) { f = 1 } END { exit !f }'; }
count_events() { "$bin" events --json | grep "\"kind\":\"$1\"" | grep -c -- "${2:-}" || true; }
unlocks() { grep -c '"command":"unlock"' "$tmp/lock-9.jsonl" 2> /dev/null || true; }

export M2MGUARD_HOME=$tmp/home
"$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
"$bin" ca init > "$tmp/ca.log"
ca=$M2MGUARD_HOME/ca
est_port=$(free_port)
mqtt_port=$(free_port)
"$bin" ca server est --dns localhost --ip 127.0.0.1 --key-out "$M2MGUARD_HOME/est-server.key" \
  --out "$M2MGUARD_HOME/est-server.crt" >> "$tmp/ca.log"
"$bin" est run --listen "127.0.0.1:$est_port" > "$tmp/est.log" 2>&1 &
pids+=("$!")
wait_for 20 grep -q "est: listening" "$tmp/est.log" || fail "the EST server did not start"
# the policy, read by the plugin when the broker starts
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
"$bin" broker config --port "$mqtt_port" --out "$tmp/mosquitto.conf" >> "$tmp/ca.log" 2>&1
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 &
pids+=("$!")
wait_for 20 grep -q "mosquitto version .* running" "$tmp/mosquitto.log" || fail "mosquitto did not start"
ok "CA, EST server and mosquitto with the plugin up"

new_token ops
token_key ops op2 02
op2_uri=$(token_uri ops op2)
for k in op1 intern sec1 rogue intern2; do es256_key "$k"; done
# the anchor-rotate arguments: intern's anchor gets a new key
rot="intern:ES256:$(pubhex intern2)"
run 0 signer add op1 --role operator --pub "$tmp/op1.pub"
run 0 signer add op2 --role operator --pub "$tmp/op2.pub"
run 0 signer add intern --role viewer --pub "$tmp/intern.pub"
run 0 signer add sec1 --role security --pub "$tmp/sec1.pub"
anchors=()
for k in op1 op2 intern sec1; do anchors+=(--anchor "$k:ES256:$(pubhex "$k")"); done
tok=$("$bin" device add lock-9 --ip --enrol-token --class door-lock "${anchors[@]}" \
  --signed unlock,anchor-rotate --two-signers anchor-rotate | sed -n 's/^enrol-token: //p')
[ ${#tok} -eq 32 ] || fail "no enrolment token"
[ -f "$M2MGUARD_HOME/devices/lock-9.anchors" ] || fail "no lock-9.anchors"
mkdir -m 700 "$tmp/lock-9"
"$bin" agent run --mqtt "127.0.0.1:$mqtt_port" --est "https://127.0.0.1:$est_port" --name lock-9 \
  --token "$tok" --cafile "$ca/chain.pem" --state-dir "$tmp/lock-9" \
  --anchors "$M2MGUARD_HOME/devices/lock-9.anchors" --output "$tmp/lock-9.jsonl" > "$tmp/lock-9.log" 2>&1 &
pids+=("$!")
wait_for 30 grep -q "^agent: connected" "$tmp/lock-9.log" || fail "lock-9 did not connect"
ok "lock-9 enrolled by EST and connected by mTLS, 4 anchors"

# ---- authorised --------------------------------------------------------------------
run 0 send --wait 20 --bearer mqtt --sign "$tmp/op1.key" --kid op1 lock-9 unlock
has "op1's signed unlock done over MQTT" "$out" "done.*mqtt"
wait_cond 10 '[ "$(unlocks)" -eq 1 ]' || fail "lock-9 unlocked $(unlocks) times"
ok "unlock signed by op1 (PEM) opened lock-9 over MQTT"
run 0 send --wait 20 --bearer mqtt --sign "$op2_uri" --kid op2 lock-9 unlock
has "op2's signed unlock done over MQTT" "$out" "done.*mqtt"
wait_cond 10 '[ "$(unlocks)" -eq 2 ]' || fail "lock-9 unlocked $(unlocks) times"
ok "unlock signed by op2 (key in the token) opened lock-9 over MQTT"

# ---- refused by the plugin -----------------------------------------------------------
refused_at_plugin() { # WHAT REASON_REGEX send-args...
  local what=$1 re=$2; shift 2
  local before; before=$(count_events cmd_policy_refused)
  set +e; "$bin" send --wait 20 --bearer mqtt "$@" > "$out" 2>&1; set -e
  wait_cond 10 '[ "$(count_events cmd_policy_refused)" -gt "$before" ]' || fail "$what: no cmd_policy_refused ($(cat "$out"))"
  "$bin" events --json | grep '"kind":"cmd_policy_refused"' | tail -n 1 > "$tmp/last"
  grep -E -- "$re" "$tmp/last" > /dev/null || fail "$what: $(cat "$tmp/last")"
  grep -E '"bearer":"mqtt"' "$tmp/last" > /dev/null || fail "$what: not refused by the plugin: $(cat "$tmp/last")"
  grep -E "fail" "$out" > /dev/null || fail "$what: send says $(cat "$out")"
  ok "$what: refused by the plugin ($(sed 's/.*"reason":"\([^"]*\)".*/\1/' "$tmp/last"))"
}
refused_at_plugin "unsigned unlock" "unsigned|signature" lock-9 unlock
refused_at_plugin "unlock signed by intern (role viewer)" "role" --sign "$tmp/intern.key" --kid intern lock-9 unlock
set +e; "$bin" send --sign "$tmp/rogue.key" --kid rogue lock-9 unlock > "$out" 2>&1; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "unregistered key: send queued it"
has "unlock signed by an unregistered key: refused by send, nothing queued" "$out" "no signer 'rogue'"
run 0 signer add temp --role operator --pub "$tmp/rogue.pub"
run 0 signer revoke temp
refused_at_plugin "unlock signed by a revoked operator key" "revoked" --sign "$tmp/rogue.key" --kid temp lock-9 unlock
refused_at_plugin "anchor-rotate with one signer" "critical|two|signer" --sign "$tmp/op1.key" --kid op1 lock-9 anchor-rotate "$rot"
sleep 1
[ "$(unlocks)" -eq 2 ] || fail "a refused command reached lock-9"

# ---- nobody but the plugin publishes under down/ ------------------------------------
"$bin" app add ops --role operator > /dev/null
"$bin" ca issue --app ops --genkey --key-out "$tmp/ops.key" --out "$tmp/ops.crt" > /dev/null
good=$("$bin" cmd sign --key "$tmp/op1.key" --kid op1 --device lock-9 --seq 1000000 --command unlock)
printf '9000 ' > "$tmp/scmd.bin"
printf '%s' "$good" | xxd -r -p >> "$tmp/scmd.bin"
mosquitto_pub --cafile "$ca/chain.pem" --cert "$tmp/ops.crt" --key "$tmp/ops.key" -h 127.0.0.1 -p "$mqtt_port" \
  -i ops -q 1 -t m2m/lock-9/down/scmd -f "$tmp/scmd.bin" > "$tmp/pub.log" 2>&1 || true
wait_for 10 events_has mqtt_acl_deny m2m/lock-9/down/scmd || fail "no mqtt_acl_deny for the direct publish"
sleep 1
[ "$(unlocks)" -eq 2 ] || fail "the direct publish to down/scmd reached lock-9"
ok "a valid signed command published directly on down/scmd by an application: refused (mqtt_acl_deny)"

# ---- two-person rule -----------------------------------------------------------------
run 0 send --wait 20 --bearer mqtt --sign "$tmp/op1.key" --kid op1 --sign "$tmp/sec1.key" --kid sec1 lock-9 anchor-rotate "$rot"
has "anchor-rotate by op1 + sec1 done" "$out" "done.*mqtt"
wait_for 10 grep -q 'anchor-rotate applied' "$tmp/lock-9.log" || fail "lock-9 did not apply anchor-rotate"
ok "anchor-rotate signed by two roles (COSE_Sign) applied by lock-9 over MQTT"
echo "e2e_mqtt: $pass checks passed"
