#!/usr/bin/env bash
# The IP agent against a real Mosquitto (TLS, client certificates required;
# certificates made with the openssl CLI, no m2mguard CA or plugin): mTLS
# connection with a pre-provisioned key and certificate, telemetry seen by an
# application's mosquitto_sub, commands and receipts by the MQTT profile,
# redelivery answered without running again, stale and malformed commands,
# SIGKILL between taking a command up and its receipt (runs once), and a
# broker restart in the middle of the telemetry (nothing lost).
source "$(dirname "$0")/lib.sh"
mport=$(free_port)
openssl_pki dev-1 app1 op1
start_mosquitto
state=$tmp/state
mkdir -m 700 "$state"
cp "$tmp/pki/dev-1.key" "$state/key.pem"
cp "$tmp/pki/dev-1.crt" "$state/cert.pem"
chmod 600 "$state"/*.pem

tls_sub app1 "$tmp/tel.out" 'm2m/dev-1/up/telemetry'
tls_sub op1 "$tmp/rcpt.out" 'm2m/dev-1/up/receipt'
sleep 0.5

run_agent() { # run_agent [ENV=VAL...] ARGS...
  env "$@" > /dev/null 2>> "$tmp/agent.log" &
  agent_pid=$!
  pids+=("$agent_pid")
}
agent_args=(--mqtt "127.0.0.1:$mport" --name dev-1 --cafile "$tmp/pki/ca.crt" --state-dir "$state"
            --output "$tmp/dev-1.jsonl")

# 1. telemetry: 5 messages, acknowledged, seen by the application
"$bin" agent run "${agent_args[@]}" --telemetry "temp=20C" --count 5 --interval-ms 50 \
  --exit-when-done 2>> "$tmp/agent.log" || fail "agent with --exit-when-done failed"
wait_for 10 has_line "$tmp/tel.out" "seq=5" || fail "telemetry not seen by the application"
for i in 1 2 3 4 5; do
  has_line "$tmp/tel.out" "m2m/dev-1/up/telemetry temp=20C seq=$i" || fail "telemetry $i missing"
done
ok "5 telemetry messages over mTLS seen by an application's subscriber"

# 2. a command: executed once, receipt "<id> ok"
run_agent "$bin" agent run "${agent_args[@]}"
wait_for 10 grep -q "connected to" "$tmp/agent.log" || fail "agent did not connect"
sleep 0.3
tls_pub op1 m2m/dev-1/down/cmd "7 unlock"
wait_for 10 has_line "$tmp/rcpt.out" "m2m/dev-1/up/receipt 7 ok" || fail "no receipt for 7"
[ "$(count_lines "$tmp/dev-1.jsonl" '{"id":7,"bearer":"mqtt","command":"unlock"}')" -eq 1 ] \
  || fail "command 7 not recorded once"
grep -q '^last_cmd_id=7$' "$state/cmd.state" || fail "cmd.state does not hold 7"
[ "$(stat -c %a "$state/cmd.state")" = 600 ] || fail "cmd.state is not 0600"
ok "command 7 executed, receipt '7 ok', last id persisted (0600)"

# 3. redelivery of 7: receipt again, not executed again; stale 5: fail; garbage: ignored
tls_pub op1 m2m/dev-1/down/cmd "7 unlock"
wait_for 10 has_line "$tmp/rcpt.out" "m2m/dev-1/up/receipt 7 ok" 2 || fail "no second receipt for 7"
tls_pub op1 m2m/dev-1/down/cmd "5 open"
wait_for 10 has_line "$tmp/rcpt.out" "m2m/dev-1/up/receipt 5 fail stale" || fail "no fail receipt for 5"
tls_pub op1 m2m/dev-1/down/cmd "007 x"
tls_pub op1 m2m/dev-1/down/cmd "9"
wait_for 10 grep -q "malformed command" "$tmp/agent.log" || fail "malformed command not reported"
[ "$(count_lines "$tmp/dev-1.jsonl" '"id":')" -eq 1 ] || fail "something else was executed"
ok "redelivered id answered again without running; stale id fails; malformed payloads refused"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true

# 4. SIGKILL after the command is taken up (persisted) and after it ran (before the receipt)
n=10
for where in persisted executed; do
  run_agent M2MGUARD_AGENT_CRASH=$where "$bin" agent run "${agent_args[@]}"
  wait_for 10 has_line "$tmp/agent.log" "connected to" $((n - 8)) || fail "agent did not connect"
  sleep 0.3
  tls_pub op1 m2m/dev-1/down/cmd "$n valve-$where"
  wait_for 10 grep -q "crash hook at $where" "$tmp/agent.log" || fail "crash hook $where not reached"
  wait "$agent_pid" 2>/dev/null || true
  grep -q "^last_cmd_id=$n\$" "$state/cmd.state" || fail "id $n not persisted before the crash"
  run_agent "$bin" agent run "${agent_args[@]}"
  wait_for 10 has_line "$tmp/agent.log" "connected to" $((n - 7)) || fail "agent did not reconnect"
  sleep 0.3
  tls_pub op1 m2m/dev-1/down/cmd "$n valve-$where" # the backend sends it again
  wait_for 10 has_line "$tmp/rcpt.out" "m2m/dev-1/up/receipt $n ok" || fail "no receipt for $n"
  [ "$(count_lines "$tmp/dev-1.jsonl" "{\"id\":$n,")" -eq 1 ] || fail "command $n ran more than once"
  kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
  ok "SIGKILL after '$where': command $n ran exactly once and got its receipt after the restart"
  n=$((n + 1))
done

# 5. broker restart while telemetry flows: every message arrives (at least once)
: > "$tmp/tel.out"
run_agent "$bin" agent run "${agent_args[@]}" --telemetry "flow" --count 30 --interval-ms 100 \
  --exit-when-done
sleep 1
stop_mosquitto
sleep 1.5
start_mosquitto
wait "$agent_pid" || fail "agent did not finish after the broker restart"
wait_for 15 has_line "$tmp/tel.out" "flow seq=30" || fail "last telemetry missing"
for i in $(seq 1 30); do
  has_line "$tmp/tel.out" "m2m/dev-1/up/telemetry flow seq=$i" || fail "telemetry $i lost"
done
grep -q "connection lost\|cannot connect" "$tmp/agent.log" || fail "the broker restart was not noticed"
ok "broker restarted mid-stream: 30 of 30 telemetry messages arrived"

# 6. the wrong CA for the broker: refused, no connection
before=$(count_lines "$tmp/agent.log" "connected to")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=other" \
  -keyout "$tmp/other.key" -out "$tmp/other.crt" 2>/dev/null
run_agent "$bin" agent run --mqtt "127.0.0.1:$mport" --name dev-1 --cafile "$tmp/other.crt" \
  --state-dir "$state" --output "$tmp/dev-1.jsonl"
wait_for 10 grep -q "certificate verify failed" "$tmp/agent.log" || fail "no verification failure"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
c=$(count_lines "$tmp/agent.log" "connected to")
[ "$c" -eq "$before" ] || fail "agent connected to a broker it cannot verify ($c connections)"
ok "a broker certificate of another CA is refused"

# 7. usage
set +e
"$bin" agent run --mqtt 127.0.0.1:1 --name dev-1 2> "$tmp/usage.err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "missing --cafile/--state-dir: exit $rc"
ok "usage errors exit 2"
echo "PASS: $pass checks"
