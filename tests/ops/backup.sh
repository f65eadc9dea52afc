#!/usr/bin/env bash
# Backup and restore (docs/operations.md "Backup and restore"): `m2mguard
# backup` while a gateway accepts traffic from a device, the copy checked
# (0600, integrity, no master key in it); `restore` refused while the gateway
# holds the store, with a wrong master key and for a file that is not a
# store; restored into a new working directory, whose gateway accepts the
# device's next message and refuses a replayed old one.
source "$(dirname "$0")/../gateway/lib.sh"
PER_DEVICE=${MG_BACKUP_MESSAGES:-300}

new_workdir
start_smsc
"$bin" device add meter-1 --msisdn +4915200000001 > /dev/null
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
start_agent meter-1 --count "$PER_DEVICE" --interval-ms 10 --exit-when-done --state "$tmp/meter-1.state"
m1=$agent_pid
wait_for 30 inbox_at_least 20 || fail "no traffic: $(inbox_lines) messages accepted"

# 1. online backup while the gateway accepts messages
before=$(inbox_lines)
"$bin" backup "$tmp/b1.db" > "$tmp/backup.log" 2>&1 || fail "backup failed: $(cat "$tmp/backup.log")"
grep -q "integrity ok" "$tmp/backup.log" || fail "backup did not report its check"
grep -q "master key is not in it" "$tmp/backup.log" || fail "backup did not say where the master key is"
[ "$(stat -c %a "$tmp/b1.db")" = 600 ] || fail "backup has mode $(stat -c %a "$tmp/b1.db")"
kill -0 "$gw_pid" || fail "the gateway stopped during the backup"
grown() { [ "$(inbox_lines)" -gt "$((before + 10))" ]; }
wait_for 20 grown || fail "the gateway accepted nothing after the backup"
[ "$(sqlite3 "$tmp/b1.db" 'PRAGMA integrity_check')" = ok ] || fail "backup fails sqlite3's integrity check"
rows=$(sqlite3 "$tmp/b1.db" "SELECT count(*) FROM inbox")
[ "$rows" -ge "$before" ] || fail "backup has $rows inbox rows, $before were accepted before it"
# keys stay wrapped: neither the master key (hex or raw) nor a device key in clear
python3 - "$tmp/b1.db" "$M2MGUARD_HOME/master.key" "$M2MGUARD_HOME/devices/meter-1.prov" <<'PY' || fail "a key is in the backup in clear"
import re, sys
db = open(sys.argv[1], 'rb').read()
mk = open(sys.argv[2]).read().strip()
secrets = [mk.encode(), bytes.fromhex(mk)]
for line in open(sys.argv[3]):
    m = re.match(r'\s*(kic|kid)\s*=\s*([0-9a-fA-F]+)\s*$', line)
    if m:
        secrets += [m.group(2).encode(), bytes.fromhex(m.group(2))]
assert len(secrets) >= 4, "no key found in the provisioning file"
sys.exit(1 if any(s in db for s in secrets) else 0)
PY
ok "online backup during traffic: 0600, integrity ok, $rows of the inbox rows, no key in clear; the gateway went on"

set +e
"$bin" backup "$tmp/b1.db" > /dev/null 2>&1; rc=$?
set -e
[ $rc -eq 3 ] || fail "backup over an existing file: exit $rc, want 3"
ok "backup refuses to overwrite a file"

# 2. restore refused while the gateway holds the store
set +e
"$bin" restore "$tmp/b1.db" > "$tmp/restore-busy.log" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "restore under a running gateway: exit $rc, want 1"
grep -q "in use by process $gw_pid" "$tmp/restore-busy.log" || fail "restore did not name the gateway: $(cat "$tmp/restore-busy.log")"
ok "restore refused while the gateway holds the store (names PID $gw_pid)"

wait "$m1" || fail "agent meter-1 failed"
wait_for 30 inbox_at_least "$PER_DEVICE" || fail "only $(inbox_lines) of $PER_DEVICE messages accepted"
stop_pid "$gw_pid"

