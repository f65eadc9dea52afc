#!/usr/bin/env bash
# Figures of the IP agent with the real EST server and Mosquitto with the
# plugin (rate limit lifted): time of a first start (key generation, /cacerts,
# simpleenroll, mTLS connection, one QoS 1 message acknowledged) and QoS 1
# telemetry throughput of one agent (connection included), every message
# checked at an application's subscriber.
source "$(dirname "$0")/lib.sh"
ip_stack_setup error warning notice information
"$bin" est run >> "$tmp/est.log" 2>&1 &
pids+=("$!")
wait_for 10 grep -q "listening on" "$tmp/est.log" || fail "EST server did not start"
sed -i 's/^plugin_opt_rate .*/plugin_opt_rate 100000/; s/^plugin_opt_burst .*/plugin_opt_burst 100000/' "$conf"
mosquitto -c "$conf" >> "$tmp/mosquitto.out.log" 2>&1 &
pids+=("$!")
wait_for 10 grep -q "listen socket on port $mport" "$tmp/mosquitto.log" || fail "broker did not start"
t0=$(date +%s.%N)
"$bin" agent run --mqtt "127.0.0.1:$mport" --est "https://127.0.0.1:$eport" --name meter-1 \
  --token-file "$tmp/meter-1.token" --cafile "$chain" --state-dir "$tmp/st" --count 1 --interval-ms 0 \
  --exit-when-done 2>> "$tmp/agent.log"
t1=$(date +%s.%N)
echo "first start (keygen + cacerts + simpleenroll + mTLS connect + 1 QoS1 publish acked): $(python3 -c "print(round($t1 - $t0, 3))") s"
mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/reader.crt" \
  --key "$tmp/reader.key" -i reader -q 1 -t 'm2m/+/up/telemetry' > "$tmp/tel.out" 2>> "$tmp/sub.log" &
pids+=("$!")
sleep 0.5
for n in 5000; do
  t0=$(date +%s.%N)
  "$bin" agent run --mqtt "127.0.0.1:$mport" --name meter-1 --cafile "$chain" --state-dir "$tmp/st" \
    --count $n --interval-ms 0 --exit-when-done 2>> "$tmp/agent.log"
  t1=$(date +%s.%N)
  echo "$n QoS 1 telemetry messages acked (connect included): $(python3 -c "print(round($t1 - $t0, 3))") s = $(python3 -c "print(int($n / ($t1 - $t0)))") msg/s"
done
sleep 1
got=$(wc -l < "$tmp/tel.out")
[ "$got" -ge 5000 ] || fail "the application received $got of 5000"
ok "the application received all 5000 messages ($got lines)"
