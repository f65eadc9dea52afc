#!/usr/bin/env bash
# Issue 11 item 3: under a flood of forged SMS at 10x the legitimate rate,
# legitimate devices keep >= 99 % delivery, and the events table grows by far
# less than one row per forged SMS (aggregates), with exact arithmetic: the
# refusal rows' counts add up to the forged SMS sent.
# Through the real SMSC (tests/smsc/smsc.js, SMSC_SPOOF=1) and the real gateway
# daemon; the injector is tests/smsc/flood_mix.js. Legitimate traffic: real
# secured packets of the registered devices, built under each device's keys
# from its provisioning file (flood_mix_pack.py, checked against `m2mguard sms pack`) (SPI 1600: checksum,
# ciphering, counter higher), counters 1.. per device. Forged: random unknown
# numbers, registered numbers with a broken checksum, replays of genuine packets.
# Defaults: 10 devices x 40 messages at 40/s (10 s), factor 10 (400 forged/s).
# Rows are bounded per window, not per message: per kind and window of
# events_aggregate_s, events_new_sources sources with up to events_burst rows
# each, one aggregate row per source, one fleet-wide row; the test asserts
# fewer than one row per 4 forged SMS (the bench, longer, shows the ratio fall). bench/bench_flood.sh
# runs it bigger; FLOOD_MIX_DEVICES, _PER_DEVICE, _RATE, _FACTOR override.
source "$(dirname "$0")/lib.sh"

devices=${FLOOD_MIX_DEVICES:-10} per_dev=${FLOOD_MIX_PER_DEVICE:-40}
rate=${FLOOD_MIX_RATE:-40} factor=${FLOOD_MIX_FACTOR:-10}
[ "$devices" -ge 1 ] && [ "$devices" -le 999 ] || fail "FLOOD_MIX_DEVICES: 1..999"

new_workdir
# legitimate packets: device i sends legit-III-KKKK with counter KKKK
legit=$tmp/legit.txt
: > "$legit"
declare -a msisdn kic kid
for i in $(seq 1 "$devices"); do
  n=$(printf '+4915100007%03d' "$i")
  "$bin" device add "mix-$i" --msisdn "$n" > /dev/null
  prov=$M2MGUARD_HOME/devices/mix-$i.prov
  msisdn[$i]=$n
  kic[$i]=$(sed -n 's/^kic=//p' "$prov")
  kid[$i]=$(sed -n 's/^kid=//p' "$prov")
  [ "$(sed -n 's/^alg=//p' "$prov")" = aes ] || fail "device mix-$i: not AES"
done
# one process builds them all (tests/gateway/flood_mix_pack.py); its first
# packet must be octet for octet what `m2mguard sms pack` builds
specs=()
for i in $(seq 1 "$devices"); do specs+=("${msisdn[$i]}:${kic[$i]}:${kid[$i]}"); done
python3 "$src/tests/gateway/flood_mix_pack.py" "$per_dev" "${specs[@]}" > "$legit" || fail "flood_mix_pack.py failed"
hex=$(printf 'legit-%03d-%04d' 1 1 | od -An -tx1 | tr -d ' \n')
ref=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 0000000001 \
  --kic-key "${kic[1]}" --kid-key "${kid[1]}" "$hex") || fail "sms pack: $ref"
[ "$(head -n1 "$legit")" = "${msisdn[1]} 027000$ref" ] || fail "flood_mix_pack.py differs from m2mguard sms pack"
n_legit=$(wc -l < "$legit")
ok "$n_legit genuine secured packets of $devices devices built"

SMSC_SPOOF=1 start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
sleep 1
ev0=$(sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT coalesce(max(id), 0) FROM events_all")
rss0=$(rss_kib "$gw_pid")

node "$src/tests/smsc/flood_mix.js" --port "$port" --password "$password" --to "$gateway_number" \
  --legit "$legit" --rate "$rate" --factor "$factor" --max-seconds 600 \
  > "$tmp/flood_mix.out" 2>> "$tmp/flood_mix.log" || fail "flood_mix.js: $(cat "$tmp/flood_mix.out" "$tmp/flood_mix.log")"
inj=$(cat "$tmp/flood_mix.out")
forged=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["forged_submitted"])' "$inj")

