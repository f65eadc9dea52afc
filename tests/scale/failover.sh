#!/usr/bin/env bash
# Gateways side by side, and failover (issue 15, item 2).
#
#   failover.sh M2MGUARD [sqlite|pg] [short|long]
#
# Two `m2mguard gateway run` on one store (SQLite: one file shared on this
# machine; pg: a throwaway PostgreSQL cluster, tests/lib/pg.sh), both bound to
# the SMSC with the gateway number; the SMSC spreads the devices' messages
# round-robin over them (SMSC_SPREAD=1). Under steady telemetry from several
# devices and with commands queued meanwhile, one gateway or the other is
# killed with SIGKILL again and again and restarted. Then:
#   - every message a device sent is in the inbox table exactly once, and no
#     (device, counter) twice;
#   - the application outputs of both gateways together hold every inbox row
#     exactly once (no id in both, none twice, none missing);
#   - every command was claimed and secured once: one cmd_sent event and at
#     most one submit_sm of a command packet per command, counters never
#     reused; every command the device got ran once (agent output); a command
#     lost to a kill between its claim and its submit is counted (it times out);
#   - replays of early and late messages are still refused.
# short (ctest): 6 devices x 200 messages (pg: 150), ~10 kills; long (make soak): 8
# devices x 3000 messages, ~60 kills. MG_FAILOVER_* override.
set -euo pipefail
bin=$1
backend=${2:-sqlite}
mode=${3:-short}
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$src/tests/gateway/lib.sh" "$bin"

if [ "$mode" = long ]; then
  DEVICES=${MG_FAILOVER_DEVICES:-8}; PER_DEVICE=${MG_FAILOVER_MESSAGES:-3000}
  INTERVAL=${MG_FAILOVER_INTERVAL_MS:-20}; COMMANDS=${MG_FAILOVER_COMMANDS:-200}
else
  # (PostgreSQL: fewer, its cluster's start takes its share of the ctest budget)
  DEVICES=${MG_FAILOVER_DEVICES:-6}; PER_DEVICE=${MG_FAILOVER_MESSAGES:-$([ "$backend" = pg ] && echo 150 || echo 200)}
  INTERVAL=${MG_FAILOVER_INTERVAL_MS:-40}; COMMANDS=${MG_FAILOVER_COMMANDS:-30}
fi
GATEWAYS=2

new_workdir
set_conf window 32
# a PoR waits behind its device's telemetry backlog at the SMSC (kept in order)
[ "$mode" = long ] && set_conf por_timeout_s 900
if [ "$backend" = pg ]; then
  [ -f "$src/tests/lib/pg.sh" ] || fail "tests/lib/pg.sh missing (PostgreSQL engine not merged)"
  source "$src/tests/lib/pg.sh"
  # at exit: the test's processes (the gateways' last commit), then the cluster, then the rest
  trap 'rc=$?; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pg_stop; set +e; (exit $rc); cleanup' EXIT
  PG_FSYNC=${MG_FAILOVER_PG_FSYNC:-off} pg_start # a throwaway cluster: the gateways are killed, not it
  pg_createdb m2mguard
  set_conf store "$(pg_conninfo m2mguard)" # the working directory's store on it
elif [ "$backend" != sqlite ]; then
  fail "backend: sqlite or pg"
fi

export SMSC_SPREAD=${MG_FAILOVER_SPREAD:-1} SMSC_SUBMIT_LOG=$tmp/submits.log
start_smsc
for i in $(seq 1 "$DEVICES"); do
  "$bin" device add "dev-$i" --msisdn "+49152000010$(printf %02d "$i")" > /dev/null
done

# gateway g (1..GATEWAYS): its own configuration (output file), its own log
for g in $(seq 1 "$GATEWAYS"); do
  sed "s|^output=.*||" "$M2MGUARD_HOME/m2mguard.conf" > "$tmp/gw$g.conf"
  echo "output=out-$g.jsonl" >> "$tmp/gw$g.conf"
  chmod 600 "$tmp/gw$g.conf"
done
declare -A gwpid
start_gw() {
  "$bin" gateway run --config "$tmp/gw$1.conf" >> "$tmp/gateway-$1.log" 2>&1 &
  gwpid[$1]=$!
  pids+=("$!")
}
bound_all() {
  local g; for g in $(seq 1 "$GATEWAYS"); do grep -q smpp_bound "$tmp/gateway-$g.log" || return 1; done
}
for g in $(seq 1 "$GATEWAYS"); do start_gw "$g"; done
wait_for 20 bound_all || fail "the gateways did not bind"

