#!/usr/bin/env bash
# Broker access control (issue 10, bad-input list): publish into another
# device's topic, subscribe '#', 'm2m/+/down/cmd', another device's topic,
# '$SYS/#'; application roles; oversized payload; a flood (rate limit and a
# bounded number of events). Real Mosquitto with the plugin, mosquitto_pub /
# mosquitto_sub and MQTT.js (MQTT 5: a refused publish gets "Not authorized").
# usage: acl.sh M2MGUARD_BIN PLUGIN_SO
source "$(dirname "$0")/lib.sh"
setup
set_opt max_payload 1024
set_opt rate 5
set_opt burst 10
new_device dev1
new_device dev2
new_app ops operator
new_app reader telemetry-reader
start_broker

# an operator sees everything devices publish under up/ (the witness)
msub_bg ops ops-w "$tmp/ops.out" 'm2m/+/up/#'
witness=$sub_pid
sleep 0.5

# publish: own up/ leaves yes; another device's topic, down/, unknown leaves no
out=$(peer dev1 dev1 --v5 --pub m2m/dev1/up/telemetry=own --pub m2m/dev2/up/telemetry=forged \
  --pub m2m/dev1/down/cmd=1_x --pub m2m/dev2/down/cmd=1_x --pub m2m/dev1/up/other=x \
  --pub 'm2m/dev1/up/../x=x' --pub '$SYS/broker/x=x')
grep -q '^pub-ok m2m/dev1/up/telemetry$' <<<"$out" || fail "own telemetry refused: $out"
for t in m2m/dev2/up/telemetry m2m/dev1/down/cmd m2m/dev2/down/cmd m2m/dev1/up/other \
         m2m/dev1/up/../x '$SYS/broker/x'; do
  grep -q "^pub-denied $t .*[Nn]ot authorized" <<<"$out" || fail "publish to $t not refused: $out"
done
mpub dev1 dev1 m2m/dev2/up/receipt '1 ok'  # v3.1.1: acknowledged, dropped
sleep 0.5
grep -q '^m2m/dev1/up/telemetry own$' "$tmp/ops.out" || fail "witness missed own telemetry"
grep -q 'forged\|m2m/dev2' "$tmp/ops.out" && fail "a forged message got through: $(cat "$tmp/ops.out")"
has_event mqtt_acl_deny "publish m2m/dev2/up/telemetry denied" || fail "no acl_deny event"
ok "device publishes only its own up/telemetry and up/receipt"

# a will into another device's topic is refused too (checked as a publish)
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/dev1.crt" --key "$tmp/dev1.key" \
  -i dev1 -t m2m/dev1/down/cmd --will-topic m2m/dev2/up/telemetry --will-payload forged-will \
  --will-qos 1 > /dev/null 2>> "$tmp/sub.log" &
wp=$!; pids+=("$wp")
sleep 1
kill -9 "$wp" 2>/dev/null || true
sleep 1
grep -q 'forged-will' "$tmp/ops.out" && fail "a will into dev2's topic was delivered"
# control: a will into its own telemetry is delivered
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/dev1.crt" --key "$tmp/dev1.key" \
  -i dev1 -t m2m/dev1/down/cmd --will-topic m2m/dev1/up/telemetry --will-payload own-will \
  --will-qos 1 > /dev/null 2>> "$tmp/sub.log" &
wp=$!; pids+=("$wp")
sleep 1
kill -9 "$wp" 2>/dev/null || true
wait_for 5 grep -q '^m2m/dev1/up/telemetry own-will$' "$tmp/ops.out" || fail "control: own will not delivered"
ok "a will into another device's topic is not delivered (own will is)"

# subscribe: only its own down/cmd, no wildcard
out=$(peer dev1 dev1 --sub m2m/dev1/down/cmd --sub '#' --sub 'm2m/+/down/cmd' --sub m2m/dev2/down/cmd \
  --sub 'm2m/dev1/down/#' --sub '$SYS/#' --sub m2m/dev1/up/telemetry --sub m2m/dev2/up/telemetry)
grep -q '^suback m2m/dev1/down/cmd 1$' <<<"$out" || fail "own down/cmd refused: $out"
for f in '#' 'm2m/+/down/cmd' m2m/dev2/down/cmd 'm2m/dev1/down/#' '$SYS/#' m2m/dev1/up/telemetry \
         m2m/dev2/up/telemetry; do
  grep -q "^suback $f 128$" <<<"$out" || fail "subscription $f not refused: $out"
done
has_event mqtt_acl_deny "subscribe # denied" || fail "no event for subscribe #"
ok "device subscribes only m2m/dev1/down/cmd (#, m2m/+/down/cmd, others refused)"

