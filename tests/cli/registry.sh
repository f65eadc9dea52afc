#!/usr/bin/env bash
# `m2mguard init`, `device ...` and `events`: exact outputs, exit codes, file
# modes, the provisioning file, and that no key appears in any output.
set -euo pipefail
bin=$1
pass=0
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME WANT GOT
  [ "$2" == "$3" ] || fail "$1: want '$2' got '$3'"
  pass=$((pass + 1))
}
tmp=$(mktemp -d)
follow_pid=
cleanup() { [ -n "$follow_pid" ] && kill "$follow_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
out=$tmp/out; err=$tmp/err; all=$tmp/all # every stdout and stderr, for the key check
: >"$all"
run() { # run WANT_RC cmd...: stdout in $out, stderr in $err
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  cat "$out" "$err" >>"$all"
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$err")"
  pass=$((pass + 1))
}
mode() { stat -c %a "$1"; }

dir=$tmp/wd
unset M2MGUARD_HOME

# ---- init ------------------------------------------------------------------
run 0 init "$dir"
expect "init output" "initialised $dir" "$(head -1 "$out")"
expect "dir mode" 700 "$(mode "$dir")"
expect "devices mode" 700 "$(mode "$dir/devices")"
expect "conf mode" 600 "$(mode "$dir/m2mguard.conf")"
expect "master mode" 600 "$(mode "$dir/master.key")"
expect "db mode" 600 "$(mode "$dir/m2mguard.db")"
grep -qE '^[0-9a-f]{64}$' "$dir/master.key" || fail "master.key is not 64 hex digits"
pass=$((pass + 1))
grep -qE '^password=[A-Za-z0-9]{8}$' "$dir/m2mguard.conf" || fail "no random password"
pass=$((pass + 1))
for kv in gateway_number=+491710000001 smsc_host=127.0.0.1 smsc_port=2775 system_id=m2mguard \
          system_type= window=10 enquire_link_ms=30000 por_timeout_s=120 output=inbox.jsonl \
          group_commit_max=256; do
  grep -qx -- "$kv" "$dir/m2mguard.conf" || fail "config lacks $kv"
  pass=$((pass + 1))
done
master_before=$(cat "$dir/master.key")
run 3 init "$dir"
expect "init refuses" "m2mguard init: $dir is already initialised; refusing to overwrite it" "$(cat "$err")"
expect "master key untouched" "$master_before" "$(cat "$dir/master.key")"
mkdir "$tmp/full"; touch "$tmp/full/x"
run 3 init "$tmp/full"
# M2MGUARD_HOME is the default
M2MGUARD_HOME=$tmp/home run 0 init
[ -f "$tmp/home/master.key" ] || fail "M2MGUARD_HOME not used"
pass=$((pass + 1))
run 0 --help
grep -q '^  init ' "$out" || fail "top-level help lacks init"
pass=$((pass + 1))

# ---- device add ----------------------------------------------------------------
export M2MGUARD_HOME=$dir
run 0 device add meter-1 --msisdn +4915112345678 --class meter
expect "add output" "added device meter-1 (id 1, +4915112345678, aes-128, key version 1)
provisioning file: $dir/devices/meter-1.prov" "$(cat "$out")"
prov=$dir/devices/meter-1.prov
expect "prov mode" 600 "$(mode "$prov")"
expect "prov format" "# m2mguard device provisioning file: SECRET, keep it mode 0600
name=meter-1
msisdn=+4915112345678
gateway=+491710000001
tar=4d4701
alg=aes
key_version=1" "$(head -7 "$prov")"
kic=$(sed -n 's/^kic=//p' "$prov"); kid=$(sed -n 's/^kid=//p' "$prov")
[[ $kic =~ ^[0-9a-f]{32}$ && $kid =~ ^[0-9a-f]{32}$ && $kic != "$kid" ]] || fail "keys are not 2 x 32 hex digits"
pass=$((pass + 1))
expect "prov lines" 9 "$(wc -l <"$prov")"
run 0 device add lock-7 --msisdn +4915199999999 --alg 3des2 --tar b00011 --dir "$dir"
prov7=$dir/devices/lock-7.prov
grep -qx 'alg=3des2' "$prov7" && grep -qx 'tar=b00011' "$prov7" || fail "lock-7 provisioning file"
pass=$((pass + 1))
run 1 device add meter-1 --msisdn +4915100000000
expect "name taken" "m2mguard device add: device name 'meter-1' is taken" "$(cat "$err")"
run 1 device add meter-2 --msisdn +4915112345678
expect "msisdn taken" "m2mguard device add: MSISDN +4915112345678 is already registered" "$(cat "$err")"
run 2 device add 'bad/name' --msisdn +491
expect "bad name" "m2mguard device add: invalid device name 'bad/name': use 1..63 of A-Z a-z 0-9 . _ -" "$(cat "$err")"
run 2 device add meter-2 --msisdn 4915
expect "bad msisdn" "m2mguard device add: invalid MSISDN '4915': use '+' and 1..15 digits (E.164)" "$(cat "$err")"
run 2 device add meter-2 --msisdn +1234567890123456
run 2 device add meter-2
run 2 device add meter-2 --msisdn +491 --alg rot13
run 2 device add meter-2 --msisdn +491 --tar 12
# an existing provisioning file is not overwritten, and nothing is registered
echo keep >"$dir/devices/meter-3.prov"; chmod 600 "$dir/devices/meter-3.prov"
run 1 device add meter-3 --msisdn +4915133333333
expect "prov kept" keep "$(cat "$dir/devices/meter-3.prov")"
run 3 device show meter-3
rm "$dir/devices/meter-3.prov"
run 3 device list --dir "$tmp/nowhere"

# ---- list / show -----------------------------------------------------------------
run 0 device list
day=$(date -u +%Y-%m-%d)
expect "list" "1	meter-1	meter	+4915112345678	active	1	0	0	${day}T
2	lock-7	-	+4915199999999	active	1	0	0	${day}T" "$(cut -c1-200 "$out" | sed 's/T[0-9:]*Z$/T/')"
run 0 device list --json
[[ $(cat "$out") =~ ^\[\{\"id\":1,\"name\":\"meter-1\",\"class\":\"meter\",\"msisdn\":\"\+4915112345678\",\"status\":\"active\",\"tar\":\"4d4701\",\"key_version\":1,\"cntr_in\":0,\"cntr_out\":0,\"created\":\"${day}T[0-9:]+Z\"\},\{\"id\":2, ]] || fail "list --json: $(cat "$out")"
pass=$((pass + 1))
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==2 and d[1]["name"]=="lock-7"' "$out" || fail "list --json is not JSON"
  pass=$((pass + 1))
fi
run 0 device show lock-7
expect "show" "id: 2
name: lock-7
class: -
msisdn: +4915199999999
status: active
tar: b00011
key_version: 1
cntr_in: 0
cntr_out: 0
key: version 1 3des2 active" "$(grep -v '^created: ' "$out")"
run 0 device show meter-1 --json
[[ $(cat "$out") == *'"keys":[{"version":1,"alg":"aes-128","state":"active"}]}' ]] || fail "show --json: $(cat "$out")"
pass=$((pass + 1))
run 3 device show nope
expect "show unknown" "m2mguard device show: no such device" "$(cat "$err")"

# ---- events --follow in the background -------------------------------------------------
"$bin" events --follow --json >"$tmp/follow" 2>"$tmp/follow.err" &
follow_pid=$!
sleep 0.5

# ---- status changes ----------------------------------------------------------------
run 0 device quarantine meter-1
expect "quarantine" "device meter-1 quarantined" "$(cat "$out")"
run 0 device quarantine meter-1
expect "quarantine again" "device meter-1 is already quarantined" "$(cat "$out")"
run 0 device activate meter-1
expect "activate" "device meter-1 activated" "$(cat "$out")"
run 1 device delete meter-1
expect "delete active" "m2mguard device delete: device meter-1 is active; quarantine or revoke it first, or pass --yes" "$(cat "$err")"
run 0 device revoke lock-7
expect "revoke" "device lock-7 revoked: keys destroyed" "$(cat "$out")"
[ ! -e "$prov7" ] || fail "revoke left the provisioning file"
pass=$((pass + 1))
run 0 device show lock-7
expect "revoked keys" "key: none" "$(grep '^key:' "$out")"
expect "revoked status" "status: revoked" "$(grep '^status' "$out")"
expect "revoked key_version" "key_version: 0" "$(grep '^key_version' "$out")"
run 1 device revoke lock-7
run 1 device quarantine lock-7
expect "no wrapped keys left" 0 "$(sqlite3 "$dir/m2mguard.db" 'SELECT count(*) FROM keys WHERE device_id = 2')"
run 0 device delete lock-7
expect "delete" "device lock-7 deleted" "$(cat "$out")"
run 3 device show lock-7

# the follower saw the new events; stop it by its PID: it exits 0
for _ in $(seq 50); do grep -q '"kind":"delete"' "$tmp/follow" && break; sleep 0.1; done
grep -q '"kind":"delete"' "$tmp/follow" || fail "events --follow did not show the delete"
kill -TERM "$follow_pid"
set +e; wait "$follow_pid"; rc=$?; set -e
follow_pid=
expect "follow exit" 0 "$rc"
expect "follow kinds" "init device_add device_add quarantine activate revoke delete" \
  "$(sed 's/.*"kind":"\([a-z_]*\)".*/\1/' "$tmp/follow" | tr '\n' ' ' | sed 's/ $//')"
cat "$tmp/follow" "$tmp/follow.err" >>"$all"

# ---- events listing -------------------------------------------------------------------
run 0 events
expect "events count" 7 "$(wc -l <"$out")"
expect "events line" "meter-1	cli	-	quarantine	device meter-1 quarantined by the operator (was active)" \
  "$(sed -n 4p "$out" | cut -f2-)"
[[ $(sed -n 4p "$out" | cut -f1) =~ ^${day}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || fail "event time"
pass=$((pass + 1))
expect "event of a deleted device" "-	cli	-	revoke" "$(sed -n 6p "$out" | cut -f2-5)"
run 0 events --device meter-1 --json
expect "events --device" 3 "$(wc -l <"$out")"
[[ $(head -1 "$out") =~ ^\{\"id\":2,\"time\":\"${day}T[0-9:]+Z\",\"device\":\"meter-1\",\"bearer\":\"cli\",\"source\":\"\",\"kind\":\"device_add\",\"reason\":\"device\ meter-1\ added\ \(\+4915112345678,\ aes-128,\ key\ version\ 1\)\",\"count\":1,\"last\":\"${day}T[0-9:]+Z\",\"authenticated\":false\}$ ]] || fail "events --json: $(head -1 "$out")"
pass=$((pass + 1))
run 0 events --since 1h
expect "events --since 1h" 7 "$(wc -l <"$out")"
run 0 events --since 2099-01-01T00:00:00Z
expect "events --since future" 0 "$(wc -l <"$out")"
run 2 events --since yesterday
run 2 events --since 2026-13-01T00:00:00Z
run 3 events --device nope

# ---- no key appeared in any output ------------------------------------------------------
for k in "$kic" "$kid" "$(cat "$dir/master.key")"; do
  ! grep -qi "$k" "$all" || fail "a key appeared in the output"
  pass=$((pass + 1))
done

# ---- --help tells the truth: every subcommand has one ------------------------------------------
for s in add list show quarantine activate revoke delete; do
  run 0 device "$s" --help
  grep -q "^usage: m2mguard device $s" "$out" || fail "device $s --help"
done
run 0 events --help
run 0 init --help
run 2 device frobnicate
echo "cli registry: $pass passed, 0 failed"
