#!/usr/bin/env bash
# Crash test of the device agent: while the gateway sends 40 commands, the
# agent is killed with SIGKILL at random moments 10 times and restarted.
# Afterwards every command ran exactly once on the device, every command has
# its proof of receipt, and an earlier (authentic) command is not accepted again.
source "$(dirname "$0")/lib.sh"
KILLS=${MG_CRASH_KILLS:-10}
N=40

new_workdir
start_smsc
"$bin" device add valve-1 --msisdn +4915500000001 > /dev/null
prov="$M2MGUARD_HOME/devices/valve-1.prov"
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent valve-1
# commands keep coming (one every 0.1 s) while the agent is killed
( for i in $(seq 1 $N); do "$bin" send valve-1 "set-flow $i" > /dev/null; sleep 0.1; done ) &
sender=$!
pids+=("$sender")

RANDOM=7
for i in $(seq 1 "$KILLS"); do
  sleep "0.$(( RANDOM % 4 + 1 ))$(( RANDOM % 10 ))"
  kill -9 "$agent_pid"
  wait "$agent_pid" 2>/dev/null || true
  start_agent valve-1
done
wait "$sender" || fail "queueing the commands failed"
ok "agent killed with SIGKILL $KILLS times while commands arrived"

done_count() { sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM commands WHERE state = 2"; }
all_done() { [ "$(done_count)" -eq $N ]; }
wait_for 90 all_done || fail "$(done_count) of $N commands have their proof of receipt"
ok "all $N commands confirmed by proof of receipt"

for i in $(seq 1 $N); do
  c=$(grep -c "\"command\":\"set-flow $i\"" "$tmp/valve-1.jsonl" || true)
  [ "$c" -eq 1 ] || fail "command set-flow $i ran $c times on the device"
done
ok "every command ran exactly once on the device"

# an authentic command with an old counter (made with the device's own keys)
kic=$(sed -n 's/^kic=//p' "$prov"); kid=$(sed -n 's/^kid=//p' "$prov")
old=$("$bin" sms pack --spi 1639 --kic 12 --kid 12 --tar 4d4701 --cntr 0000000003 \
  --kic-key "$kic" --kid-key "$kid" 6f70656e2d616c6c 2>/dev/null)
inject --from "$gateway_number" --to +4915500000001 "027000$old"
wait_for 10 grep -q "refused SMS from $gateway_number: cntr_low" "$tmp/valve-1.log" || fail "old command not refused"
! grep -q '"command":"open-all"' "$tmp/valve-1.jsonl" || fail "the old command ran"
ok "an authentic command with an old counter is refused after the crashes"

echo "agent crash: $pass passed, 0 failed"
