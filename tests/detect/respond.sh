#!/usr/bin/env bash
# The detector's responses and notifications against real peers:
#   tests/detect/respond.sh M2MGUARD MG_RESPOND_DRIVE
# - a webhook receiver (tests/detect/webhook.py, python http.server on 127.0.0.1)
#   recomputes the HMAC-SHA256 signature with the shared secret: valid; a
#   receiver holding another secret refuses it (401) and the response says so;
#   a receiver that answers after 20 s costs the 5 s timeout (plus start-up); a redirect is not followed;
#   a secret file readable by others is refused;
# - a TLS mosquitto broker (client certificates required): the responder
#   connects with an application certificate and publishes the alert with QoS 1
#   to m2mguard/alerts, where mosquitto_sub receives it;
# - unauthenticated evidence (forged checksums carrying a device's number):
#   the device stays active, its number is throttled (visible in
#   `m2mguard block list`), and undo clears it; authenticated evidence
#   quarantines the device and undo re-activates it;
# - `m2mguard block add|list|clear` by the operator, with events.
set -euo pipefail
bin=$1
drive=$2
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mg_test_prefix=mg-respond source "$src/tests/lib/harness.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
# the interpreter itself (a version-manager shim costs seconds per start)
py=$(python3 -c 'import sys; print(sys.executable)')
# count_lines FILE PATTERN: lines of FILE holding the fixed string (0 if none).
count_lines() { { grep -cF -- "$2" "$1" 2>/dev/null || true; } | tail -n 1; }

export M2MGUARD_HOME=$tmp/wd
"$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
"$bin" device add meter-1 --msisdn +491701110001 >> "$tmp/init.log"
num=+491701110001
ok "working directory with device meter-1"

# ---- m2mguard block (the operator) ------------------------------------------------------
"$bin" block add 198.51.100.7 --bearer mqtt --mode drop --for 300 --reason "scanner" > "$tmp/b.out"
grep -qF "blocked mqtt 198.51.100.7 until" "$tmp/b.out" || fail "block add: $(cat "$tmp/b.out")"
"$bin" block list --json > "$tmp/bl.json"
"$py" - "$tmp/bl.json" <<'PY' || fail "block list --json: $(cat "$tmp/bl.json")"
import json, sys, time
b = json.load(open(sys.argv[1]))
assert len(b) == 1, b
b = b[0]
assert (b["bearer"], b["source"], b["mode"], b["alert_id"], b["reason"]) == \
    ("mqtt", "198.51.100.7", "drop", 0, "scanner"), b
assert 290 <= b["until"] - time.time() <= 301, b
PY
rc=0; "$bin" block add not-an-ip --bearer mqtt --mode drop --for 10 2> "$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "a bad mqtt source: exit $rc"
"$bin" block clear 198.51.100.7 --bearer mqtt > /dev/null
rc=0; "$bin" block clear 198.51.100.7 --bearer mqtt 2> "$tmp/err" || rc=$?
[ $rc -eq 3 ] || fail "clearing a block that is not there: exit $rc"
"$bin" events --json > "$tmp/ev.json"
[ "$(count_lines "$tmp/ev.json" '"kind":"block_add"')" -eq 1 ] || fail "no block_add event"
[ "$(count_lines "$tmp/ev.json" '"kind":"block_clear"')" -eq 1 ] || fail "no block_clear event"
ok "block add/list/clear with their events; bad sources refused"

# ---- webhook receiver and secret ----------------------------------------------------------
(umask 077; printf 'whsec-%s\n' "$(openssl rand -hex 24)" > "$tmp/hook.secret")
(umask 077; printf 'whsec-%s\n' "$(openssl rand -hex 24)" > "$tmp/wrong.secret")
start_hook() { # NAME SECRET [OPTIONS]: started in the background
  local n=$1 s=$2; shift 2
  "$py" "$src/tests/detect/webhook.py" "$tmp/$n.port" "$tmp/$n.jsonl" --secret "$s" "$@" \
    2>> "$tmp/$n.log" &
  pids+=("$!")
}
hook_port() { # NAME: its port once it listens
  wait_for 20 test -s "$tmp/$1.port" || fail "webhook receiver $1 did not start"
  cat "$tmp/$1.port"
}
start_hook good "$tmp/hook.secret"
start_hook wrong "$tmp/wrong.secret"
start_hook slow "$tmp/hook.secret" --delay 20
start_hook redir "$tmp/hook.secret" --redirect

