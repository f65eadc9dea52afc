#!/usr/bin/env bash
# `m2mguard device import` (issue 15, 1 M devices): CSV and JSON lines, bad lines
# named FILE:LINE, duplicates and re-imports refused with nothing stored, the
# provisioning output 0600 whose keys a real gateway accepts (SMSC peer, gateway
# and device agent as processes), 10 000 devices in under 5 s.
source "$(dirname "$0")/../gateway/lib.sh"

count() { "$bin" device list | wc -l; }
# expect_fail NAME RC STDERR_SUBSTRING cmd...
expect_fail() {
  local name=$1 want=$2 sub=$3; shift 3
  set +e; local err; err=$("$@" 2>&1 >/dev/null); local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want (stderr: $err)"
  [[ $err == *"$sub"* ]] || fail "$name: stderr lacks '$sub': $err"
}

new_workdir
d=$tmp/in; mkdir "$d"

# 1. CSV, columns in any order, quoted field, CRLF line
printf 'msisdn,name,class\r\n+4915100000001,meter-1,meter\r\n"+4915100000002",meter-2,\n+4915100000003,lock-1,lock\n' > "$d/a.csv"
out=$("$bin" device import --provision-out "$d/a.out" "$d/a.csv")
grep -q "imported 3 devices" <<<"$out" || fail "csv import: $out"
[ "$(stat -c %a "$d/a.out")" = 600 ] || fail "provisioning output is not 0600"
[ "$(wc -l < "$d/a.out")" -eq 3 ] || fail "provisioning output has not 3 lines"
[ "$(jq -r 'select(.name=="meter-1") | .kic | length' "$d/a.out")" = 32 ] || fail "no AES-128 KIc"
"$bin" device list | grep -q $'meter-1\tmeter\t+4915100000001\tactive\t1' || fail "meter-1 not registered"
"$bin" device list | grep -q $'meter-2\t-\t+4915100000002\tactive\t1' || fail "meter-2 not registered"
ok "CSV import: 3 devices, key version 1, output 0600 with their keys"

# 2. JSON lines (detected by '{'), IP-only and dual-bearer devices, alg and tar
cat > "$d/b.jsonl" <<'EOF'
{"name": "cam-1", "msisdn": "+4915200000001", "class": "camera", "alg": "aes256", "tar": "4d4702"}
{"name":"cam-2","bearer":"ip"}

{"name":"cam-3","msisdn":"+4915200000003","bearer":"sms+ip"}
EOF
out=$("$bin" device import --provision-out "$d/b.out" - < "$d/b.jsonl")
grep -q "imported 3 devices" <<<"$out" || fail "jsonl import: $out"
[ "$(jq -r 'select(.name=="cam-1") | "\(.tar) \(.kid | length)"' "$d/b.out")" = "4d4702 64" ] || fail "cam-1 keys"
[ "$(jq -r 'select(.name=="cam-2") | "\(.bearers) \(.kic)"' "$d/b.out")" = "ip null" ] || fail "cam-2 line"
"$bin" device show cam-3 | grep -q '^bearers: sms ip' || fail "cam-3 bearers"
"$bin" device show cam-1 | grep -q '^key: version 1 aes-256 active' || fail "cam-1 key"
"$bin" device show cam-2 | grep -q '^key: none' || fail "cam-2 has keys"
ok "JSON lines from stdin: SMS, IP-only and dual-bearer devices"

# 3. bad lines: every one named FILE:LINE, nothing stored, no output left
n0=$(count)
printf 'name,msisdn,class\nok-1,+4915300000001,x\nok-2,4915300000002,x\nbad name,+4915300000003,x\nok-4,+4915300000004,b@d\nok-5,+4915300000005,x,y\nok-1,+4915300000006,x\nok-7,+4915300000001,x\nok-8,+4915100000001,x\nmeter-2,+4915300000009,x\n' > "$d/bad.csv"
set +e; err=$("$bin" device import --provision-out "$d/bad.out" "$d/bad.csv" 2>&1 >/dev/null); rc=$?; set -e
[ "$rc" -eq 1 ] || fail "bad file: exit $rc"
for want in "bad.csv:3: invalid MSISDN" "bad.csv:4: invalid name" "bad.csv:5: invalid class" \
            "bad.csv:6: more columns" "bad.csv:7: duplicate name 'ok-1' (line 2)" \
            "bad.csv:8: duplicate MSISDN +4915300000001 (line 2)" \
            "bad.csv:9: MSISDN +4915100000001 is already registered (device meter-1)" \
            "bad.csv:10: device name 'meter-2' is already registered" "nothing imported"; do
  [[ $err == *"$want"* ]] || fail "bad file: stderr lacks '$want': $err"
done
[ ! -e "$d/bad.out" ] || fail "output left behind after a refused import"
[ "$(count)" -eq "$n0" ] || fail "a refused import stored devices"
ok "bad and duplicate lines refused with FILE:LINE, nothing stored"

