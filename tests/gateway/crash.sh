#!/usr/bin/env bash
# Crash test: the gateway under steady MO load is killed with SIGKILL at random
# moments 20 times and restarted, every other time without the commit thread
# (commit_thread=no: the crash note and the replay must agree across both).
# Afterwards every message the devices sent
# was accepted exactly once (inbox table == application output, no duplicate
# id or counter, nothing missing), and a replay of an earlier message is refused.
source "$(dirname "$0")/lib.sh"
KILLS=${MG_CRASH_KILLS:-20}
PER_DEVICE=${MG_CRASH_MESSAGES:-1500}

new_workdir
start_smsc
"$bin" device add meter-1 --msisdn +4915200000001 > /dev/null
"$bin" device add meter-2 --msisdn +4915200000002 > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent meter-1 --count "$PER_DEVICE" --interval-ms 5 --exit-when-done; m1=$agent_pid
start_agent meter-2 --count "$PER_DEVICE" --interval-ms 5 --exit-when-done; m2=$agent_pid

RANDOM=42 # reproducible kill moments
for i in $(seq 1 "$KILLS"); do
  sleep "0.$(( RANDOM % 6 + 1 ))$(( RANDOM % 10 ))"
  kill -9 "$gw_pid"
  wait "$gw_pid" 2>/dev/null || true
  set_conf commit_thread "$([ $(( i % 2 )) = 1 ] && echo no || echo yes)"
  start_gateway
done
ok "gateway killed with SIGKILL $KILLS times under load and restarted (with and without the commit thread)"

total=$(( 2 * PER_DEVICE ))
wait_for 120 inbox_at_least "$total" || fail "only $(inbox_lines) of $total messages accepted"
wait "$m1" || fail "agent meter-1 failed"
wait "$m2" || fail "agent meter-2 failed"
sleep 1
lines=$(inbox_lines)
[ "$lines" -eq "$total" ] || fail "application output has $lines lines, $total sent"
db_rows=$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM inbox")
[ "$db_rows" -eq "$total" ] || fail "inbox table has $db_rows rows, $total sent"
dup_ids=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$M2MGUARD_HOME/inbox.jsonl" | sort | uniq -d | wc -l)
[ "$dup_ids" -eq 0 ] || fail "$dup_ids ids appear twice in the output"
dup_cntr=$(sed -n 's/.*"device":"\([^"]*\)".*"cntr":\([0-9]*\),.*/\1 \2/p' "$M2MGUARD_HOME/inbox.jsonl" | sort | uniq -d | wc -l)
[ "$dup_cntr" -eq 0 ] || fail "$dup_cntr (device, counter) pairs accepted twice"
for d in meter-1 meter-2; do
  n=$(grep -c "\"device\":\"$d\"" "$M2MGUARD_HOME/inbox.jsonl")
  [ "$n" -eq "$PER_DEVICE" ] || fail "$d: $n of $PER_DEVICE messages"
done
ok "all $total messages accepted exactly once (output == inbox table, no duplicate id or counter)"

# replay of early and late messages: refused, nothing new accepted. (The SMSC
# delivers at least once, so redeliveries after the kills may already have
# left replay events: count them first.)
replays() { "$bin" events --json | grep -c '"kind":"replay"' || true; }
before=$(replays)
inject --from +4915200000001 --to "$gateway_number" "$(sed -n 1p "$tmp/meter-1.sent")"
inject --from +4915200000002 --to "$gateway_number" "$(tail -n 1 "$tmp/meter-2.sent")"
replays_grew() { [ "$(replays)" -ge $((before + 2)) ]; }
wait_for 10 replays_grew || fail "replays not refused: $(replays) replay events, $before before"
sleep 0.5
[ "$(inbox_lines)" -eq "$total" ] || fail "a replay was accepted"
ok "replays of earlier messages refused after the crashes"

echo "gateway crash: $pass passed, 0 failed"