agents=()
for i in $(seq 1 "$DEVICES"); do
  start_agent "dev-$i" --count "$PER_DEVICE" --interval-ms "$INTERVAL"
  agents+=("$agent_pid")
done
ok "$GATEWAYS gateways bound on one $backend store, $DEVICES devices sending $PER_DEVICE messages each"

# commands, queued while the load runs and the gateways are killed
queue_commands() {
  local c d
  for c in $(seq 1 "$COMMANDS"); do
    d=$(( (c - 1) % DEVICES + 1 ))
    "$bin" send "dev-$d" "set-$c" >> "$tmp/send.log" 2>&1 || echo "send $c failed" >> "$tmp/send.log"
    sleep 0.1
  done
}
queue_commands &
sender=$!
pids+=("$sender")

RANDOM=${MG_FAILOVER_SEED:-15}
kills=0
# telemetry sent by the devices (their PoRs for commands start 0271)
telemetry() { grep -c '^027000' "$tmp/dev-$1.sent" 2>/dev/null || true; }
running() {
  local i; for i in $(seq 1 "$DEVICES"); do [ "$(telemetry "$i")" -ge "$PER_DEVICE" ] || return 0; done
  kill -0 "$sender" 2>/dev/null
}
while running; do
  sleep "0.$(( RANDOM % 8 + 2 ))"
  g=$(( RANDOM % GATEWAYS + 1 ))
  kill -9 "${gwpid[$g]}" 2>/dev/null || true
  wait "${gwpid[$g]}" 2>/dev/null || true
  kills=$((kills + 1))
  sleep "0.$(( RANDOM % 3 ))"
  start_gw "$g"
done
wait "$sender" || true
for a in "${agents[@]}"; do kill -0 "$a" || fail "an agent died"; done
ok "gateways killed with SIGKILL $kills times under load and restarted"

sqlq() {
  if [ "$backend" = pg ]; then pg_psql m2mguard -At -c "$1"; else sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "$1"; fi
}
total=$(( DEVICES * PER_DEVICE ))
rows() { sqlq "SELECT count(*) FROM inbox"; }
inbox_done() { [ "$(rows)" -ge "$total" ]; }
inbox_grew_from() { [ "$(rows)" -gt "$1" ] || inbox_done; }
# the backlog drains: as long as the inbox grows (at least every 30 s)
progress=$(rows)
until inbox_done; do
  wait_for 30 inbox_grew_from "$progress" || break
  progress=$(rows)
done
inbox_done ||
  fail "only $(rows) of $total messages accepted; events: $(sqlq "SELECT kind, sum(count) FROM events_all GROUP BY kind" | tr '\n' ' ')"
# the outputs catch up: every inbox row written by one gateway or the other
outs() { cat "$M2MGUARD_HOME"/out-*.jsonl | wc -l; }
outs_done() { [ "$(outs)" -ge "$total" ]; }
wait_for 20 outs_done || true
sleep 1
n=$(rows)
[ "$n" -eq "$total" ] || fail "inbox table has $n rows, $total sent"
dup=$(sqlq "SELECT count(*) FROM (SELECT device_id, cntr FROM inbox GROUP BY device_id, cntr HAVING count(*) > 1) d")
[ "$dup" -eq 0 ] || fail "$dup (device, counter) pairs twice in the inbox"
for i in $(seq 1 "$DEVICES"); do
  sent=$(telemetry "$i")
  [ "$sent" -eq "$PER_DEVICE" ] || fail "dev-$i sent $sent, not $PER_DEVICE"
done
ok "inbox: all $total messages exactly once, no (device, counter) twice"

cat "$M2MGUARD_HOME"/out-*.jsonl > "$tmp/outs.jsonl"
lines=$(wc -l < "$tmp/outs.jsonl")
dup_ids=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$tmp/outs.jsonl" | sort | uniq -d | wc -l)
dup_cntr=$(sed -n 's/.*"device":"\([^"]*\)".*"cntr":\([0-9]*\),.*/\1 \2/p' "$tmp/outs.jsonl" | sort | uniq -d | wc -l)
per_gw=""
for g in $(seq 1 "$GATEWAYS"); do per_gw+=" gw$g=$(wc -l < "$M2MGUARD_HOME/out-$g.jsonl")"; done
[ "$dup_ids" -eq 0 ] || fail "$dup_ids inbox ids written twice across the outputs ($per_gw)"
[ "$dup_cntr" -eq 0 ] || fail "$dup_cntr (device, counter) pairs twice across the outputs"
[ "$lines" -eq "$total" ] || fail "the outputs hold $lines lines, $total accepted ($per_gw)"
ok "outputs:$per_gw: every accepted message exactly once across the gateways"

