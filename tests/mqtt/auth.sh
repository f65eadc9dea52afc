#!/usr/bin/env bash
# Broker authentication (issue 10, bad-input list): no client certificate,
# another CA, an expired certificate, a valid certificate with another client
# id, a quarantined device, application client ids, and a store that cannot
# be read (fail closed). Real Mosquitto 2.0.11 with the plugin, real clients.
# usage: auth.sh M2MGUARD_BIN PLUGIN_SO
source "$(dirname "$0")/lib.sh"
setup
new_device dev1
new_device dev2
new_device reader1x
new_app reader1 telemetry-reader
start_broker

# the good case, with both clients
mpub dev1 dev1 m2m/dev1/up/telemetry hello || fail "dev1 cannot publish"
out=$(peer dev1 dev1 --pub m2m/dev1/up/telemetry=hi)
grep -q '^pub-ok m2m/dev1/up/telemetry$' <<<"$out" || fail "MQTT.js dev1: $out"
has_event mqtt_connect dev1 || fail "no mqtt_connect event"
ok "device with its certificate and client id connects (mosquitto_pub, MQTT.js)"

# no client certificate: the TLS handshake fails (require_certificate true)
if mosquitto_pub -h 127.0.0.1 -p "$port" --cafile "$chain" -i dev1 -t m2m/dev1/up/telemetry -m x \
     2>> "$tmp/client.log"; then fail "connected without a client certificate"; fi
out=$(node "$src/tests/mqtt/peer.js" --port "$port" --ca "$chain" --id dev1 2>&1 || true)
grep -q '^connected$' <<<"$out" && fail "MQTT.js connected without a certificate"
# refused in the TLS handshake: the plugin never sees it; the broker logs why
grep -q "peer did not return a certificate" "$tmp/broker.log" || fail "no log line for the missing certificate"
ok "no client certificate: refused (broker log: peer did not return a certificate)"

# another CA: a self-signed CA and a client certificate named like dev1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=evil-ca \
  -keyout "$tmp/evilca.key" -out "$tmp/evilca.crt" -days 30 2> /dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dev1 \
  -keyout "$tmp/evil.key" -out "$tmp/evil.csr" 2> /dev/null
printf 'extendedKeyUsage=clientAuth\n' > "$tmp/ext.cnf"
openssl x509 -req -in "$tmp/evil.csr" -CA "$tmp/evilca.crt" -CAkey "$tmp/evilca.key" \
  -CAcreateserial -days 30 -extfile "$tmp/ext.cnf" -out "$tmp/evil.crt" 2> /dev/null
if mpub evil dev1 m2m/dev1/up/telemetry x 2>> "$tmp/client.log"; then
  fail "connected with a certificate of another CA"; fi
grep -q "certificate verify failed" "$tmp/broker.log" || fail "no log line for the other CA"
ok "certificate of another CA: refused (broker log: certificate verify failed)"

# expired: signed by the real issuing CA, validity in the past
python3 - "$M2MGUARD_HOME/ca/issuing.crt" "$M2MGUARD_HOME/ca/issuing.key" "$tmp/old" <<'EOF'
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
ca = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
cakey = serialization.load_pem_private_key(open(sys.argv[2], 'rb').read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'dev1')]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(cakey, hashes.SHA256()))
open(sys.argv[3] + '.crt', 'wb').write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[3] + '.key', 'wb').write(key.private_bytes(serialization.Encoding.PEM,
     serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
EOF
chmod 600 "$tmp/old.key"
if mpub old dev1 m2m/dev1/up/telemetry x 2>> "$tmp/client.log"; then fail "expired certificate accepted"; fi
ok "expired certificate: refused"

# valid certificate, another client id (another device's, or anything)
for id in dev2 DEV1 dev1x x; do
  if mpub dev1 "$id" "m2m/$id/up/telemetry" x 2>> "$tmp/client.log"; then
    fail "dev1's certificate accepted with client id $id"; fi
done
out=$(peer dev1 dev2)
grep -q '^connected$' <<<"$out" && fail "MQTT.js: dev1's certificate with client id dev2: $out"
has_event mqtt_auth_fail "client id is not the device name dev1" || fail "no auth_fail event"
ok "valid certificate with another client id: refused (event)"

# applications: client id must start with the app name and not be another entry's
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/reader1.crt" \
  --key "$tmp/reader1.key" -i reader1-a -t m2m/+/up/telemetry -C 1 -W 5 > "$tmp/r.out" 2>> "$tmp/sub.log" &
rp=$!; pids+=("$rp")
sleep 0.5
mpub dev1 dev1 m2m/dev1/up/telemetry t1
wait "$rp" || fail "reader1-a did not receive telemetry"
grep -q '^t1$' "$tmp/r.out" || fail "reader1-a got: $(cat "$tmp/r.out")"
for id in reader1x x-reader1; do
  if mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/reader1.crt" \
       --key "$tmp/reader1.key" -i "$id" -t m2m/+/up/telemetry -W 1 2>> "$tmp/sub.log"; then :; fi
done
has_event mqtt_auth_fail "application reader1 uses the client id of another" ||
  fail "app took a device's client id without an event"
has_event mqtt_auth_fail "does not start with the application name reader1" || fail "no prefix event"
ok "application: client id with its name accepted; a device's id or another prefix refused"

# quarantined device: refused at connect
"$bin" device quarantine dev2 >> "$tmp/cli.log" 2>&1
if mpub dev2 dev2 m2m/dev2/up/telemetry x 2>> "$tmp/client.log"; then fail "quarantined device connected"; fi
has_event mqtt_auth_fail "device dev2 is quarantined" || fail "no event for the quarantined device"
ok "quarantined device: refused (event)"

# fail closed: a store the plugin cannot open (mode 0644 is refused by mg_store_open)
stop_broker
chmod 644 "$M2MGUARD_HOME/m2mguard.db"
start_broker
if mpub dev1 dev1 m2m/dev1/up/telemetry x 2>> "$tmp/client.log"; then fail "connected without a store"; fi
grep -q "cannot open the store" "$tmp/broker.log" || fail "no loud log line"
grep -q "every connection is refused" "$tmp/broker.log" || fail "log does not say it refuses"
ok "store unreadable: every connection refused, logged"
chmod 600 "$M2MGUARD_HOME/m2mguard.db"
sleep 1.1
mpub dev1 dev1 m2m/dev1/up/telemetry back || fail "store back: dev1 still refused"
ok "store readable again: served again without a restart"
echo "PASS: $pass checks"