# ---- TLS broker with client certificates ----------------------------------------------------
pki=$tmp/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/O=test/CN=test root" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
issue() { # CN OUT EXT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$2.key" -out "$2.csr" 2>/dev/null
  printf '%s\n' "$3" > "$2.ext"
  openssl x509 -req -in "$2.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 1 \
    -extfile "$2.ext" -out "$2.crt" 2>/dev/null
  chmod 600 "$2.key"
}
issue 127.0.0.1 "$pki/server" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue ops-detector "$pki/detector" "extendedKeyUsage=clientAuth"
issue ops-console "$pki/console" "extendedKeyUsage=clientAuth"
mport=$(free_port)
mport2=$(free_port) # plain listener, anonymous clients refused (CONNACK 5)
mkdir -p "$tmp/mosq"
cat > "$tmp/mosquitto.conf" <<CONF
per_listener_settings false
user $(id -un)
persistence false
log_dest file $tmp/mosquitto.log
log_type all
listener $mport 127.0.0.1
cafile $pki/ca.crt
certfile $pki/server.crt
keyfile $pki/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
allow_anonymous false
listener $mport2 127.0.0.1
CONF
mosquitto -c "$tmp/mosquitto.conf" > /dev/null 2>&1 &
pids+=("$!")
wait_for 20 grep -q "listen socket on port $mport2" "$tmp/mosquitto.log" || fail "mosquitto did not start"
mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$pki/ca.crt" --cert "$pki/console.crt" \
  --key "$pki/console.key" -i ops-console -q 1 -t m2mguard/alerts -C 1 -W 30 \
  > "$tmp/sub.out" 2>> "$tmp/sub.log" &
sub_pid=$!
pids+=("$sub_pid")
wait_for 10 grep -q "m2mguard/alerts (QoS 1)" "$tmp/mosquitto.log" || fail "mosquitto_sub did not subscribe"
good_port=$(hook_port good); wrong_port=$(hook_port wrong)
slow_port=$(hook_port slow); redir_port=$(hook_port redir)
ok "webhook receivers and a TLS broker with a subscriber"

notify=(--webhook "http://127.0.0.1:$good_port/hook" --secret "$tmp/hook.secret"
        --mqtt 127.0.0.1 --port "$mport" --cafile "$pki/ca.crt" --cert "$pki/detector.crt"
        --key "$pki/detector.key" --syslog --block-s 600)

# ---- unauthenticated evidence: the device is not punished -----------------------------------
id=$("$drive" "$M2MGUARD_HOME" alert checksum_burst source meter-1 "$num" sms auth_fail unauth)
rc=0
t0=$(date +%s%N)
"$drive" "$M2MGUARD_HOME" "${notify[@]}" run "$id" quarantine,throttle,notify > "$tmp/run1.out" || rc=$?
run_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
done1=$(cat "$tmp/run1.out")
[ $rc -eq 1 ] || fail "unauthenticated quarantine: exit $rc (want 1, refused): $done1"
case $done1 in *"quarantine refused: evidence not authenticated"*) ;; *) fail "done: $done1";; esac
case $done1 in *"throttled sms $num for 600 s"*) ;; *) fail "no throttle: $done1";; esac
case $done1 in *"webhook 204"*"syslog"*"mqtt PUBACK"*) ;; *) fail "notifications: $done1";; esac
"$bin" device show meter-1 > "$tmp/show"
grep -qx "status: active" "$tmp/show" || fail "meter-1 not active: $(cat "$tmp/show")"
"$bin" block list > "$tmp/bl.txt"
grep -qP "^sms\t\\$num\tthrottle\t.*\t$id\talert $id: checksum_burst\$" "$tmp/bl.txt" \
  || fail "block list: $(cat "$tmp/bl.txt")"
