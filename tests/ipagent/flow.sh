#!/usr/bin/env bash
# The whole IP flow with real components: m2mguard init, ca init, ca server,
# device add --ip --enrol-token, est run, Mosquitto with the m2mguard plugin
# (broker config). The agent generates its key, enrols by EST with the token,
# connects by mTLS, publishes telemetry (seen by an application's
# mosquitto_sub), gets `m2mguard send NAME unlock` over MQTT and completes it
# (receipt -> done), renews its certificate by simplereenroll (1-day
# certificates, --renew-at 0.0001: after 8.6 s)
# and reconnects with it while telemetry flows, losing none.
source "$(dirname "$0")/lib.sh"
ip_stack_setup all

"$bin" est run >> "$tmp/est.log" 2>&1 &
pids+=("$!")
wait_for 10 grep -q "listening on" "$tmp/est.log" || fail "EST server did not start"
mosquitto -c "$conf" >> "$tmp/mosquitto.out.log" 2>&1 &
pids+=("$!")
wait_for 10 grep -q "listen socket on port $mport" "$tmp/mosquitto.log" || fail "broker did not start"
mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/reader.crt" \
  --key "$tmp/reader.key" -i reader -q 1 -v -t 'm2m/+/up/telemetry' > "$tmp/tel.out" 2>> "$tmp/sub.log" &
pids+=("$!")
sleep 0.5

state=$tmp/meter-1.d
N=40
"$bin" agent run --mqtt "127.0.0.1:$mport" --est "https://127.0.0.1:$eport" --name meter-1 \
  --token-file "$tmp/meter-1.token" --cafile "$chain" --state-dir "$state" \
  --telemetry "kwh=1" --count $N --interval-ms 500 --renew-at 0.0001 \
  --output "$tmp/meter-1.jsonl" >> "$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for 20 grep -q "enrolled meter-1" "$tmp/agent.log" || fail "agent did not enrol"
[ "$(stat -c %a "$state/key.pem")" = 600 ] || fail "key.pem is not 0600"
openssl x509 -in "$state/cert.pem" -noout -subject | grep -q "CN *= *meter-1" || fail "certificate CN"
openssl verify -CAfile "$chain" "$state/cert.pem" > /dev/null || fail "certificate does not verify"
serial1=$(openssl x509 -in "$state/cert.pem" -noout -serial)
ok "agent generated its key (0600) and enrolled by EST with the token"
set +e
"$bin" agent run --mqtt "127.0.0.1:$mport" --est "https://127.0.0.1:$eport" --name meter-1 \
  --token-file "$tmp/meter-1.token" --cafile "$chain" --state-dir "$tmp/thief.d" \
  > /dev/null 2> "$tmp/thief.log"
rc=$?
set -e
[ $rc -eq 1 ] || fail "a second enrolment with the spent token: exit $rc"
grep -q "enrolment refused: EST simpleenroll: HTTP status 403" "$tmp/thief.log" || fail "reuse: $(cat "$tmp/thief.log")"
[ ! -e "$tmp/thief.d/cert.pem" ] || fail "a certificate was written for a spent token"
ok "the spent token does not enrol a second agent (403, exit 1, no certificate)"

wait_for 20 grep -q "connected to" "$tmp/agent.log" || fail "agent did not connect"
wait_for 20 has_line "$tmp/tel.out" "m2m/meter-1/up/telemetry kwh=1 seq=3" || fail "no telemetry at the reader"
ok "agent connected by mTLS; telemetry seen by the telemetry-reader application"

