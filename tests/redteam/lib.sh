# The red-team suite's stack and bookkeeping (tests/redteam/redteam.sh).
# One stack for every attack: a working directory with a CA, the real SMSC
# peer with its attacker's control channel (tests/smsc/smsc.js SMSC_CONTROL=1),
# the gateway, Mosquitto with the m2mguard plugin, the EST server and, when
# the build has it, the detector (`m2mguard detect run`). Every process is
# started here and stopped by its PID on exit (tests/lib/harness.sh).
set -euo pipefail
bin=$1
plugin_so=$2
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export MG_SOURCE_DIR=$src
MG_LOG_TAIL=${MG_LOG_TAIL:-40}
mg_test_prefix=mg-redteam source "$src/tests/lib/harness.sh"
export PATH="$PATH:/usr/sbin" # after the test PATH (the ASan broker wrapper comes first)

now_ms() { date +%s%3N; }
# ctl COMMAND...: one command on the SMSC's control channel; the answer in $ctl_reply.
ctl() {
  local fd
  exec {fd}<>"/dev/tcp/127.0.0.1/$cport"
  printf '%s\n' "$*" >&"$fd"
  ctl_reply=
  read -r -t 120 ctl_reply <&"$fd" || true
  exec {fd}>&-
  echo "ctl $* -> $ctl_reply" >> "$tmp/ctl.log"
  [ "${ctl_reply%% *}" = ok ]
}
# set_conf KEY VALUE in m2mguard.conf
set_conf() {
  local f=$M2MGUARD_HOME/m2mguard.conf
  if grep -q "^$1=" "$f"; then sed -i "s|^$1=.*|$1=$2|" "$f"; else echo "$1=$2" >> "$f"; fi
}
set_opt() {
  if grep -q "^plugin_opt_$1 " "$conf"; then sed -i "s/^plugin_opt_$1 .*/plugin_opt_$1 $2/" "$conf"
  else sed -i "s/^\(plugin_opt_store .*\)$/\1\nplugin_opt_$1 $2/" "$conf"; fi
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
events_json() { "$bin" events --json 2>/dev/null; }
# count_ev KIND [PATTERN]: events of KIND whose JSON line matches PATTERN (fixed string)
count_ev() { events_json | grep -F "\"kind\":\"$1\"" | grep -cF -- "${2:-}" || true; }
inbox_of() { { grep -cF "\"device\":\"$1\"" "$M2MGUARD_HOME/inbox.jsonl" 2>/dev/null || true; } | tail -n1; }
gw_alive() { kill -0 "$gw_pid" 2>/dev/null; }

start_smsc() {
  SMSC_CONTROL=1 SMSC_PASSWORD=$password SMSC_QUIET=1 node "$src/tests/smsc/smsc.js" "$port" \
    > "$tmp/smsc.out" 2>> "$tmp/smsc.log" &
  smsc_pid=$!
  pids+=("$smsc_pid")
  wait_for 30 grep -q '^listening' "$tmp/smsc.out" || fail "SMSC did not start"
  wait_for 10 grep -q '^control' "$tmp/smsc.out" || fail "SMSC control channel did not start"
  cport=$(sed -n 's/^control //p' "$tmp/smsc.out")
}
start_gateway() {
  "$bin" gateway run >> "$tmp/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
}
gw_binds() { grep -c smpp_bound "$tmp/gateway.log" || true; }
# start_agent NAME [options...]: the reference SMS device NAME; sets agent_pid.
start_agent() {
  local name=$1; shift
  M2MGUARD_SMSC_PASSWORD=$password "$bin" agent run --prov "${PROV:-$M2MGUARD_HOME/devices/$name.prov}" \
    --smsc "127.0.0.1:$port" --output "$tmp/$name.jsonl" --sent-log "$tmp/$name.sent" "$@" \
    >> "$tmp/$name.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
}
# sms_dev NAME INDEX: an SMS device with MSISDN +49151777000INDEX (2 digits)
sms_dev() {
  "$bin" device add "$1" --msisdn "+491517770$(printf %03d "$2")" >> "$tmp/init.log" 2>&1 || fail "device add $1"
}
msisdn_of() { sed -n 's/^msisdn=//p' "$M2MGUARD_HOME/devices/$1.prov" 2>/dev/null || sed -n 's/^msisdn=//p' "$tmp/$1.prov"; }
# ip_dev NAME: an IP device with a certificate $tmp/NAME.crt / .key
ip_dev() {
  "$bin" device add "$1" --ip >> "$tmp/init.log" 2>&1 || fail "device add --ip $1"
  "$bin" ca issue "$1" --genkey --key-out "$tmp/$1.key" --out "$tmp/$1.crt" >> "$tmp/init.log" 2>&1 \
    || fail "ca issue $1"
}
# mpub WHO TOPIC MESSAGE [mosquitto_pub options]
mpub() {
  local who=$1 t=$2 m=$3; shift 3
  mosquitto_pub -h 127.0.0.1 -p "$mport" --cafile "$chain" --cert "$tmp/$who.crt" --key "$tmp/$who.key" \
    -i "$who" -q 1 -t "$t" -m "$m" "$@"
}
# peer WHO [peer.js options]: MQTT.js (MQTT 5) as WHO, output on stdout
peer() {
  local who=$1; shift
  node "$src/tests/mqtt/peer.js" --port "$mport" --ca "$chain" --cert "$tmp/$who.crt" \
    --key "$tmp/$who.key" --id "$who" "$@" 2>> "$tmp/peer.log" || true
}

# ---- bookkeeping: one row per attack --------------------------------------------------
# Each attack function sets: t0 (ms, the start of the attack), keys (device names and
# source addresses an alert about it names; "fleet" also accepts a fleet-wide alert
# after t0), rules (expected rule names, space-separated; "-" when the attack is not
# one the detector is meant to see), note; it returns 0 when the attack was prevented.
detector=no
detect_wait_s=${MG_REDTEAM_DETECT_WAIT:-30}
rows=$tmp/rows.tsv
: > "$rows"
# alert_for T0 RULES KEYS ANY: prints "rule<TAB>detected_ms" of the first alert detected
# at or after T0 (ms) that names one of KEYS (device, source, or "fleet" for a
# fleet-wide alert) and has one of RULES (any rule when ANY is true).
alert_for() {
  "$bin" alerts --json 2>/dev/null | python3 -c '
import json, sys
t0, rules, keys, anyrule = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split(), sys.argv[4] == "true"
best = None
for a in json.load(sys.stdin):
    if a.get("detected_ms", 0) < t0 or not (anyrule or a.get("rule") in rules):
        continue
    dev, srcaddr = a.get("device") or "", a.get("source") or ""
    if (dev and dev in keys) or (srcaddr and srcaddr in keys) or (a.get("scope") == "fleet" and "fleet" in keys):
        if best is None or a["detected_ms"] < best["detected_ms"]:
            best = a
if best is not None:
    print("%s\t%d" % (best["rule"], best["detected_ms"]))
' "$1" "$2" "$3" "$4"
}
close_open_alerts() {
  local id
  for id in $("$bin" alerts --json 2>/dev/null | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    if a.get("state") != "closed":
        print(a["id"])'); do
    "$bin" alerts close "$id" --note "red-team: attack over" >> "$tmp/alerts-close.log" 2>&1 || true
  done
}
# attack NAME FUNCTION: runs it, waits for its alert, records the row.
attack() {
  local name=$1 fn=$2 prevented det=no rule=- ttd=- m end
  t0=$(now_ms); keys=; rules=-; note=
  echo "== attack $name" | tee -a "$tmp/attacks.log"
  if "$fn" >> "$tmp/attacks.log" 2>&1; then prevented=yes; else prevented=no; fi
  if [ "$rules" = - ]; then det=-
  elif [ "$detector" = yes ]; then
    end=$(( $(date +%s) + detect_wait_s ))
    while :; do
      m=$(alert_for "$t0" "$rules" "$keys" false || true)
      if [ -n "$m" ]; then
        det=yes; rule=${m%%$'\t'*}; ttd=$(( ${m##*$'\t'} - t0 )); break
      fi
      if [ "$(date +%s)" -ge "$end" ]; then
        # not the expected rule: another rule's alert about the same device/source
        m=$(alert_for "$t0" "$rules" "$keys" true || true)
        if [ -n "$m" ]; then det=other; rule="${m%%$'\t'*}*"; ttd=$(( ${m##*$'\t'} - t0 )); fi
        break
      fi
      sleep 0.2
    done
  else det=unknown
  fi
  [ "$rule" = - ] && [ "$rules" != - ] && rule="(${rules// /|})"
  # the operator resolves the incident: open alerts are closed, so that the next
  # attack on the same key (e.g. EST from the same address) raises a new alert
  [ "$detector" = yes ] && close_open_alerts
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$prevented" "$det" "$rule" "$ttd" "$note" >> "$rows"
  echo "   prevented=$prevented detected=$det rule=$rule ttd_ms=$ttd $note" | tee -a "$tmp/attacks.log"
}
# table: prints the table, the median and max TTD; writes it to $out; returns 1 when
# an attack was neither prevented nor detected.
table() {
  local out=$1 bad
  {
    printf '%-28s | %-9s | %-8s | %-44s | %s\n' attack prevented detected rule "TTD ms"
    printf -- '-----------------------------+-----------+----------+----------------------------------------------+-------\n'
    while IFS=$'\t' read -r n p d r t _; do
      printf '%-28s | %-9s | %-8s | %-44s | %s\n' "$n" "$p" "$d" "$r" "$t"
    done < "$rows"
    local ttds n med max
    ttds=$(cut -f5 "$rows" | grep -E '^-?[0-9]+$' | sort -n || true)
    n=$(grep -c . <<<"$ttds" || true)
    if [ "$n" -gt 0 ]; then
      med=$(awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }' <<<"$ttds")
      max=$(tail -n1 <<<"$ttds")
      echo "attacks: $(wc -l < "$rows"); detected with a time: $n; TTD median $med ms, max $max ms"
    else
      echo "attacks: $(wc -l < "$rows"); detected with a time: 0 (detector: $detector)"
    fi
    echo "prevented: $(cut -f2 "$rows" | grep -c '^yes$' || true); detected: $(cut -f3 "$rows" | grep -c '^yes$' || true) (by another rule than expected, marked *: $(cut -f3 "$rows" | grep -c '^other$' || true))"
  } | tee "$out"
  bad=$(awk -F'\t' '$2 != "yes" && $3 != "yes" && $3 != "other" { print $1 }' "$rows")
  if [ -n "$bad" ]; then echo "neither prevented nor detected: $bad" | tee -a "$out"; return 1; fi
  return 0
}