ok "forged evidence with a device's number: device active, number throttled ($done1)"
echo "measured: responder process with throttle + webhook + syslog + MQTT/TLS (connect, PUBACK): $run_ms ms"

# the receiver verified the signature; recompute it here too, and with the wrong secret
"$py" - "$tmp/good.jsonl" "$tmp/hook.secret" "$tmp/wrong.secret" "$id" "$num" <<'PY' \
  || fail "webhook delivery: $(cat "$tmp/good.jsonl")"
import hashlib, hmac, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 1, recs
r = recs[0]
assert r["valid"] and r["why"] == "ok", r
assert r["content_type"] == "application/json", r
good = open(sys.argv[2], "rb").read().rstrip(b"\r\n")
wrong = open(sys.argv[3], "rb").read().rstrip(b"\r\n")
msg = r["ts"].encode() + b"." + r["raw"].encode()
assert r["sig"] == "sha256=" + hmac.new(good, msg, hashlib.sha256).hexdigest()
assert r["sig"] != "sha256=" + hmac.new(wrong, msg, hashlib.sha256).hexdigest()
# the body alone (without the timestamp) is not what is signed
assert r["sig"] != "sha256=" + hmac.new(good, r["raw"].encode(), hashlib.sha256).hexdigest()
a = r["body"]
assert a["id"] == int(sys.argv[4]) and a["rule"] == "checksum_burst", a
assert a["scope"] == "source" and a["source"] == sys.argv[5] and a["authenticated"] is False, a
assert a["state"] == "open" and a["evidence_count"] == 1 and len(a["evidence"]) == 1, a
assert "throttled sms" in a["response"] and "refused" in a["response"], a
keys = ["id", "rule", "scope", "device", "device_id", "source", "severity", "authenticated",
        "first_evidence", "detected_ms", "evidence", "evidence_count", "summary", "response",
        "state", "note"]
assert list(a.keys()) == keys, list(a.keys())
PY
ok "webhook: HMAC-SHA256 over timestamp.body verified by the receiver; a wrong secret does not match"

wait_for 10 test -s "$tmp/sub.out" || fail "mosquitto_sub received nothing"
"$py" - "$tmp/sub.out" "$id" <<'PY' || fail "mqtt alert: $(cat "$tmp/sub.out")"
import json, sys
a = json.loads(open(sys.argv[1]).read())
assert a["id"] == int(sys.argv[2]) and a["rule"] == "checksum_burst", a
PY
grep -q "as ops-detector-detect-[0-9]* .*u'ops-detector'" "$tmp/mosquitto.log" \
  || fail "the detector's client id: $(grep -F 'New client' "$tmp/mosquitto.log")"
ok "mqtt: the alert published over TLS with the application certificate, received by mosquitto_sub"

"$drive" "$M2MGUARD_HOME" undo "$id" > "$tmp/undo1.out"
grep -qF "cleared the throttle of sms $num" "$tmp/undo1.out" || fail "undo: $(cat "$tmp/undo1.out")"
"$bin" block list > "$tmp/bl.txt"
[ ! -s "$tmp/bl.txt" ] || fail "block left after undo: $(cat "$tmp/bl.txt")"
ok "undo clears the alert's throttle"

