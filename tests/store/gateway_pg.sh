#!/usr/bin/env bash
# store_pg_gateway: the SMS gateway with its store on PostgreSQL
# (m2mguard.conf `store = host=... dbname=...`), end to end with the real
# SMSC peer and device agents: telemetry up arrives once, an unlock down is
# confirmed by its PoR, a replay and a quarantined device are refused (the
# gateway sees the status change through the database), and the rows are in
# PostgreSQL, not in WORKDIR/m2mguard.db.
#   gateway_pg.sh M2MGUARD
# shellcheck source=../gateway/lib.sh
source "$(dirname "$0")/../gateway/lib.sh"
# shellcheck source=../lib/pg.sh
source "$src/tests/lib/pg.sh"
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; pg_stop; (exit $rc); cleanup' EXIT
PG_FSYNC=off pg_start
pg_createdb m2mguard
conninfo=$(pg_conninfo m2mguard)

new_workdir
echo "store = $conninfo" >> "$M2MGUARD_HOME/m2mguard.conf"
rm -f "$M2MGUARD_HOME/m2mguard.db"
start_smsc
"$bin" device add pg-1 --msisdn +4915200000001 > /dev/null
"$bin" device add pg-2 --msisdn +4915200000002 > /dev/null
[ ! -e "$M2MGUARD_HOME/m2mguard.db" ] || fail "the SQLite store was used"
[ "$(pg_psql m2mguard -tA -c 'SELECT count(*) FROM devices')" -eq 2 ] || fail "devices not in PostgreSQL"
ok "devices provisioned into PostgreSQL"
start_gateway
wait_for 30 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"

start_agent pg-1 --count 1 --telemetry "temp=20.5C"; a1=$agent_pid
start_agent pg-2 --count 1 --telemetry "temp=18.0C"
wait_for 30 inbox_at_least 2 || fail "telemetry did not arrive"
sleep 0.5
[ "$(inbox_lines)" -eq 2 ] || fail "expected 2 inbox lines, got $(inbox_lines)"
[ "$(pg_psql m2mguard -tA -c 'SELECT count(*) FROM inbox')" -eq 2 ] || fail "inbox rows"
[ "$(pg_psql m2mguard -tA -c "SELECT cntr_in FROM devices WHERE name = 'pg-1'")" -ge 1 ] ||
  fail "counter not advanced in PostgreSQL"
ok "telemetry from 2 devices arrived once each; counters and inbox in PostgreSQL"

out=$("$bin" send --wait 30 pg-1 unlock) || fail "send unlock: $out"
grep -q "done" <<<"$out" || fail "unlock not confirmed: $out"
[ "$(grep -c '"command":"unlock"' "$tmp/pg-1.jsonl")" -eq 1 ] || fail "pg-1 did not unlock exactly once"
ok "unlock delivered once, proof of receipt verified"

inject --from +4915200000001 --to "$gateway_number" "$(head -n1 "$tmp/pg-1.sent")"
wait_for 15 has_event replay '"source":"+4915200000001"' || fail "no replay event"
ok "replayed SMS refused (replay)"

"$bin" device quarantine pg-1 > /dev/null
sleep 1.5 # the gateway re-reads device status every second
kill "$a1"; wait "$a1" 2>/dev/null || true
start_agent pg-1 --count 1 --telemetry "after-quarantine"
wait_for 15 has_event quarantined '"source":"+4915200000001"' || fail "no quarantined event"
[ "$(inbox_lines)" -eq 2 ] || fail "a refused message reached the inbox"
ok "quarantined device refused"
echo "gateway on PostgreSQL: $pass passed, 0 failed"
