#!/usr/bin/env bash
# Issue 11 item 3: refusals are aggregated per (source, kind) and window.
# 1. A burst of 200 forged SMS from one registered number (checksum under a
#    guessed key) through the real SMSC: events_burst (10) rows of their own,
#    the rest in aggregate rows (written by the running gateway when the window
#    closes) whose counts add up to exactly 190; `events --json` shows count,
#    last and authenticated (false: a sender number proves nothing).
# 2. Blocks (store.h mg_block, written here with sqlite3 as the detector or the
#    operator would through the store; its trigger moves registry_gen): a
#    DROP-blocked number's 100 SMS are refused before any work ("blocked",
#    aggregated only); a THROTTLE-blocked unknown number passes 6 a minute to the
#    normal path (unknown_sender), the rest "throttled".
# The injector is tests/smsc/flood_mix.js with --factor 0: it sends the lines
# of a file, paced.
source "$(dirname "$0")/lib.sh"

new_workdir
dev=+4915100008001
"$bin" device add agg-1 --msisdn "$dev" > /dev/null
SMSC_SPOOF=1 start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"

forged=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 00000000ff \
  --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 756e6c6f636b)
for _ in $(seq 1 200); do echo "$dev 027000$forged"; done > "$tmp/burst.txt"
send_file() {
  node "$src/tests/smsc/flood_mix.js" --port "$port" --password "$password" --to "$gateway_number" \
    --legit "$1" --rate 400 --factor 0 --max-seconds 120 >> "$tmp/inj.out" 2>> "$tmp/inj.log" \
    || fail "flood_mix.js: $(cat "$tmp/inj.out" "$tmp/inj.log")"
}
send_file "$tmp/burst.txt"

# sum KIND SOURCE: "rows singles aggregates occurrences authenticated last_ok" of those events
sum() {
  "$bin" events --json | python3 -c '
import json, sys
kind, src = sys.argv[1], sys.argv[2]
r = s = a = o = au = 0; last_ok = 1
for line in sys.stdin:
    e = json.loads(line)
    if e["kind"] != kind or e["source"] != src:
        continue
    for k in ("count", "last", "authenticated"):
        if k not in e:
            sys.exit("no %s in %s" % (k, line))
    r += 1; o += e["count"]; au += e["authenticated"]
    if e["count"] > 1:
        a += 1
        if e["last"] < e["time"]: last_ok = 0
    else:
        s += 1
print(r, s, a, o, au, last_ok)' "$1" "$2"
}
# the aggregate row comes when the window (events_aggregate_s, 10 s) closes
burst_counted() { [ "$(sum auth_fail "$dev" | cut -d' ' -f4)" = 200 ]; }
wait_for 40 burst_counted || fail "auth_fail rows do not add up to 200: $(sum auth_fail "$dev")"
read -r rows singles aggs occ auth last_ok <<<"$(sum auth_fail "$dev")"
echo "aggregate: 200 forged SMS from $dev: $rows rows: $singles single, $aggs aggregate(s), standing for $occ"
"$bin" events --json | grep '"kind":"auth_fail"' | grep -v '"count":1,' | sed 's/^/aggregate:   /'
[ "$singles" -eq 10 ] || fail "$singles single rows, events_burst is 10"
[ "$aggs" -ge 1 ] && [ $((occ - singles)) -eq 190 ] || fail "aggregates stand for $((occ - singles)), not 190"
[ "$auth" -eq 0 ] || fail "$auth refusal rows authenticated"
[ "$last_ok" -eq 1 ] || fail "an aggregate's last is before its time"
ok "200 forged SMS: 10 single rows + $aggs aggregate row(s) counting exactly 190, none authenticated"

# 2. blocks
now=$(date +%s)
sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
  "INSERT INTO blocks(bearer, source, mode, until, created, reason) VALUES
   ('sms', '+4917000000991', 2, $((now + 3600)), $now, 'test: drop'),
   ('sms', '+4917000000992', 1, $((now + 3600)), $now, 'test: throttle')"
sleep 2.5 # the gateway reloads its blocks within a second of registry_gen moving
for _ in $(seq 1 100); do echo "+4917000000991 027000$forged"; done > "$tmp/blocked.txt"
for _ in $(seq 1 50); do echo "+4917000000992 027000$forged"; done >> "$tmp/blocked.txt"
send_file "$tmp/blocked.txt"
sleep 1
stop_pid "$gw_pid" # SIGTERM: the open windows' aggregate rows are written
grep 'gateway: stopped' "$tmp/gateway.log" | sed 's/^/aggregate: /'
grep -q 'gateway: stopped: .* 100 blocked, 44 throttled)' "$tmp/gateway.log" || fail "not 100 blocked and 44 throttled"
read -r rows singles aggs occ auth last_ok <<<"$(sum blocked +4917000000991)"
[ "$occ" -eq 100 ] && [ "$singles" -eq 0 ] || fail "blocked: $occ occurrences in $rows rows ($singles single)"
read -r rows singles aggs occ auth last_ok <<<"$(sum throttled +4917000000992)"
[ "$occ" -eq 44 ] || fail "throttled: $occ occurrences"
read -r rows singles aggs occ auth last_ok <<<"$(sum unknown_sender +4917000000992)"
[ "$occ" -eq 6 ] || fail "unknown_sender of the throttled number: $occ, not 6"
ok "DROP: 100 refused before any work, one aggregate row; THROTTLE: 6 passed, 44 throttled"

echo "gateway aggregate: $pass passed, 0 failed"
