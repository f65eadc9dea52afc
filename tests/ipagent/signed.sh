#!/usr/bin/env bash
# Signed commands over MQTT (issue 12) at the IP agent, with a real Mosquitto
# (TLS, client certificates; no plugin, so the test publishes on down/scmd
# itself) and commands signed by the m2mguard CLI (`cmd sign`, Ed25519 and
# ES256 keys from the openssl CLI): --anchors FILE; a signed unlock executed
# once with receipt ok; the same bytes under a new id refused seq_not_higher;
# unsigned unlock refused signature_required (policy signed=unlock); another
# device's, expired, unknown-kid and tampered commands refused with their
# reason; anchor-rotate by the current anchor, after which the old key is
# refused and the new one accepted; the sequence and the rotated anchor
# survive a restart (cmd.state); SIGKILL after the command is taken up: the
# redelivery runs it exactly once.
source "$(dirname "$0")/lib.sh"
mport=$(free_port)
openssl_pki dev-1 op1
start_mosquitto
state=$tmp/state
mkdir -m 700 "$state"
cp "$tmp/pki/dev-1.key" "$state/key.pem"
cp "$tmp/pki/dev-1.crt" "$state/cert.pem"
chmod 600 "$state"/*.pem

# operator keys: Ed25519 "ops" and its successor, ES256 "sec"
k=$tmp/keys
mkdir -m 700 "$k"
for n in ops ops2 rogue; do openssl genpkey -algorithm ed25519 -out "$k/$n.pem" 2>/dev/null; done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$k/sec.pem" 2>/dev/null
chmod 600 "$k"/*.pem
edpub() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n'; }
ecpub() { openssl pkey -in "$1" -pubout -outform DER | tail -c 65 | od -An -tx1 | tr -d ' \n'; }
cat > "$tmp/anchors" <<A
# signed-command provisioning of dev-1
anchor=ops:EdDSA:$(edpub "$k/ops.pem")
anchor=sec:ES256:$(ecpub "$k/sec.pem")
signed=unlock,reboot
two_signers=key-rotate
A

tls_sub op1 "$tmp/rcpt.out" 'm2m/dev-1/up/receipt'
sleep 0.5
run_agent() { # run_agent [ENV=VAL...] ARGS...
  env "$@" > /dev/null 2>> "$tmp/agent.log" &
  agent_pid=$!
  pids+=("$agent_pid")
}
agent_args=(--mqtt "127.0.0.1:$mport" --name dev-1 --cafile "$tmp/pki/ca.crt" --state-dir "$state"
            --output "$tmp/dev-1.jsonl" --anchors "$tmp/anchors")
# sign KEY KID SEQ CMD [ARGS [DEVICE [TTL]]]: the binary COSE in $tmp/c.N (N = a counter)
nc=0
sign() {
  nc=$((nc + 1)); cose=$tmp/c.$nc
  local a=()
  [ -n "${5:-}" ] && a=(--args "$5")
  "$bin" cmd sign --key "$1" --kid "$2" --seq "$3" --command "$4" "${a[@]}" \
    --device "${6:-dev-1}" --ttl "${7:-300}" --out "$cose" 2>> "$tmp/sign.log" || fail "cmd sign failed"
}
# scmd ID FILE: publish "<id> " + the COSE octets on down/scmd (binary, QoS 1)
scmd() {
  { printf '%s ' "$1"; cat "$2"; } > "$tmp/payload"
  mosquitto_pub -h 127.0.0.1 -p "$mport" --cafile "$tmp/pki/ca.crt" --cert "$tmp/pki/op1.crt" \
    --key "$tmp/pki/op1.key" -i op1-pub -q 1 -t m2m/dev-1/down/scmd -f "$tmp/payload"
}
receipt() { wait_for 10 has_line "$tmp/rcpt.out" "m2m/dev-1/up/receipt $1" || fail "no receipt '$1'"; }

run_agent "$bin" agent run "${agent_args[@]}"
wait_for 10 grep -q "connected to" "$tmp/agent.log" || fail "agent did not connect"
grep -q "2 trust anchor(s), signed sequence 0" "$tmp/agent.log" || fail "anchors not loaded"
sleep 0.3

# 1. a signed unlock: executed once, receipt ok, sequence persisted with the id
sign "$k/ops.pem" ops 5 unlock door=front
scmd 1 "$cose"
receipt "1 ok"
[ "$(count_lines "$tmp/dev-1.jsonl" '{"id":1,"bearer":"mqtt","command":"unlock door=front","signed":true}')" -eq 1 ] \
  || fail "signed unlock not recorded once"
grep -q '^signed_seq=5$' "$state/cmd.state" || fail "signed_seq not persisted"
ok "signed unlock (Ed25519) executed once, receipt ok, signed_seq=5 in cmd.state"

# 2. the same bytes under a new id: replay; ES256 with a higher sequence: accepted
scmd 2 "$cose"
receipt "2 fail seq_not_higher"
sign "$k/sec.pem" sec 6 reboot
scmd 3 "$cose"
receipt "3 ok"
ok "replayed bytes refused (seq_not_higher); ES256 command accepted"

# 3. refusals with their reason; nothing executed
tls_pub op1 m2m/dev-1/down/cmd "4 unlock"
receipt "4 fail signature_required"
tls_pub op1 m2m/dev-1/down/cmd "5 status"
receipt "5 ok"
sign "$k/ops.pem" ops 7 unlock "" dev-2
scmd 6 "$cose"; receipt "6 fail wrong_audience"
sign "$k/rogue.pem" other 7 unlock
scmd 7 "$cose"; receipt "7 fail unknown_kid"
sign "$k/rogue.pem" ops 7 unlock
scmd 8 "$cose"; receipt "8 fail bad_signature"
sign "$k/ops.pem" ops 7 key-rotate
scmd 9 "$cose"; receipt "9 fail too_few_signers"
sign "$k/ops.pem" ops 7 unlock "" dev-1 1
sleep 2.2
scmd 10 "$cose"; receipt "10 fail expired"
sign "$k/ops.pem" ops 7 unlock
python3 - "$cose" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-1] ^= 1; open(p, 'wb').write(b)
PY
scmd 11 "$cose"; receipt "11 fail bad_signature"
[ "$(count_lines "$tmp/dev-1.jsonl" '"id":')" -eq 3 ] || fail "a refused command was executed"
ok "refused: unsigned unlock, other device, unknown kid, wrong key, one of two signers, expired, tampered"

# 4. anchor-rotate by the current anchor: the old key is refused, the new one accepted
sign "$k/ops.pem" ops 8 anchor-rotate "ops:EdDSA:$(edpub "$k/ops2.pem")"
scmd 12 "$cose"; receipt "12 ok"
sign "$k/ops.pem" ops 9 unlock
scmd 13 "$cose"; receipt "13 fail bad_signature"
sign "$k/ops2.pem" ops 9 unlock
scmd 14 "$cose"; receipt "14 ok"
grep -q "^anchor=ops:EdDSA:$(edpub "$k/ops2.pem")\$" "$state/cmd.state" || fail "rotated anchor not persisted"
ok "anchor-rotate: old key refused, new key accepted, the anchor kept in cmd.state"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true

# 5. after a restart: the rotated anchor and the sequence stay
run_agent "$bin" agent run "${agent_args[@]}"
wait_for 10 has_line "$tmp/agent.log" "connected to" 2 || fail "agent did not reconnect"
grep -q "2 trust anchor(s), signed sequence 9" "$tmp/agent.log" || fail "trust not restored"
sleep 0.3
sign "$k/ops.pem" ops 10 unlock
scmd 15 "$cose"; receipt "15 fail bad_signature"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
ok "restart: sequence 9 and the rotated anchor restored"

# 6. SIGKILL after the signed command is taken up: the redelivery runs it once
run_agent M2MGUARD_AGENT_CRASH=persisted "$bin" agent run "${agent_args[@]}"
wait_for 10 has_line "$tmp/agent.log" "connected to" 3 || fail "agent did not connect"
sleep 0.3
sign "$k/ops2.pem" ops 11 unlock door=back
scmd 16 "$cose"
wait_for 10 grep -q "crash hook at persisted" "$tmp/agent.log" || fail "crash hook not reached"
wait "$agent_pid" 2>/dev/null || true
grep -q '^signed_seq=11$' "$state/cmd.state" || fail "sequence not persisted before the crash"
run_agent "$bin" agent run "${agent_args[@]}"
wait_for 10 has_line "$tmp/agent.log" "connected to" 4 || fail "agent did not reconnect"
sleep 0.3
scmd 16 "$cose" # the backend sends it again
receipt "16 ok"
[ "$(count_lines "$tmp/dev-1.jsonl" '{"id":16,')" -eq 1 ] || fail "command 16 ran more than once"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
ok "SIGKILL after taking up signed command 16: ran exactly once after the restart"

# 7. --anchors with a bad line: exit 3
printf 'anchor=ops:RS256:00\n' > "$tmp/bad.anchors"
set +e
"$bin" agent run --mqtt "127.0.0.1:$mport" --name dev-1 --cafile "$tmp/pki/ca.crt" \
  --state-dir "$state" --anchors "$tmp/bad.anchors" 2> "$tmp/bad.err"; rc=$?
set -e
[ $rc -eq 3 ] || fail "bad --anchors: exit $rc"
ok "a bad anchors file is refused (exit 3)"
echo "PASS: $pass checks"
