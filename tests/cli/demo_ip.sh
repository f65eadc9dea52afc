#!/usr/bin/env bash
# make demo part 3 (tools/demo-ip.sh) runs to the end: the IP devices enrol,
# connect, send telemetry and get their command once; every attack is refused
# with its event; the revoked device is kicked within 2 s.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$("$src/tools/demo-ip.sh" "$bin")
echo "$out"
pass=0
expect() {
  if ! grep -Eq -- "$1" <<<"$out"; then echo "FAIL: no line matching: $1" >&2; exit 1; fi
  pass=$((pass + 1))
}
expect "EST server \(RFC 7030\) https://127\.0\.0\.1:[0-9]+ +listening"
expect "mosquitto \(mTLS, require_certificate\) 127\.0\.0\.1:[0-9]+ \+ plugin +listening"
expect "meter-1, meter-2 enrolled by EST \(simpleenroll\), connected by mTLS +ok"
expect "telemetry from meter-1 and meter-2 \(seen by application 'ops'\) +[2-9] messages"
expect "'unlock' to meter-1 \(command queue, QoS 1, receipt\) +.*done.*mqtt"
expect "connect with a revoked certificate \(thief\) +refused"
expect "connect as meter-1 with a certificate of another CA +refused"
expect "mallory publishes into m2m/meter-1/up/telemetry +refused"
expect "mallory subscribes to '#' +refused"
expect "meter-2 revoked while connected +kicked after [0-9]+ ms"
expect "mqtt +.*mqtt_auth_fail"
expect "mqtt +.*mqtt_acl_deny"
expect "mqtt +.*mqtt_kick"
expect "^summary: IP devices enrolled, connected and got their command once"
if grep -q FAIL <<<"$out"; then exit 1; fi
echo "cli demo_ip: $pass passed, 0 failed"
