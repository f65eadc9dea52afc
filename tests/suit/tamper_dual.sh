#!/usr/bin/env bash
# Tamper response of a dual-bearer device (--prov with --mqtt; issue 14): the
# real SMSC (npm smpp) and the gateway, Mosquitto with the plugin. SIGUSR1:
# both sides raise their alarm before the agent stops (event tamper on
# bearer sms and on bearer mqtt, both authenticated); the SMS keys (.prov and
# state) and the IP key are gone; the agent refuses to start again.
source "$(dirname "$0")/../gateway/lib.sh"
new_workdir
start_smsc
"$bin" ca init --days 1 >> "$tmp/init.log" 2>&1
chain=$M2MGUARD_HOME/ca/chain.pem
mport=$(free_port)
conf=$tmp/broker.conf
"$bin" broker config --port "$mport" --out "$conf" >> "$tmp/init.log" 2>&1
sed -i 's/^plugin_opt_poll_ms .*/plugin_opt_poll_ms 200/' "$conf"
printf 'log_dest file %s\nlog_type error\nlog_type notice\n' "$tmp/mosquitto.log" >> "$conf"
"$bin" device add dual-1 --msisdn +4915500000042 --ip >> "$tmp/init.log" 2>&1
mkdir -m 700 "$tmp/dual-1.d"
"$bin" ca issue dual-1 --genkey --key-out "$tmp/dual-1.d/key.pem" --out "$tmp/dual-1.d/cert.pem" >> "$tmp/init.log" 2>&1
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
mosquitto -c "$conf" >> "$tmp/mosquitto.out.log" 2>&1 &
pids+=("$!")
wait_for 10 grep -q "plugin ready" "$tmp/mosquitto.log" || fail "broker did not start"
prov=$M2MGUARD_HOME/devices/dual-1.prov
M2MGUARD_SMSC_PASSWORD=$password "$bin" agent run --prov "$prov" --smsc "127.0.0.1:$port" \
  --mqtt "127.0.0.1:$mport" --cafile "$chain" --state-dir "$tmp/dual-1.d" \
  --output "$tmp/dual-1.jsonl" >> "$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for 20 grep -q "connected to" "$tmp/agent.log" || fail "IP side did not connect"
sleep 1 # (the SMS side binds at once; its alarm waits for the link anyway)
ok "dual-bearer agent: SMS side and IP side up"

kill -USR1 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
grep -q "tamper alarm sent; keys and counters wiped" "$tmp/agent.log" || fail "SMS side: no alarm/wipe"
grep -q "tamper alarm acknowledged by the broker" "$tmp/agent.log" || fail "IP side: no alarm"
auth() { sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
  "SELECT count(*) FROM events WHERE kind = 'tamper' AND auth = 1 AND bearer = '$1'"; }
wait_for 10 test "$(auth sms)" -eq 1 || fail "no authenticated tamper event over SMS"
wait_for 10 test "$(auth mqtt)" -eq 1 || fail "no authenticated tamper event over MQTT"
ok "SIGUSR1: both bearers raised the alarm (tamper events on sms and mqtt, authenticated)"
grep -q "dual-1.prov destroyed (tamper response)" "$tmp/agent.log" || fail ".prov not destroyed"
[ ! -e "$tmp/dual-1.d/key.pem" ] && [ -e "$tmp/dual-1.d/tampered" ] || fail "IP key left"
set +e
M2MGUARD_SMSC_PASSWORD=$password "$bin" agent run --prov "$prov" --smsc "127.0.0.1:$port" \
  --mqtt "127.0.0.1:$mport" --cafile "$chain" --state-dir "$tmp/dual-1.d" > /dev/null 2> "$tmp/again.log"; rc=$?
set -e
[ $rc -eq 3 ] && grep -q "refuses to operate until re-provisioned" "$tmp/again.log" || fail "restart: $rc $(cat "$tmp/again.log")"
ok "keys wiped on both sides (.prov destroyed, key.pem gone); the restart is refused (exit 3)"
echo "PASS: $pass checks"