# commands: every one claimed once; its counter never reused
queued=$(sqlq "SELECT count(*) FROM commands")
[ "$queued" -eq "$COMMANDS" ] || fail "$queued commands stored, $COMMANDS queued"
gwaddr=${gateway_number#+}
# command packets (UDH IEI 70) the gateways submitted to the devices, as the SMSC logged them
on_air() { awk -v g="$gwaddr" '$2 == g && $5 ~ /^027000/ { n++ } END { print n + 0 }' "$tmp/submits.log"; }
settled() {
  [ "$(sqlq "SELECT count(*) FROM commands WHERE state = 0")" -eq 0 ] &&
    [ "$(sqlq "SELECT count(*) FROM commands WHERE state IN (2, 3, 4)")" -ge "$(on_air)" ]
}
wait_for 60 settled || fail "commands not settled: $(sqlq "SELECT state, count(*) FROM commands GROUP BY state"), $(on_air) on the air"
reused=$(sqlq "SELECT count(*) FROM (SELECT device_id, cntr FROM commands GROUP BY device_id, cntr HAVING count(*) > 1) d")
[ "$reused" -eq 0 ] || fail "$reused outbound counters used twice"
"$bin" events --json > "$tmp/events.json"
sent_ev=$(grep -c '"kind":"cmd_sent"' "$tmp/events.json" || true)
twice=$(sed -n 's/.*"kind":"cmd_sent".*"reason":"command \([0-9]*\) .*/\1/p' "$tmp/events.json" | sort | uniq -d | wc -l)
[ "$twice" -eq 0 ] || fail "$twice commands sent twice (cmd_sent events)"
# the SMSC's view: submit_sm of command packets (UDH IEI 70) from the gateways
air=$(on_air)
air_distinct=$(awk -v g="$gwaddr" '$2 == g && $5 ~ /^027000/ { print $3, $5 }' "$tmp/submits.log" | sort -u | wc -l)
[ "$air" -eq "$air_distinct" ] || fail "a command packet was submitted twice"
# (cmd_sent is recorded when the submit is queued: a kill before it reaches the
# socket, or right before the event is written, makes the two differ by one)
ran=0
for i in $(seq 1 "$DEVICES"); do
  [ -f "$tmp/dev-$i.jsonl" ] || continue
  r=$(grep -c '"command":"set-' "$tmp/dev-$i.jsonl" || true)
  d=$(sed -n 's/.*"command":"\(set-[0-9]*\)".*/\1/p' "$tmp/dev-$i.jsonl" | sort | uniq -d | wc -l)
  [ "$d" -eq 0 ] || fail "dev-$i ran a command twice"
  ran=$((ran + r))
done
done_n=$(sqlq "SELECT count(*) FROM commands WHERE state = 2")
lost=$(( COMMANDS - air ))
[ "$ran" -eq "$air" ] || fail "the devices ran $ran commands, $air were on the air"
late=$(sqlq "SELECT count(*) FROM commands WHERE state = 4")
[ "$done_n" -eq "$air" ] || fail "$done_n commands done by PoR, $air sent ($late timed out)"
[ "$lost" -le $(( kills )) ] || fail "$lost commands lost: more than one per kill"
ok "commands: $COMMANDS queued, $air sent once each and run once, $done_n done by PoR, $lost lost to a kill between claim and submit (they time out), $sent_ev cmd_sent events"

# replays after all this: refused by either gateway
replays() { "$bin" events --json | grep -c '"kind":"replay"' || true; }
before=$(replays)
inject --from +4915200001001 --to "$gateway_number" "$(grep -m1 '^027000' "$tmp/dev-1.sent")"
inject --from +4915200001002 --to "$gateway_number" "$(grep '^027000' "$tmp/dev-2.sent" | tail -n 1)"
replays_grew() { [ "$(replays)" -ge $((before + 2)) ]; }
wait_for 30 replays_grew || fail "replays not refused"
sleep 0.5
[ "$(rows)" -eq "$total" ] || fail "a replay was accepted"
ok "replays of early and late messages refused"

echo "failover $backend $mode: messages=$total kills=$kills duplicates=0 losses=0 commands=$COMMANDS sent_once=$air lost_at_kill=$lost"
echo "scale failover: $pass passed, 0 failed"
