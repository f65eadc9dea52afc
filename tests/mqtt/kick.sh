#!/usr/bin/env bash
# Revocation and quarantine take effect at once (issue 10): a live session is
# disconnected within 2 s of `m2mguard device quarantine` / `m2mguard ca
# revoke` (registry generation polled on the broker tick); a reconnect is
# refused by the registry check; after SIGHUP or a restart the CRL refuses the revoked
# certificate in the TLS handshake already.
# usage: kick.sh M2MGUARD_BIN PLUGIN_SO
source "$(dirname "$0")/lib.sh"
setup
new_device dev1
new_device dev2
new_app ops operator
start_broker

# live_sub WHO: a subscriber that stays connected; sets live_pid (its exit = kicked)
live_sub() {
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/$1.crt" --key "$tmp/$1.key" \
    -i "$1" -q 1 -t "m2m/$1/down/cmd" > "$tmp/$1.sub.out" 2>> "$tmp/$1.sub.log" &
  live_pid=$!
  pids+=("$live_pid")
  wait_for 5 grep -q "Sending SUBACK to $1" "$tmp/broker.log" || fail "$1 did not subscribe"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
# kicked_within MS PID: the process ends within MS milliseconds
kicked_within() {
  local ms=$1 p=$2 t0 t1
  t0=$(date +%s%N)
  until gone "$p"; do
    t1=$(date +%s%N)
    [ $(( (t1 - t0) / 1000000 )) -le "$ms" ] || return 1
    sleep 0.05
  done
  elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
}

live_sub dev1
"$bin" device quarantine dev1 >> "$tmp/cli.log" 2>&1
kicked_within 2000 "$live_pid" || fail "quarantined dev1 still connected after 2 s"
ok "quarantine: live session of dev1 closed in $elapsed ms"
has_event mqtt_kick "dev1 disconnected: device dev1 is quarantined" || fail "no mqtt_kick event"
if mpub dev1 dev1 m2m/dev1/up/telemetry x 2>> "$tmp/client.log"; then fail "quarantined dev1 reconnected"; fi
ok "quarantined dev1 cannot reconnect"

live_sub dev2
serial=$(serial_of dev2)
"$bin" ca revoke "$serial" >> "$tmp/cli.log" 2>&1 || fail "ca revoke $serial failed"
kicked_within 2000 "$live_pid" || fail "revoked dev2 still connected after 2 s"
ok "ca revoke: live session of dev2 closed in $elapsed ms"
if mpub dev2 dev2 m2m/dev2/up/telemetry x 2>> "$tmp/client.log"; then fail "revoked dev2 reconnected"; fi
has_event mqtt_auth_fail "certificate $serial is revoked" || fail "no auth_fail event for the revoked cert"
ok "revoked certificate refused by the registry check (CRL not yet reloaded)"

# an application is kicked the same way
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/ops.crt" --key "$tmp/ops.key" \
  -i ops-1 -q 1 -t 'm2m/+/up/#' > /dev/null 2>> "$tmp/ops.sub.log" &
ops_pid=$!; pids+=("$ops_pid")
wait_for 5 grep -q "Sending SUBACK to ops-1" "$tmp/broker.log" || fail "ops did not subscribe"
"$bin" ca revoke "$(serial_of ops)" >> "$tmp/cli.log" 2>&1
kicked_within 2000 "$ops_pid" || fail "revoked application still connected after 2 s"
ok "ca revoke of an application's certificate: session closed in $elapsed ms"

# SIGHUP: Mosquitto 2.0.11 reloads crlfile; the TLS handshake now refuses dev2
n_before=$(count_events mqtt_auth_fail)
kill -HUP "$broker_pid"
wait_for 5 grep -q "Reloading config" "$tmp/broker.log" || fail "no reload on SIGHUP"
sleep 0.5
if mpub dev2 dev2 m2m/dev2/up/telemetry x 2>> "$tmp/client.log"; then fail "revoked dev2 connected after SIGHUP"; fi
[ "$(count_events mqtt_auth_fail)" = "$n_before" ] || fail "after SIGHUP the plugin still saw dev2 (CRL not reloaded)"
ok "SIGHUP reloads the CRL: the revoked certificate fails the TLS handshake"

# restart: the CRL now refuses dev2 in the TLS handshake (the plugin never sees it)
stop_broker
start_broker
n_before=$(count_events mqtt_auth_fail)
if mpub dev2 dev2 m2m/dev2/up/telemetry x 2>> "$tmp/client.log"; then fail "revoked dev2 connected after restart"; fi
[ "$(count_events mqtt_auth_fail)" = "$n_before" ] || fail "the plugin saw a CRL-revoked client"
ok "after restart the CRL refuses the revoked certificate in the TLS handshake"
# a CRL that cannot be read: the broker does not start (fail closed, loudly)
stop_broker
cp "$M2MGUARD_HOME/ca/crl.pem" "$tmp/crl.bak"
echo "not a CRL" > "$M2MGUARD_HOME/ca/crl.pem"
: > "$tmp/broker.log"
mosquitto -c "$conf" >> "$tmp/mosquitto.log" 2>&1 &
bad_pid=$!; pids+=("$bad_pid")
wait_for 10 gone "$bad_pid" || fail "the broker runs with an unreadable CRL"
cat "$tmp/broker.log" "$tmp/mosquitto.log" > "$tmp/all.txt"
grep -i "crl" "$tmp/all.txt" > /dev/null || fail "no log line names the CRL"
if mpub dev1 dev1 m2m/dev1/up/telemetry x 2>> "$tmp/client.log"; then fail "something answered"; fi
cp "$tmp/crl.bak" "$M2MGUARD_HOME/ca/crl.pem"
ok "unreadable CRL: the broker refuses to start ($(grep -i crl "$tmp/all.txt" | head -n 1 | cut -c1-80))"
echo "PASS: $pass checks"