# mosquitto_sub with '#' gets nothing even when someone publishes
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/dev2.crt" --key "$tmp/dev2.key" \
  -i dev2 -q 1 -t '#' -v -W 2 > "$tmp/dev2-all.out" 2>> "$tmp/sub.log" || true &
sp=$!; pids+=("$sp")
sleep 0.5
mpub dev1 dev1 m2m/dev1/up/telemetry secret-telemetry
wait "$sp" || true
[ -s "$tmp/dev2-all.out" ] && fail "dev2 subscribed to # received: $(cat "$tmp/dev2-all.out")"
ok "mosquitto_sub -t '#' as a device: receives nothing"

# applications: roles
out=$(peer reader reader-1 --sub m2m/+/up/telemetry --sub 'm2m/+/up/#' --sub m2m/+/up/receipt \
  --sub 'm2m/+/down/cmd' --sub '#' --v5 --pub m2m/dev1/down/cmd=9_reboot --pub m2m/dev1/up/telemetry=x)
grep -q '^suback m2m/+/up/telemetry 1$' <<<"$out" || fail "reader: telemetry refused: $out"
for f in 'm2m/+/up/#' m2m/+/up/receipt 'm2m/+/down/cmd' '#'; do
  grep -q "^suback $f 128$" <<<"$out" || fail "reader: $f not refused: $out"
done
grep -q '^pub-denied m2m/dev1/down/cmd' <<<"$out" || fail "reader published a command: $out"
grep -q '^pub-denied m2m/dev1/up/telemetry' <<<"$out" || fail "reader published telemetry: $out"
out=$(peer ops ops-2 --sub 'm2m/+/up/#' --sub 'm2m/+/down/cmd' --sub '#' --v5 --pub m2m/dev1/down/cmd=9_reboot)
grep -q '^suback m2m/+/up/# 1$' <<<"$out" || fail "operator: up/# refused: $out"
grep -q '^suback m2m/+/down/cmd 128$' <<<"$out" || fail "operator: down/cmd not refused: $out"
grep -q '^suback # 128$' <<<"$out" || fail "operator: # not refused: $out"
grep -q '^pub-denied m2m/dev1/down/cmd' <<<"$out" || fail "operator published a command: $out"
ok "roles: telemetry-reader m2m/+/up/telemetry, operator m2m/+/up/#; nobody publishes down/"

# oversized payload (limit 1024 here)
big=$(head -c 1025 /dev/zero | tr '\0' 'a')
fit=$(head -c 1024 /dev/zero | tr '\0' 'b')
out=$(peer dev1 dev1 --v5 --pub "m2m/dev1/up/telemetry=$big" --pub "m2m/dev1/up/telemetry=$fit")
grep -q '^pub-denied m2m/dev1/up/telemetry' <<<"$out" || fail "oversized payload accepted: $out"
grep -q '^pub-ok m2m/dev1/up/telemetry' <<<"$out" || fail "payload at the limit refused: $out"
sleep 0.3
grep -q "a\{1025\}" "$tmp/ops.out" && fail "the witness received the oversized payload"
has_event mqtt_size "payload of 1025 octets over the limit 1024" || fail "no mqtt_size event"
ok "payload over max_payload dropped (event); at the limit passes"

# flood: 500 messages as fast as possible; rate 5/s burst 10 lets ~10-20 through;
# the events it causes are bounded per client (5 per 10 s window)
before_rate=$(count_events mqtt_rate)
: > "$tmp/ops.out.flood"
kill "$witness" 2>/dev/null || true
msub_bg ops ops-f "$tmp/ops.out.flood" m2m/dev2/up/telemetry
sleep 0.5
seq 1 500 | sed 's/^/f/' | mosquitto_pub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/dev2.crt" \
  --key "$tmp/dev2.key" -i dev2 -q 0 -t m2m/dev2/up/telemetry -l 2>> "$tmp/client.log"
sleep 1
got=$(grep -c '^m2m/dev2/up/telemetry f' "$tmp/ops.out.flood" || true)
[ "$got" -ge 5 ] && [ "$got" -le 40 ] || fail "flood: $got of 500 messages passed (want 5..40)"
after_rate=$(count_events mqtt_rate)
[ $((after_rate - before_rate)) -ge 1 ] && [ $((after_rate - before_rate)) -le 10 ] ||
  fail "flood: $((after_rate - before_rate)) mqtt_rate events (want 1..10)"
ok "flood of 500: $got passed, $((after_rate - before_rate)) rate events (bounded)"
# the suppressed ones are counted in one event when the window rolls (<= 10 s)
wait_for 15 has_event mqtt_suppressed "events suppressed" || fail "no mqtt_suppressed summary"
total=$(events_json | wc -l)
[ "$total" -lt 200 ] || fail "event table grew to $total rows"
ok "suppressed events summarised in one mqtt_suppressed event; $total events in all"
echo "PASS: $pass checks"