# 3. a new working directory: the configuration and the master key of the old one
new=$tmp/gw2
mkdir -m 700 "$new"
cp -p "$M2MGUARD_HOME/m2mguard.conf" "$M2MGUARD_HOME/master.key" "$new/"
# wrong master key, not a store: refused, nothing left behind
"$bin" init "$tmp/other" > /dev/null
mkdir -m 700 "$tmp/gw3"
cp -p "$M2MGUARD_HOME/m2mguard.conf" "$tmp/gw3/"; cp -p "$tmp/other/master.key" "$tmp/gw3/"
set +e
"$bin" restore --dir "$tmp/gw3" "$tmp/b1.db" > "$tmp/restore-key.log" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "restore with another master key: exit $rc, want 1 ($(cat "$tmp/restore-key.log"))"
grep -q "master key does not match" "$tmp/restore-key.log" || fail "no master-key message: $(cat "$tmp/restore-key.log")"
head -c 8192 /dev/urandom > "$tmp/junk.db"
set +e
"$bin" restore --dir "$new" "$tmp/junk.db" > "$tmp/restore-junk.log" 2>&1; rc=$?
set -e
[ $rc -eq 3 ] || fail "restore of a file that is not a store: exit $rc, want 3 ($(cat "$tmp/restore-junk.log"))"
# a backup of a newer program (schema version above ours): refused
cp "$tmp/b1.db" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "INSERT INTO schema_version(version, applied) VALUES (999, 0)"
set +e
"$bin" restore --dir "$new" "$tmp/newer.db" > "$tmp/restore-newer.log" 2>&1; rc=$?
set -e
[ $rc -eq 3 ] || fail "restore of a newer schema: exit $rc, want 3 ($(cat "$tmp/restore-newer.log"))"
grep -q "newer than this program" "$tmp/restore-newer.log" || fail "no schema message: $(cat "$tmp/restore-newer.log")"
left=$(find "$new" "$tmp/gw3" -name 'm2mguard.db*' | wc -l)
[ "$left" -eq 0 ] || fail "refused restores left $left files"
ok "restore refuses another master key (exit 1), a file that is not a store and a newer schema (exit 3), leaving nothing"

"$bin" restore --dir "$new" "$tmp/b1.db" > "$tmp/restore.log" 2>&1 || fail "restore failed: $(cat "$tmp/restore.log")"
grep -q "keys of meter-1 unwrap" "$tmp/restore.log" || fail "restore did not check a key blob: $(cat "$tmp/restore.log")"
[ "$(stat -c %a "$new/m2mguard.db")" = 600 ] || fail "restored store has mode $(stat -c %a "$new/m2mguard.db")"
[ "$(sqlite3 "$new/m2mguard.db" "SELECT count(*) FROM inbox")" -eq "$rows" ] || fail "restored inbox differs from the backup"
ok "restored into a new working directory (master key checked, one key blob unwrapped)"

# restoring over an existing store keeps the old one
"$bin" restore --dir "$new" "$tmp/b1.db" > "$tmp/restore2.log" 2>&1 || fail "second restore failed: $(cat "$tmp/restore2.log")"
kept=$(sed -n 's/^the store it replaced is kept as //p' "$tmp/restore2.log")
[ -n "$kept" ] && [ -f "$kept" ] || fail "the replaced store was not kept: $(cat "$tmp/restore2.log")"
ok "a restore over a store keeps the replaced one ($(basename "$kept"))"

# 4. the restored store serves: the next message accepted, an old one replayed refused
old=$M2MGUARD_HOME
export M2MGUARD_HOME=$new
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway on the restored store did not bind"
accepted() { [ "$(sqlite3 -cmd '.timeout 5000' "$new/m2mguard.db" "SELECT count(*) FROM inbox")" -gt "$rows" ]; }
PROV=$old/devices/meter-1.prov start_agent meter-1 --count 1 --exit-when-done --state "$tmp/meter-1.state"
wait "$agent_pid" || fail "agent (next message) failed"
wait_for 20 accepted || fail "the restored store did not accept the device's next message"
ok "the restored store accepts the device's next message"
replays() { "$bin" events --json | grep -c '"kind":"replay"' || true; }
r0=$(replays)
n0=$(sqlite3 -cmd '.timeout 5000' "$new/m2mguard.db" "SELECT count(*) FROM inbox")
inject --from +4915200000001 --to "$gateway_number" "$(sed -n 1p "$tmp/meter-1.sent")"
replay_seen() { [ "$(replays)" -gt "$r0" ]; }
wait_for 10 replay_seen || fail "the replayed old message was not refused"
sleep 0.3
[ "$(sqlite3 -cmd '.timeout 5000' "$new/m2mguard.db" "SELECT count(*) FROM inbox")" -eq "$n0" ] || fail "the replay was accepted"
ok "the restored store refuses a replayed old message"

echo "ops backup: $pass passed, 0 failed"