delivered() { grep -c '"text":"legit-' "$M2MGUARD_HOME/inbox.jsonl" 2>/dev/null || true; }
# the gateway is through the flood when the refusals are all counted: wait for
# the delivered count to reach the sent one, or to stop moving for 5 s
prev=-1 still=0
for _ in $(seq 1 300); do
  d=$(delivered)
  [ "$d" -ge "$n_legit" ] && break
  if [ "$d" = "$prev" ]; then still=$((still + 1)); [ "$still" -ge 50 ] && break; else still=0; fi
  prev=$d
  sleep 0.1
done
sleep 2
rss1=$(rss_kib "$gw_pid")
# SIGTERM: the gateway writes the aggregate rows of the windows still open
stop_pid "$gw_pid"
grep -q 'gateway: stopped' "$tmp/gateway.log" || fail "the gateway did not stop cleanly"
d=$(delivered)
dups=$(grep -o '"text":"legit-[0-9-]*' "$M2MGUARD_HOME/inbox.jsonl" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups legitimate messages delivered twice"

# events added: rows and the occurrences they stand for, per kind
"$bin" events --json | python3 -c '
import json, sys
ev0 = int(sys.argv[1])
rows = {}; occ = {}; aggs = 0; auth = {}
for line in sys.stdin:
    e = json.loads(line)
    if e["id"] <= ev0 or e["bearer"] != "sms":
        continue
    k = e["kind"]
    rows[k] = rows.get(k, 0) + 1
    occ[k] = occ.get(k, 0) + e["count"]
    auth[k] = auth.get(k, 0) + (1 if e["authenticated"] else 0)
    aggs += 1 if e["count"] > 1 else 0
ref_rows = sum(v for k, v in rows.items() if k != "auth_ok")
ref_occ = sum(v for k, v in occ.items() if k != "auth_ok")
ref_auth = sum(v for k, v in auth.items() if k != "auth_ok")
print(ref_rows, ref_occ, aggs, rows.get("auth_ok", 0), auth.get("auth_ok", 0), ref_auth)
for k in sorted(rows):
    print("kind %s: %d rows for %d occurrences" % (k, rows[k], occ[k]), file=sys.stderr)
' "$ev0" > "$tmp/ev.sum" 2> "$tmp/ev.kinds"
read -r ref_rows ref_occ aggs ok_rows ok_auth ref_auth < "$tmp/ev.sum"
pct=$(python3 -c "print('%.2f' % (100.0 * $d / $n_legit))")

echo "flood_mix: injector: $inj"
echo "flood_mix: legitimate sent $n_legit, delivered $d ($pct %)"
echo "flood_mix: forged $forged at $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["forged_per_s"])' "$inj")/s; refusal rows +$ref_rows (of them $aggs aggregates) standing for $ref_occ refusals"
sed 's/^/flood_mix:   /' "$tmp/ev.kinds"
echo "flood_mix: gateway VmRSS $rss0 KiB before, $rss1 KiB after the flood"
echo "flood_mix: $(grep 'gateway: stopped' "$tmp/gateway.log")"

python3 -c "import sys; sys.exit(0 if $d * 100 >= 99 * $n_legit else 1)" \
  || fail "legitimate delivery $pct % < 99 %"
ok "legitimate delivery $d/$n_legit = $pct % (>= 99 %) under $forged forged SMS at ${factor}x"
[ "$ok_rows" -eq "$d" ] && [ "$ok_auth" -eq "$d" ] || fail "auth_ok rows $ok_rows ($ok_auth authenticated) for $d delivered"
[ "$ref_auth" -eq 0 ] || fail "$ref_auth refusal rows marked authenticated"
ok "every delivered message one authenticated auth_ok row; no refusal authenticated"
[ "$ref_occ" -eq "$forged" ] || fail "refusal rows stand for $ref_occ refusals, $forged forged SMS were sent"
[ $((ref_rows * 4)) -lt "$forged" ] || fail "refusal rows +$ref_rows for $forged forged SMS (not aggregated)"
[ "$aggs" -ge 1 ] || fail "no aggregate row"
ok "events aggregated: +$ref_rows rows for $forged forged SMS, counts add up exactly"

echo "gateway flood_mix: $pass passed, 0 failed"