# 4. --continue: the good lines go in, the bad ones are reported
out=$("$bin" device import --continue --provision-out "$d/bad.out" "$d/bad.csv" 2>"$tmp/cont.err")
grep -q "imported 1 devices from .* (8 bad lines skipped)" <<<"$out" || fail "--continue: $out"
grep -q "bad.csv:3: invalid MSISDN.*; skipped" "$tmp/cont.err" || fail "--continue report"
[ "$(count)" -eq $((n0 + 1)) ] && [ "$(wc -l < "$d/bad.out")" -eq 1 ] || fail "--continue stored wrong"
ok "--continue imports the good lines and reports the bad ones"

# 5. re-import refused, output never overwritten, bounded lines, JSON errors
expect_fail "re-import" 1 "a.csv:2: device name 'meter-1' is already registered" \
  "$bin" device import --provision-out "$d/a2.out" "$d/a.csv"
[ ! -e "$d/a2.out" ] && [ "$(count)" -eq $((n0 + 1)) ] || fail "re-import changed something"
expect_fail "output exists" 3 "File exists" "$bin" device import --provision-out "$d/a.out" "$d/b.jsonl"
{ echo name,msisdn; echo "long,+4915400000001,$(head -c 2000 /dev/zero | tr '\0' x)"; } > "$d/long.csv"
expect_fail "long line" 1 "long.csv:2: line longer than 1024 octets" \
  "$bin" device import --provision-out "$d/l.out" "$d/long.csv"
printf 'name,msisdn\nn1,+4915400000002\nn2,+49154\0000003\n' > "$d/nul.csv"
expect_fail "NUL octet" 1 "nul.csv:3: NUL octet" "$bin" device import --provision-out "$d/n.out" "$d/nul.csv"
printf '{"name":"j1","msisdn":"+4915500000001"}\n{"name":"j2","color":"red"}\n{"name":"j3","msisdn":+49}\n' > "$d/c.jsonl"
set +e; err=$("$bin" device import --provision-out "$d/c.out" "$d/c.jsonl" 2>&1 >/dev/null); set -e
[[ $err == *"c.jsonl:2: unknown member 'color'"* && $err == *"c.jsonl:3: bad JSON"* ]] || fail "jsonl errors: $err"
expect_fail "no --provision-out" 2 "--provision-out" "$bin" device import "$d/a.csv"
expect_fail "CSV without name" 1 "no 'name' column" \
  "$bin" device import --provision-out "$d/x.out" <(printf 'msisdn\n+4915600000001\n')
ok "re-import refused; existing output, long lines, NUL octets, bad JSON, bad header refused"

# 5b. a failure after committed transactions: they are undone (the name of an
# application passes the check and is refused by the insert, in the 3rd transaction)
"$bin" app add telemetry-app --role telemetry-reader > /dev/null
n1=$(count)
awk 'BEGIN { print "name,msisdn"; for (i = 0; i < 25; i++) printf "u-%02d,+4917%09d\n", i, i;
             print "telemetry-app,+491799999999" }' > "$d/u.csv"
expect_fail "undo" 1 "u.csv:27: name 'telemetry-app' is taken by an application" \
  "$bin" device import --batch 10 --provision-out "$d/u.out" "$d/u.csv"
[ ! -e "$d/u.out" ] && [ "$(count)" -eq "$n1" ] || fail "committed transactions not undone"
expect_fail "undo --continue" 1 "stopped: 20 devices imported before the failure" \
  "$bin" device import --continue --batch 10 --provision-out "$d/u.out" "$d/u.csv"
[ "$(wc -l < "$d/u.out")" -eq 20 ] && [ "$(count)" -eq $((n1 + 20)) ] || fail "--continue did not keep 20"
ok "a failed transaction undoes the committed ones (--continue: keeps them, output cut back)"

# 6. the keys work: a real gateway accepts telemetry sealed with the imported keys
jq -r 'select(.name=="meter-2") | to_entries[] | "\(.key)=\(.value)"' "$d/a.out" > "$tmp/meter-2.prov"
chmod 600 "$tmp/meter-2.prov"
start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
PROV=$tmp/meter-2.prov start_agent meter-2 --count 1 --telemetry "kwh=42"
wait_for 20 inbox_at_least 1 || fail "telemetry of an imported device did not arrive"
grep -q '"device":"meter-2".*"text":"kwh=42 seq=1"' "$M2MGUARD_HOME/inbox.jsonl" || fail "inbox line"
stop_pid "$agent_pid"
stop_pid "$gw_pid"
ok "the imported keys verify: the gateway accepted the device's secured SMS"

# 7. 10 000 devices in under 5 s (30 s for a sanitizer build)
awk 'BEGIN { print "name,msisdn,class"; for (i = 0; i < 10000; i++) printf "fleet-%05d,+4916%09d,meter\n", i, i }' > "$d/10k.csv"
limit=5; nm -D "$bin" 2>/dev/null | grep __asan_init > /dev/null && limit=30
start=$(date +%s.%N)
"$bin" device import --provision-out "$d/10k.out" "$d/10k.csv" > /dev/null
secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
[ "$(wc -l < "$d/10k.out")" -eq 10000 ] || fail "10k output"
[ "$(sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM keys k JOIN devices d ON d.id = k.device_id WHERE d.name LIKE 'fleet-%' AND k.state = 1")" -eq 10000 ] || fail "10k keys"
awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s < l) }' || fail "10 000 devices took $secs s (limit $limit s)"
ok "10 000 devices imported in $secs s"
echo "import: $pass passed, 0 failed"