"$bin" send --wait 20 meter-1 unlock > "$tmp/send.out" 2>&1 || { cat "$tmp/send.out" >&2; fail "send --wait"; }
grep -q "on auto: unlock\|on mqtt: unlock" "$tmp/send.out" || fail "send did not say the bearer"
grep -q ": done.*(bearer mqtt)" "$tmp/send.out" || fail "command not done over mqtt: $(cat "$tmp/send.out")"
has_line "$tmp/meter-1.jsonl" '"bearer":"mqtt","command":"unlock"' || fail "unlock not executed"
ok "m2mguard send meter-1 unlock: sent over MQTT, receipt, done"
set +e
"$bin" send --bearer sms meter-1 unlock > /dev/null 2> "$tmp/send-sms.err"; rc1=$?
"$bin" send --tap meter-1 unlock > /dev/null 2> "$tmp/send-tap.err"; rc2=$?
"$bin" send --bearer pigeon meter-1 unlock > /dev/null 2>&1; rc3=$?
set -e
[ $rc1 -eq 1 ] && grep -q "has no SMS bearer" "$tmp/send-sms.err" || fail "--bearer sms to an IP-only device: $rc1"
[ $rc2 -eq 1 ] && grep -q "both bearers" "$tmp/send-tap.err" || fail "--tap to an IP-only device: $rc2"
[ $rc3 -eq 2 ] || fail "--bearer pigeon: exit $rc3"
ok "send refuses --bearer sms and --tap for an IP-only device, and an unknown bearer"

wait_for 40 grep -q "certificate renewed" "$tmp/agent.log" || fail "no renewal"
serial2=$(openssl x509 -in "$state/cert.pem" -noout -serial)
[ "$serial1" != "$serial2" ] || fail "the certificate did not change"
wait_for 20 has_line "$tmp/agent.log" "connected to" 2 || fail "no reconnection with the new certificate"
ok "renewed by simplereenroll ($serial1 -> $serial2) and reconnected with the new certificate"

wait_for 60 has_line "$tmp/tel.out" "kwh=1 seq=$N" || fail "telemetry did not finish"
for i in $(seq 1 $N); do
  has_line "$tmp/tel.out" "m2m/meter-1/up/telemetry kwh=1 seq=$i" || fail "telemetry $i lost"
done
ok "$N of $N telemetry messages arrived across $(count_lines "$tmp/agent.log" "certificate renewed") renewal(s)"

# SIGKILL of the agent after the command ran, before its receipt: it ran once
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
agent_args=(--mqtt "127.0.0.1:$mport" --est "https://127.0.0.1:$eport" --name meter-1 --cafile "$chain"
            --state-dir "$state" --output "$tmp/meter-1.jsonl")
M2MGUARD_AGENT_CRASH=executed "$bin" agent run "${agent_args[@]}" >> "$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
c=$(count_lines "$tmp/agent.log" "connected to")
wait_for 20 has_line "$tmp/agent.log" "connected to" $((c + 1)) || fail "agent did not connect"
set +e
"$bin" send --wait 20 meter-1 open > "$tmp/send2.out" 2>&1; rc=$?
set -e
wait_for 10 grep -q "crash hook at executed" "$tmp/agent.log" || fail "crash hook not reached"
wait "$agent_pid" 2>/dev/null || true
"$bin" agent run "${agent_args[@]}" >> "$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for 20 has_line "$tmp/agent.log" "connected to" $((c + 2)) || fail "agent did not reconnect"
sleep 1
[ "$(count_lines "$tmp/meter-1.jsonl" '"command":"open"')" -eq 1 ] || fail "open ran more than once"
grep -q "command 2: \(done\|timeout\)" "$tmp/send2.out" || fail "send after the crash: $(cat "$tmp/send2.out")"
ok "SIGKILL between running a command and its receipt: it ran once ($(sed -n 's/^command 2: //p' "$tmp/send2.out"))"
"$bin" send --wait 20 meter-1 close > "$tmp/send3.out" 2>&1 || fail "send after restart: $(cat "$tmp/send3.out")"
[ "$(count_lines "$tmp/meter-1.jsonl" '"command":"close"')" -eq 1 ] || fail "close not executed once"
ok "after the restart the next command runs and completes"
echo "PASS: $pass checks"
