#!/usr/bin/env bash
# The device agent through an AT-command modem (AT+CMGS / +CMT, PDU mode) on
# a serial port: a socat pty pair with the modem simulator (tests/modem,
# standing in for hardware) on one end, the agent on the other; the simulator
# reaches the real SMSC peer, the gateway is bound to it as usual.
source "$(dirname "$0")/lib.sh"
command -v socat >/dev/null || fail "socat is not installed (tools/debian-packages.txt)"

new_workdir
start_smsc
"$bin" device add meter-7 --msisdn +4915600000007 > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"

socat -d -d "pty,raw,echo=0,link=$tmp/ttyM" "pty,raw,echo=0,link=$tmp/ttyD" 2> "$tmp/socat.log" &
pids+=("$!")
wait_for 5 test -e "$tmp/ttyM" -a -e "$tmp/ttyD" || fail "socat pty pair"
node "$src/tests/modem/modem-sim.js" --tty "$tmp/ttyM" --smsc "127.0.0.1:$port" --msisdn +4915600000007 \
  --password "$password" > "$tmp/sim.out" 2> "$tmp/sim.log" &
pids+=("$!")
wait_for 10 grep -q '^ready' "$tmp/sim.out" || fail "modem simulator did not start"
"$bin" agent run --prov "$M2MGUARD_HOME/devices/meter-7.prov" --modem "$tmp/ttyD" --count 2 --interval-ms 200 \
  --telemetry "kwh=1234" --output "$tmp/meter-7.jsonl" >> "$tmp/meter-7.log" 2>&1 &
pids+=("$!")
wait_for 20 grep -q "modem ready" "$tmp/meter-7.log" || fail "the agent's modem did not initialise"
ok "agent on a serial port: modem initialised (AT, ATE0, AT+CMEE=1, AT+CMGF=0, AT+CNMI=2,2,0,0,0)"

wait_for 20 inbox_at_least 2 || fail "telemetry via AT+CMGS did not arrive"
grep -q '"device":"meter-7".*"text":"kwh=1234 seq=2"' "$M2MGUARD_HOME/inbox.jsonl" || fail "telemetry content"
ok "2 secured telemetry SMS sent with AT+CMGS accepted by the gateway"

out=$("$bin" send --wait 30 meter-7 read-now) || fail "command via +CMT: $out"
grep -q "done" <<<"$out" || fail "not confirmed: $out"
[ "$(grep -c '"command":"read-now"' "$tmp/meter-7.jsonl")" -eq 1 ] || fail "the command did not run once"
ok "command received as +CMT, executed once, proof of receipt sent with AT+CMGS"

echo "gateway modem: $pass passed, 0 failed"
