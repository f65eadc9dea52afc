#!/usr/bin/env bash
# The red-team suite (issue 11, item 6): scripted attacks against the RUNNING
# system — the gateway behind a real SMSC peer (tests/smsc/smsc.js, npm smpp)
# that the suite makes inject, replay, flip bits, drop and flood through its
# control channel; Mosquitto with the m2mguard plugin and real MQTT clients
# (mosquitto_pub, MQTT.js); the EST server; and the detector (`detect run`)
# when the build has it. One stack, started once; each attack is run, checked
# for prevention (asserted: the system refused it and kept working) and for
# detection (an alert of the expected rule in `m2mguard alerts --json` naming
# the attack's device, source or the fleet, detected after the attack began);
# time to detect = alert.detected_ms - the attack's start (ms, this clock).
# Prints one table (also to $MG_REDTEAM_OUT, default ./redteam.txt) with the
# median and maximum TTD; exits 1 if any attack was neither prevented nor detected.
#   usage: redteam.sh M2MGUARD_BIN PLUGIN_SO [--short]
# --short: the subset run by ctest (label redteam). docs/redteam.md.
if [ $# -lt 2 ] || [ "$1" = --help ] || { [ $# -ge 3 ] && [ "$3" != --short ]; }; then
  if [ "${1:-}" = --help ]; then sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0; fi
  sed -n '2,15s/^# \{0,1\}//p' "$0" >&2; exit 2
fi
source "$(dirname "$0")/lib.sh"
short=no
[ "${3:-}" = --short ] && short=yes
out=${MG_REDTEAM_OUT:-$PWD/redteam.txt}

# ---- the stack ----------------------------------------------------------------------
export M2MGUARD_HOME=$tmp/wd
"$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
"$bin" ca init --days 2 >> "$tmp/init.log" 2>&1
chain=$M2MGUARD_HOME/ca/chain.pem
port=$(free_port); mport=$(free_port); eport=$(free_port)
password=$(sed -n 's/^password=//p' "$M2MGUARD_HOME/m2mguard.conf")
gw=$(sed -n 's/^gateway_number=//p' "$M2MGUARD_HOME/m2mguard.conf")
set_conf smsc_port "$port"
set_conf enquire_link_ms 5000
set_conf reconnect_max_ms 1000
set_conf por_timeout_s 6
echo "est_listen = 127.0.0.1:$eport" >> "$M2MGUARD_HOME/m2mguard.conf"
"$bin" ca server est --ip 127.0.0.1 --key-out "$M2MGUARD_HOME/est-server.key" \
  --out "$M2MGUARD_HOME/est-server.crt" >> "$tmp/init.log" 2>&1
conf=$tmp/broker.conf
"$bin" broker config --port "$mport" --plugin "$plugin_so" --out "$conf" >> "$tmp/init.log" 2>&1
sed -i 's/^plugin_opt_poll_ms .*/plugin_opt_poll_ms 200/' "$conf"
set_opt max_payload 2048
set_opt rate 20
set_opt burst 40
printf 'log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n' "$tmp/broker.log" >> "$conf"

# SMS devices (+491517770NNN) and IP devices
sms_dev d-witness 1; sms_dev d-forge 2; sms_dev d-replay 3; sms_dev d-cmd 4; sms_dev d-mac 5
sms_dev d-concat 6; sms_dev d-mal 7; sms_dev d-3des 8; sms_dev d-quar 9; sms_dev d-rev 10
sms_dev d-drop 11; sms_dev d-flip 12; sms_dev d-k1 13; sms_dev d-k2 14; sms_dev d-clone 16
# signed commands (docs/commands.md): operator op1, a signer 'temp' revoked before the
# attack; d-sign (class door-lock) refuses an unsigned unlock and trusts op1 only
for k in op1 rogue; do
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$k.key" 2> /dev/null)
  openssl pkey -in "$tmp/$k.key" -pubout -out "$tmp/$k.pub" 2> /dev/null
done
pubhex() { openssl pkey -pubin -in "$tmp/$1.pub" -outform DER | tail -c 65 | od -An -v -tx1 | tr -d ' \n'; }
"$bin" signer add op1 --role operator --pub "$tmp/op1.pub" >> "$tmp/init.log" 2>&1 || fail "signer add op1"
"$bin" signer add temp --role operator --pub "$tmp/rogue.pub" >> "$tmp/init.log" 2>&1 || fail "signer add temp"
"$bin" device add d-sign --msisdn +491517770015 --class door-lock --anchor "op1:ES256:$(pubhex op1)" \
  --signed unlock >> "$tmp/init.log" 2>&1 || fail "device add d-sign"
cat > "$M2MGUARD_HOME/policy.yaml" <<'YAML'
rules:
  - command: unlock
    classes: [door-lock]
    roles: [operator]
    require_signed: true
YAML
chmod 600 "$M2MGUARD_HOME/policy.yaml"
for d in m-a m-b m-c m-rev m-cert m-big m-rate ops; do
  [ "$d" = ops ] && continue
  ip_dev "$d"
done
"$bin" app add ops --role operator >> "$tmp/init.log" 2>&1
"$bin" ca issue --app ops --genkey --key-out "$tmp/ops.key" --out "$tmp/ops.crt" >> "$tmp/init.log" 2>&1
tok_used=$("$bin" device add e-used --ip --enrol-token | sed -n 's/^enrol-token: //p')
"$bin" device add e-forge --ip --enrol-token > /dev/null
[ ${#tok_used} -eq 32 ] || fail "no enrolment token"

start_smsc
start_gateway
wait_for 30 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
mosquitto -c "$conf" >> "$tmp/mosquitto.log" 2>&1 &
broker_pid=$!; pids+=("$broker_pid")
wait_for 20 grep -q "listen socket on port $mport" "$tmp/broker.log" || fail "broker did not start"
"$bin" est run >> "$tmp/est.log" 2>&1 &
pids+=("$!")
wait_for 20 grep -q "listening on" "$tmp/est.log" || fail "EST server did not start"
if "$bin" detect --help > /dev/null 2>&1 && "$bin" alerts --help > /dev/null 2>&1; then
  "$bin" detect run --poll-ms 100 >> "$tmp/detect.log" 2>&1 &
  detect_pid=$!; pids+=("$detect_pid")
  sleep 1
  kill -0 "$detect_pid" 2>/dev/null || fail "detect run exited: $(tail -n 5 "$tmp/detect.log")"
  detector=yes
fi
# the witness: an operator sees everything devices publish
mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/ops.crt" --key "$tmp/ops.key" \
  -i ops-witness -q 1 -v -t 'm2m/+/up/#' > "$tmp/witness.out" 2>> "$tmp/sub.log" &
pids+=("$!")
start_agent d-witness --count 1 --telemetry "hello"
witness_agent=$agent_pid
wait_for 30 grep -q '"device":"d-witness"' "$M2MGUARD_HOME/inbox.jsonl" || fail "witness telemetry not accepted"
ok "stack up: SMSC (control port $cport), gateway, mosquitto+plugin, EST, detector: $detector"

# a forged command packet (keys guessed by the attacker) with the devices' TAR
forged=027000$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 00000000ff \
  --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 74656d703d3939)
# refusal events may arrive aggregated (count, first, last) when their window closes
ev_wait=${MG_REDTEAM_EVENT_WAIT:-25}
ev_ge() { [ "$(count_ev "$1" "$2")" -ge "$3" ]; }
inbox_ge() { [ "$(inbox_of "$1")" -ge "$2" ]; }
both_ge() { [ $(( $(inbox_of d-k1) + $(inbox_of d-k2) )) -ge $((2 * $1)) ]; }
# served: the witness device still gets a command done (proof of receipt)
served() { "$bin" send --wait 20 d-witness "${1:-ping}" 2>&1 | grep "done por_ok" > /dev/null; }

# ---- the attacks ----------------------------------------------------------------------
a_spoofed_sender() {
  local s=+491519999001
  keys="$s fleet"; rules="unknown_sender_flood"
  t0=$(now_ms)
  ctl flood same "$s" "$gw" "$forged" 20 50 || return 1
  wait_for "$ev_wait" ev_ge unknown_sender "\"source\":\"$s\"" 1 || { note="no unknown_sender event"; return 1; }
  [ "$(inbox_of d-witness)" -eq 1 ] && gw_alive || { note="reached the inbox"; return 1; }
  note="unknown_sender, nothing accepted"
}

a_forged_checksum() {
  local s; s=$(msisdn_of d-forge)
  keys="$s d-forge"; rules="checksum_burst"
  t0=$(now_ms)
  ctl flood randmac "$s" "$gw" "$forged" 10 20 || return 1
  wait_for "$ev_wait" ev_ge auth_fail "$s" 1 || { note="no auth_fail"; return 1; }
  [ "$(inbox_of d-forge)" -eq 0 ] || { note="accepted"; return 1; }
  "$bin" device show d-forge | grep -q "status: active" || { note="device punished on forged evidence"; return 1; }
  note="auth_fail; device stays active"
}

a_replay_mo() {
  local s id; s=$(msisdn_of d-replay)
  start_agent d-replay --count 1 --telemetry "meter=1"
  wait_for 20 inbox_ge d-replay 1 || { note="no genuine telemetry"; return 1; }
  ctl last "$s" "$gw" || { note="nothing captured"; return 1; }
  id=$(cut -d' ' -f2 <<<"$ctl_reply")
  keys="$s d-replay"; rules="replay_burst"
  t0=$(now_ms)
  for _ in 1 2 3 4 5 6; do ctl replay "$id" || return 1; done
  wait_for "$ev_wait" ev_ge replay d-replay 1 || { note="no replay event"; return 1; }
  sleep 0.5
  [ "$(inbox_of d-replay)" -eq 1 ] || { note="a replay was accepted"; return 1; }
  note="6 captured MO replays refused (replay)"
}

cmd_setup() { # d-cmd on the air, one genuine command done: its MT and PoR captured
  [ -n "${cmd_agent:-}" ] && return 0
  start_agent d-cmd --count 0; cmd_agent=$agent_pid
  sleep 1
  "$bin" send --wait 20 d-cmd open-door 2>&1 | grep "done por_ok" > /dev/null || { note="genuine command failed"; return 1; }
  ctl last "$gw" "$(msisdn_of d-cmd)" && mt_id=$(cut -d' ' -f2 <<<"$ctl_reply") || return 1
  ctl last "$(msisdn_of d-cmd)" "$gw" && por_id=$(cut -d' ' -f2 <<<"$ctl_reply") || return 1
}
a_replay_mt_device() {
  cmd_setup || return 1
  keys="$(msisdn_of d-cmd) d-cmd"; rules="replay_burst por_failures malformed_flood"
  t0=$(now_ms)
  for _ in 1 2 3 4 5; do ctl replay "$mt_id" || return 1; done
  sleep 2
  [ "$(grep -c '"command":"open-door"' "$tmp/d-cmd.jsonl")" -eq 1 ] || { note="executed twice"; return 1; }
  note="the device executed it once"
}
a_reflect_cmd_gateway() {
  cmd_setup || return 1
  local s; s=$(msisdn_of d-cmd)
  keys="$s d-cmd"; rules="wrong_direction"
  local n0; n0=$(count_ev wrong_direction "$s")
  t0=$(now_ms)
  for _ in 1 2 3 4 5; do ctl replay "$mt_id" "$s" "$gw" || return 1; done
  wait_for "$ev_wait" ev_ge wrong_direction "$s" $((n0 + 1)) || { note="no wrong_direction"; return 1; }
  ! grep -q 'open-door' "$M2MGUARD_HOME/inbox.jsonl" || { note="reached the inbox"; return 1; }
  note="the gateway's own command refused (wrong_direction)"
}
a_reflect_por() {
  cmd_setup || return 1
  local s; s=$(msisdn_of d-cmd)
  keys="$s d-cmd"; rules="malformed_flood por_failures replay_burst"
  local n0; n0=$(count_ev por_ok open-door)
  t0=$(now_ms)
  for _ in $(seq 1 24); do ctl replay "$por_id" || return 1; done   # back to the gateway
  for _ in 1 2 3; do ctl replay "$por_id" "$gw" "$s" || return 1; done # turned to the device
  wait_for "$ev_wait" ev_ge por_unknown "" 1 || { note="no por_unknown"; return 1; }
  [ "$(count_ev por_ok open-door)" -eq "$n0" ] || { note="a second por_ok"; return 1; }
  [ "$(grep -c '"command"' "$tmp/d-cmd.jsonl")" -eq 1 ] || { note="the device acted"; return 1; }
  note="PoR replayed 24 times to the gateway, 3 to the device: por_unknown, nothing acted"
}

a_mac_guessing() {
  local s; s=$(msisdn_of d-mac)
  keys="$s d-mac"; rules="checksum_burst"
  t0=$(now_ms)
  ctl flood randmac "$s" "$gw" "$forged" 1000 500 || return 1
  note="${ctl_reply#ok }"
  wait_for "$ev_wait" ev_ge auth_fail "$s" 1 || { note="no auth_fail"; return 1; }
  sleep 1
  [ "$(inbox_of d-mac)" -eq 0 ] || { note="a guess was accepted"; return 1; }
  gw_alive && served mac-guess || { note="the witness was not served"; return 1; }
  note="1000 guesses at 500/s, none accepted, witness served"
}

a_sms_flood() {
  keys="fleet"; rules="unknown_sender_fleet"
  local n=${MG_REDTEAM_FLOOD:-5000}
  t0=$(now_ms)
  ctl flood spoof 49158 "$gw" "$forged" "$n" 2000 || return 1
  stop_pid "$witness_agent"
  start_agent d-witness --count 1 --telemetry "under-flood"; witness_agent=$agent_pid
  wait_for 60 grep -q 'under-flood' "$M2MGUARD_HOME/inbox.jsonl" || { note="legitimate telemetry lost"; return 1; }
  served flood || { note="witness command failed"; return 1; }
  note="$n SMS from $n numbers at 2000/s; witness telemetry and command served"
}

a_concat_exhaustion() {
  local s part; s=$(msisdn_of d-concat)
  start_agent d-concat --count 1 --telemetry "long:$(printf '%04d,' $(seq 1 40))"; local a=$agent_pid
  wait_for 20 grep -q '"device":"d-concat"' "$M2MGUARD_HOME/inbox.jsonl" || { note="no genuine long telemetry"; return 1; }
  part=$(grep -iE '^[0-9a-f]{2}0003[0-9a-f]{4}01' "$tmp/d-concat.sent" | head -n1)
  [ -n "$part" ] || { note="no first part captured"; return 1; }
  keys="$s d-concat"; rules="concat_exhaustion malformed_flood"
  t0=$(now_ms)
  ctl flood concat "$s" "$gw" "$part" 3000 1000 || return 1
  stop_pid "$a"
  start_agent d-concat --count 1 --telemetry "long2:$(printf '%04d,' $(seq 1 40))"
  wait_for 60 grep -q 'long2:' "$M2MGUARD_HOME/inbox.jsonl" || { note="the device's own long message lost"; return 1; }
  note="3000 first parts never completed; the device's next long message accepted"
}

a_malformed() {
  local s; s=$(msisdn_of d-mal)
  keys="$s d-mal"; rules="malformed_flood"
  local n0; n0=$(count_ev malformed)
  t0=$(now_ms)
  local p
  for p in 0570ff00 02 0270 027000 0270000010 027000ffff0d1600 ff70000000 0270000016160012124d4701; do
    ctl inject "$s" "$gw" "$p" || return 1
    ctl inject "$s" "$gw" "$p" || return 1
    ctl inject "$s" "$gw" "$p" || return 1
  done
  ctl inject "$s" "$gw" 027000001212 0 || return 1   # a UDH with UDHI clear
  wait_for "$ev_wait" ev_ge malformed "" $((n0 + 1)) || { note="no malformed event"; return 1; }
  gw_alive && served malformed || { note="gateway down"; return 1; }
  [ "$(inbox_of d-mal)" -eq 0 ] || { note="accepted"; return 1; }
  note="bad lengths, truncated UDH: malformed, gateway serves"
}

a_downgrade() {
  local s; s=$(msisdn_of d-3des)
  keys="$s d-3des"; rules="malformed_flood checksum_burst"
  t0=$(now_ms)
  local des none
  des=027000$("$bin" sms pack --spi 1600 --kic 15 --kid 15 --tar 4d4700 --cntr 0000000100 \
    --kic-key 0011223344556677889900aabbccddee --kid-key 0011223344556677889900aabbccddee 6f70656e)
  none=027000$("$bin" sms pack --spi 0000 --kic 00 --kid 00 --tar 4d4700 --cntr 0000000100 6f70656e)
  for _ in 1 2 3 4 5 6 7 8; do
    ctl inject "$s" "$gw" "$des" || return 1
    ctl inject "$s" "$gw" "$none" || return 1
    ctl inject "$s" "$gw" 6f70656e 0 0 0 || return 1  # plain text
  done
  wait_for "$ev_wait" ev_ge insufficient_security "$s" 1 || { note="no insufficient_security"; return 1; }
  [ "$(inbox_of d-3des)" -eq 0 ] || { note="accepted"; return 1; }
  note="3DES-coded, no-security and plain SMS refused"
}

a_quarantined_sms() {
  local s; s=$(msisdn_of d-quar)
  "$bin" device quarantine d-quar > /dev/null
  sleep 1.2
  keys="$s d-quar"; rules="inactive_device_activity"
  t0=$(now_ms)
  start_agent d-quar --count 3 --interval-ms 100 --exit-when-done
  wait_for "$ev_wait" ev_ge quarantined "$s" 1 || { note="no quarantined event"; return 1; }
  sleep 0.5
  [ "$(inbox_of d-quar)" -eq 0 ] || { note="accepted"; return 1; }
  note="valid MACs from a quarantined device refused"
}
a_revoked_sms() {
  local s; s=$(msisdn_of d-rev)
  cp -p "$M2MGUARD_HOME/devices/d-rev.prov" "$tmp/d-rev.prov"
  "$bin" device revoke d-rev > /dev/null
  sleep 1.2
  keys="$s d-rev"; rules="inactive_device_activity"
  t0=$(now_ms)
  PROV=$tmp/d-rev.prov start_agent d-rev --count 3 --interval-ms 100 --exit-when-done
  wait_for "$ev_wait" ev_ge revoked "$s" 1 || { note="no revoked event"; return 1; }
  sleep 0.5
  [ "$(inbox_of d-rev)" -eq 0 ] || { note="accepted"; return 1; }
  note="a stolen device's keys after revoke: refused"
}

a_revoked_mqtt() {
  "$bin" device revoke m-rev > /dev/null
  sleep 1
  keys="m-rev"; rules="inactive_device_activity"
  t0=$(now_ms)
  for i in 1 2 3; do mpub m-rev m2m/m-rev/up/telemetry "rev-$i" > /dev/null 2>&1 || true; done
  sleep 1
  ! grep -q 'rev-' "$tmp/witness.out" || { note="published"; return 1; }
  note="revoked device: connection refused, nothing published"
}
a_revoked_cert_mqtt() {
  mpub m-cert m2m/m-cert/up/telemetry before-revoke || { note="control publish failed"; return 1; }
  "$bin" ca revoke --device m-cert --reason keyCompromise >> "$tmp/init.log" 2>&1 || { note="ca revoke failed"; return 1; }
  sleep 1
  keys="m-cert"; rules="inactive_device_activity"
  t0=$(now_ms)
  for i in 1 2 3; do mpub m-cert m2m/m-cert/up/telemetry "crl-$i" > /dev/null 2>&1 || true; done
  sleep 1
  ! grep -q 'crl-' "$tmp/witness.out" || { note="published with a revoked certificate"; return 1; }
  note="revoked certificate: refused"
}
a_cross_publish() {
  keys="m-a"; rules="cross_device"
  t0=$(now_ms)
  local o
  o=$(peer m-a --v5 --pub m2m/m-b/up/telemetry=forged1 --pub m2m/m-b/up/telemetry=forged2 \
    --pub m2m/m-b/down/cmd=1_unlock --pub m2m/m-b/up/receipt=forged3 --pub m2m/m-b/up/telemetry=forged4)
  sleep 1
  ! grep -q 'forged' "$tmp/witness.out" || { note="delivered: $(grep forged "$tmp/witness.out")"; return 1; }
  grep -q 'pub-denied' <<<"$o" || { note="not refused: $o"; return 1; }
  note="publishes into m-b's topics refused (MQTT 5: not authorized)"
}
a_cross_subscribe() {
  keys="m-c"; rules="cross_device"
  t0=$(now_ms)
  local o
  o=$(peer m-c --sub '#' --sub 'm2m/+/down/cmd' --sub m2m/m-b/down/cmd --sub m2m/m-b/up/telemetry --sub '$SYS/#')
  [ "$(grep -c ' 128$' <<<"$o")" -eq 5 ] || { note="not all refused: $o"; return 1; }
  note="5 foreign subscriptions refused (suback 128)"
}
a_mqtt_oversize() {
  keys="m-big"; rules="mqtt_flood size_anomaly"
  local big; big=$(head -c 6000 /dev/zero | tr '\0' 'A')
  t0=$(now_ms)
  for _ in 1 2 3 4 5 6; do mpub m-big m2m/m-big/up/telemetry "$big" > /dev/null 2>&1 || true; done
  sleep 1
  ! grep -q 'm2m/m-big/up/telemetry AAAA' "$tmp/witness.out" || { note="oversize delivered"; return 1; }
  note="6 x 6000-octet publishes (max 2048) dropped"
}
a_mqtt_rate() {
  keys="m-rate"; rules="mqtt_flood rate_anomaly"
  t0=$(now_ms)
  seq 1 500 | sed 's/^/r-/' | mosquitto_pub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/m-rate.crt" \
    --key "$tmp/m-rate.key" -i m-rate -q 0 -t m2m/m-rate/up/telemetry -l > /dev/null 2>&1 || true
  sleep 1
  local n; n=$(grep -c 'm2m/m-rate/up/telemetry r-' "$tmp/witness.out" || true)
  [ "$n" -lt 500 ] || { note="all 500 delivered"; return 1; }
  mpub m-a m2m/m-a/up/telemetry still-served || { note="others not served"; return 1; }
  note="500 publishes at once: $n passed (rate 20/s, burst 40)"
}
est_enrol() { # NAME TOKEN STATEDIR: agent enrolment by EST, exits after one telemetry
  "$bin" agent run --mqtt "127.0.0.1:$mport" --est "https://127.0.0.1:$eport" --name "$1" \
    --token "$2" --cafile "$chain" --state-dir "$3" --count 1 --exit-when-done --telemetry est \
    >> "$tmp/est-agent.log" 2>&1
}
a_est_used_token() {
  mkdir -m 700 -p "$tmp/e-used.d"
  est_enrol e-used "$tok_used" "$tmp/e-used.d" || true
  [ -f "$tmp/e-used.d/cert.pem" ] || { note="genuine enrolment failed"; return 1; }
  keys="e-used 127.0.0.1"; rules="est_failures"
  t0=$(now_ms)
  for i in 1 2 3 4 5; do
    mkdir -m 700 -p "$tmp/thief$i.d"
    est_enrol e-used "$tok_used" "$tmp/thief$i.d" && { note="re-enrolled with a spent token"; return 1; }
    [ ! -e "$tmp/thief$i.d/cert.pem" ] || { note="certificate written"; return 1; }
  done
  note="5 enrolments with the spent token refused (403)"
}
a_est_forged_token() {
  keys="e-forge 127.0.0.1"; rules="est_failures"
  t0=$(now_ms)
  for i in 1 2 3 4 5; do
    mkdir -m 700 -p "$tmp/forge$i.d"
    est_enrol e-forge "$(openssl rand -hex 16)" "$tmp/forge$i.d" && { note="enrolled with a forged token"; return 1; }
    [ ! -e "$tmp/forge$i.d/cert.pem" ] || { note="certificate written"; return 1; }
  done
  note="5 enrolments with guessed tokens refused"
}

a_smsc_drops() {
  local s out; s=$(msisdn_of d-drop)
  start_agent d-drop --count 0; local a=$agent_pid
  sleep 1
  ctl drop "$gw" "$s" 1000 || return 1
  keys="$s d-drop"; rules="por_failures"
  t0=$(now_ms)
  for c in 1 2 3 4; do "$bin" send d-drop "valve-$c" >> "$tmp/send-drop.log" 2>&1 || true; done
  out=$("$bin" send --wait 15 d-drop valve-4 2>&1 || true)
  grep -q "done" <<<"$out" && { note="reported done: $out"; return 1; }
  wait_for "$ev_wait" ev_ge por_timeout d-drop 1 || { note="no por_timeout: $out"; return 1; }
  ctl drop "$gw" "$s" 0 || true
  [ ! -s "$tmp/d-drop.jsonl" ] || { note="the device got a command"; return 1; }
  stop_pid "$a"
  note="commands lost by the SMSC: never reported done, por_timeout"
}

a_bit_flip() {
  local s; s=$(msisdn_of d-flip)
  keys="$s d-flip"; rules="checksum_burst"
  ctl flip "$s" "$gw" 6 || return 1
  t0=$(now_ms)
  start_agent d-flip --count 7 --interval-ms 200 --telemetry flip --exit-when-done
  wait_for 20 grep -q '"text":"flip seq=7"' "$M2MGUARD_HOME/inbox.jsonl" || { note="the 7th (unflipped) not accepted"; return 1; }
  [ "$(inbox_of d-flip)" -eq 1 ] || { note="$(inbox_of d-flip) accepted"; return 1; }
  note="6 flipped in transit refused, the next genuine one accepted"
}

sign_setup() { # d-sign on the air
  [ -n "${sign_agent:-}" ] && return 0
  start_agent d-sign --count 0; sign_agent=$agent_pid
  sleep 1
}
unlocks() { { grep -c '"command":"unlock"' "$tmp/d-sign.jsonl" 2>/dev/null || true; } | tail -n1; }
a_signed_revoked_signer() {
  sign_setup
  "$bin" signer revoke temp >> "$tmp/init.log" 2>&1 || { note="signer revoke failed"; return 1; }
  # (the gateway records cmd_policy_refused without the device: a fleet alert counts)
  keys="d-sign $(msisdn_of d-sign) fleet"; rules="policy_refusal"
  local n0 u0 out; n0=$(count_ev cmd_policy_refused); u0=$(unlocks)
  t0=$(now_ms)
  for _ in 1 2 3; do
    out=$("$bin" send --wait 10 --sign "$tmp/rogue.key" --kid temp d-sign unlock 2>&1 || true)
    grep -q "done" <<<"$out" && { note="done: $out"; return 1; }
  done
  wait_for "$ev_wait" ev_ge cmd_policy_refused revoked $((n0 + 1)) || { note="no cmd_policy_refused (revoked)"; return 1; }
  [ "$(unlocks)" -eq "$u0" ] || { note="the device unlocked"; return 1; }
  note="3 unlocks signed by a revoked operator key: refused by the gateway (policy)"
}
a_signed_replay() {
  sign_setup
  local out id did u0
  out=$("$bin" send --wait 20 --sign "$tmp/op1.key" --kid op1 d-sign unlock 2>&1) || { note="genuine signed unlock: $out"; return 1; }
  grep -q "done" <<<"$out" || { note="genuine signed unlock: $out"; return 1; }
  id=$(sed -n 's/^command \([0-9]*\) queued.*/\1/p' <<<"$out" | head -n1)
  wait_for 5 bash -c "grep -q '\"command\":\"unlock\"' '$tmp/d-sign.jsonl'" || { note="not executed"; return 1; }
  u0=$(unlocks)
  keys="d-sign $(msisdn_of d-sign)"; rules="por_failures signed_replay"
  t0=$(now_ms)
  # a compromised backend queues the very same signed bytes again (new command ids,
  # fresh SMS counters): only the device's signed sequence stands in the way
  for _ in 1 2 3 4 5; do
    sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
      "INSERT INTO commands(device_id, created, updated, state, text, want) SELECT device_id, strftime('%s','now'), strftime('%s','now'), 0, text, 'sms' FROM commands WHERE id = $id;
       INSERT INTO command_sigs(command_id, cose) SELECT last_insert_rowid(), cose FROM command_sigs WHERE command_id = $id;" \
      || { note="cannot queue the replay"; return 1; }
  done
  sleep 4
  [ "$(unlocks)" -eq "$u0" ] || { note="the replayed signed unlock ran"; return 1; }
  note="signed unlock run once; 5 re-queued copies (same COSE, new SMS counters) refused by the device"
}

a_clone_counter_jump() {
  # a clone made with the device's stolen keys jumps the counter far ahead: valid
  # MAC, counter higher than the last one; afterwards the genuine device's counters
  # would all be "replays"
  local s k; s=$(msisdn_of d-clone)
  mkdir -m 700 -p "$tmp/clone"
  for k in kic kid; do
    (umask 077; sed -n "s/^$k=//p" "$M2MGUARD_HOME/devices/d-clone.prov" > "$tmp/clone/$k")
  done
  local jump
  jump=027000$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 8000000000 \
    --kic-key-file "$tmp/clone/kic" --kid-key-file "$tmp/clone/kid" 636c6f6e65) || { note="sms pack"; return 1; }
  keys="$s d-clone"; rules="counter_jump rate_anomaly"
  t0=$(now_ms)
  ctl inject "$s" "$gw" "$jump" || return 1
  sleep 2
  [ "$(inbox_of d-clone)" -eq 0 ] || { note="the jump to 2^39 was accepted: the genuine device is locked out"; return 1; }
  note="a counter jump to 2^39 with valid keys refused"
}

a_kill9_load() {
  keys="-"; rules="-"
  local per=${MG_REDTEAM_LOAD:-300} i
  t0=$(now_ms)
  start_agent d-k1 --count "$per" --interval-ms 10 --exit-when-done; local k1=$agent_pid
  start_agent d-k2 --count "$per" --interval-ms 10 --exit-when-done; local k2=$agent_pid
  RANDOM=11
  for i in 1 2 3 4 5; do
    sleep "0.$(( RANDOM % 6 + 2 ))"
    kill -9 "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
    start_gateway
  done
  wait_for 120 both_ge "$per" || { note="only $(( $(inbox_of d-k1) + $(inbox_of d-k2) )) of $((2 * per))"; return 1; }
  wait "$k1" || true; wait "$k2" || true
  sleep 1
  local dup
  dup=$(grep '"device":"d-k[12]"' "$M2MGUARD_HOME/inbox.jsonl" | sed -n 's/.*"device":"\([^"]*\)".*"cntr":\([0-9]*\),.*/\1 \2/p' | sort | uniq -d | wc -l)
  [ "$dup" -eq 0 ] || { note="$dup counters accepted twice"; return 1; }
  [ "$(inbox_of d-k1)" -eq "$per" ] && [ "$(inbox_of d-k2)" -eq "$per" ] || { note="not exactly once"; return 1; }
  wait_for 20 served after-kill || { note="not served after the kills"; return 1; }
  note="5 x SIGKILL under load: $((2 * per)) accepted exactly once, no counter reused"
}

if [ "$short" = yes ]; then
  list="spoofed_sender forged_checksum replay_mo reflect_cmd_gateway malformed quarantined_sms
        bit_flip cross_publish revoked_cert_mqtt"
else
  list="spoofed_sender forged_checksum replay_mo replay_mt_device reflect_cmd_gateway reflect_por
        mac_guessing sms_flood concat_exhaustion malformed downgrade quarantined_sms revoked_sms
        revoked_mqtt revoked_cert_mqtt cross_publish cross_subscribe mqtt_oversize mqtt_rate
        est_used_token est_forged_token smsc_drops bit_flip signed_revoked_signer signed_replay
        clone_counter_jump kill9_load"
fi
[ -n "${MG_REDTEAM_ONLY:-}" ] && list=$MG_REDTEAM_ONLY
for a in ${MG_REDTEAM_SKIP:-}; do list=$(tr ' ' '\n' <<<"$list" | grep -vx "$a" | tr '\n' ' '); done
for a in $list; do attack "$a" "a_$a"; done

echo
mkdir -p "$(dirname "$out")"
if table "$out"; then rc=0; else rc=1; fi
echo "table written to $out"
exit $rc
