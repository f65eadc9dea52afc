#!/usr/bin/env bash
# Tamper response of an SMS device (issue 14) with the real SMSC (npm smpp),
# the gateway and the reference agent: SIGUSR1 (the enclosure switch) makes
# the device library send one last secured alarm "tamper enclosure" on its
# normal counter, then wipe its keys and counters; the gateway records event
# `tamper` (authenticated, bearer sms); the agent stops and refuses to start
# again until re-provisioned; the alarm SMS replayed later is refused as a
# replay.
source "$(dirname "$0")/../gateway/lib.sh"
new_workdir
start_smsc
"$bin" device add lock-1 --msisdn +4915100000001 > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent lock-1 --count 1 --telemetry "temp=20.5C"
wait_for 20 inbox_at_least 1 || fail "telemetry did not arrive"
ok "lock-1 sent its telemetry (secured SMS)"

kill -USR1 "$agent_pid"
wait_for 15 grep -q "refusing to operate until re-provisioned" "$tmp/lock-1.log" || fail "no tamper response"
wait "$agent_pid" 2>/dev/null || true
grep -q "tamper alarm sent; keys and counters wiped" "$tmp/lock-1.log" || fail "alarm/wipe: $(tail -n3 "$tmp/lock-1.log")"
wait_for 10 has_event tamper '"source":"+4915100000001"' || fail "no tamper event"
auth=$(sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
  "SELECT count(*) FROM events WHERE kind = 'tamper' AND auth = 1 AND bearer = 'sms' AND reason LIKE 'tamper alarm: enclosure%'")
[ "$auth" -eq 1 ] || fail "tamper event not authenticated / bearer sms: $auth"
grep -q "lock-1.prov destroyed (tamper response)" "$tmp/lock-1.log" || fail "the provisioning (keys) was not destroyed"
! grep -q "^kic=\|^kid=\|key" "$M2MGUARD_HOME/devices/lock-1.prov" 2>/dev/null || fail "keys left in the .prov"
ok "SIGUSR1: alarm first (event tamper, bearer sms, authenticated), then the keys and counters wiped"

set +e
M2MGUARD_SMSC_PASSWORD=$password "$bin" agent run --prov "$M2MGUARD_HOME/devices/lock-1.prov" \
  --smsc "127.0.0.1:$port" --count 1 > /dev/null 2> "$tmp/lock-1.again.log"; rc=$?
set -e
[ $rc -eq 3 ] && grep -q "refuses to operate until re-provisioned" "$tmp/lock-1.again.log" \
  || fail "restart after tamper: exit $rc: $(cat "$tmp/lock-1.again.log")"
ok "the tampered device refuses to start (exit 3) until re-provisioned"

inject --from +4915100000001 --to "$gateway_number" "$(tail -n 1 "$tmp/lock-1.sent")"
wait_for 10 has_event replay '"source":"+4915100000001"' || fail "the replayed alarm was not refused as a replay"
[ "$(count_events tamper)" -eq 1 ] || fail "a second tamper event"
ok "the alarm SMS replayed: refused (replay), no second tamper event"
echo "PASS: $pass checks"