# ---- authenticated evidence: quarantine, and undo ---------------------------------------------
id2=$("$drive" "$M2MGUARD_HOME" alert tamper device meter-1 "$num" sms tamper auth)
"$drive" "$M2MGUARD_HOME" run "$id2" quarantine > "$tmp/run2.out" || fail "quarantine: $(cat "$tmp/run2.out")"
grep -qx "quarantined meter-1" "$tmp/run2.out" || fail "run2: $(cat "$tmp/run2.out")"
"$bin" device show meter-1 | grep -qx "status: quarantined" || fail "meter-1 not quarantined"
"$drive" "$M2MGUARD_HOME" undo "$id2" > "$tmp/undo2.out"
grep -qx "re-activated meter-1" "$tmp/undo2.out" || fail "undo2: $(cat "$tmp/undo2.out")"
"$bin" device show meter-1 | grep -qx "status: active" || fail "meter-1 not re-activated"
"$bin" events --json > "$tmp/ev.json"
[ "$(count_lines "$tmp/ev.json" '"bearer":"detect"')" -eq 6 ] || fail "detect events: $(cat "$tmp/ev.json")"
for k in response_quarantine response_throttle response_notify response_undo; do
  [ "$(count_lines "$tmp/ev.json" "\"kind\":\"$k\"")" -ge 1 ] || fail "no $k event"
done
ok "authenticated evidence quarantines; undo re-activates; every response is an event"

# ---- failures are bounded and reported ------------------------------------------------------------
id3=$("$drive" "$M2MGUARD_HOME" alert unknown_sender_flood source - +491709990000 sms unknown_sender unauth)
rc=0
"$drive" "$M2MGUARD_HOME" --webhook "http://127.0.0.1:$wrong_port/hook" --secret "$tmp/hook.secret" \
  run "$id3" notify > "$tmp/run3.out" || rc=$?
[ $rc -eq 2 ] || fail "webhook with a receiver holding another secret: exit $rc"
grep -qF "webhook failed: HTTP 401" "$tmp/run3.out" || fail "run3: $(cat "$tmp/run3.out")"
grep -qF '"why": "bad signature"' "$tmp/wrong.jsonl" || fail "the receiver did not see a bad signature"
ok "a receiver with another secret refuses the delivery (401) and the response says so"

t0=$(date +%s%N)
rc=0
"$drive" "$M2MGUARD_HOME" --webhook "http://127.0.0.1:$slow_port/hook" --secret "$tmp/hook.secret" \
  run "$id3" notify > "$tmp/run4.out" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 2 ] || fail "slow webhook: exit $rc"
grep -qF "webhook failed: Timeout was reached" "$tmp/run4.out" || fail "run4: $(cat "$tmp/run4.out")"
[ "$ms" -lt 9000 ] || fail "a slow webhook (20 s) stalled the responder $ms ms"
ok "a receiver slower than 5 s costs ${ms} ms and is reported"

rc=0
"$drive" "$M2MGUARD_HOME" --webhook "http://127.0.0.1:$redir_port/hook" --secret "$tmp/hook.secret" \
  run "$id3" notify > "$tmp/run5.out" || rc=$?
grep -qF "webhook failed: HTTP 302" "$tmp/run5.out" || fail "run5: $(cat "$tmp/run5.out")"
[ "$(count_lines "$tmp/redir.jsonl" '"path": "/hook"')" -eq 1 ] || fail "redirect followed"
ok "a redirect is not followed"

t0=$(date +%s%N)
rc=0
"$drive" "$M2MGUARD_HOME" --mqtt 127.0.0.1 --port "$mport2" run "$id3" notify > "$tmp/run7.out" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 2 ] || fail "a broker refusing the connection: exit $rc"
grep -qF "mqtt failed: connection refused: Connection Refused: not authorised" "$tmp/run7.out" \
  || fail "run7: $(cat "$tmp/run7.out")"
ok "a broker refusing the connection (CONNACK 5) is reported at once (${ms} ms)"

chmod 644 "$tmp/hook.secret"
rc=0
"$drive" "$M2MGUARD_HOME" --webhook "http://127.0.0.1:$good_port/hook" --secret "$tmp/hook.secret" \
  run "$id3" notify > /dev/null 2> "$tmp/run6.err" || rc=$?
[ $rc -eq 2 ] || fail "a 0644 secret: exit $rc"
grep -qF "mode 0644" "$tmp/run6.err" || fail "run6: $(cat "$tmp/run6.err")"
ok "a webhook secret readable by others is refused at start"

echo "respond: $pass checks passed"
