# EST server (docs/est.md) against real clients: curl and the openssl CLI do
# the RFC 7030 flow by hand. Usage: est.sh PATH/TO/m2mguard
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mg_test_prefix=mg-est source "$src/tests/lib/harness.sh"

export M2MGUARD_HOME=$tmp/w
W=$M2MGUARD_HOME
"$bin" init "$W" > "$tmp/init.log"
"$bin" ca init > "$tmp/ca.log"
"$bin" ca server est.local --ip 127.0.0.1 --dns localhost \
  --key-out "$W/est-server.key" --out "$W/est-server.crt" >> "$tmp/ca.log"
ROOT=$W/ca/root.crt
ISSUING=$W/ca/issuing.crt

# token of a new IP device, printed once as `enrol-token: HEX`
new_dev() { "$bin" device add "$1" --ip --enrol-token "${@:2}" | sed -n 's/^enrol-token: //p'; }
tok1=$(new_dev dev1)
tok2=$(new_dev dev2)
tok3=$(new_dev dev3)
tok5=$(new_dev dev5)
"$bin" device add dev4 --ip > /dev/null
[ ${#tok1} -eq 32 ] || fail "no enrolment token from device add ($tok1)"

# a manufacturer CA and a factory certificate for dev4 (and one from an unknown factory)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/fca.key" \
  -subj "/O=Factory/CN=Factory CA" -days 30 -out "$tmp/fca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2> /dev/null
fac_cert() { # NAME CAKEY CACRT OUT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$4.key" \
    -subj "/CN=$1" -out "$tmp/f.csr" 2> /dev/null
  openssl x509 -req -in "$tmp/f.csr" -CA "$3" -CAkey "$2" -CAcreateserial -days 10 -out "$4.crt" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n') 2> /dev/null
}
fac_cert dev4 "$tmp/fca.key" "$tmp/fca.crt" "$tmp/fdev4"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/evil.key" \
  -subj "/CN=Evil CA" -days 30 -out "$tmp/evil.crt" \
  -addext basicConstraints=critical,CA:TRUE 2> /dev/null
fac_cert dev4 "$tmp/evil.key" "$tmp/evil.crt" "$tmp/edev4"

"$bin" est run --help | grep -q 'simplereenroll' || fail "est run --help"
rc=0; "$bin" est run --bogus 2> /dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "est run --bogus: exit $rc, want 2"

port=$(free_port)
start_est() {
  "$bin" est run --listen "127.0.0.1:$port" --factory-ca "$tmp/fca.crt" "$@" \
    > "$tmp/est.out" 2>> "$tmp/est.log" &
  est_pid=$!
  pids+=("$est_pid")
  wait_for 20 grep -q "^est: listening on https://127.0.0.1:$port\$" "$tmp/est.out" \
    || fail "est run did not start"
}
# the rate limit would hide the events the checks below look for: high burst here
echo "est_events_burst = 1000" >> "$W/m2mguard.conf"
start_est
ok "est run listens on 127.0.0.1:$port"
url=https://127.0.0.1:$port/.well-known/est

# curl_est OUT PATH [curl args...]: prints "CODE CONTENT-TYPE"
curl_est() {
  local out=$1 path=$2; shift 2
  curl -sS --cacert "$ROOT" -o "$out" -w '%{http_code} %{content_type}' "$@" "$url/$path" || true
}
b64() { openssl base64 -in "$1" -out "$2"; }
# csr NAME OUT [keyopts]: DER CSR and its key OUT.key, base64 body OUT.b64
csr() {
  local name=$1 out=$2; shift 2
  local ko=("$@"); [ ${#ko[@]} -gt 0 ] || ko=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  openssl req -new "${ko[@]}" -nodes -keyout "$out.key" -subj "/CN=$name" -outform DER \
    -out "$out.der" 2> /dev/null
  b64 "$out.der" "$out.b64"
}
enroll() { # OUT BODY [curl args]: POST simpleenroll
  local out=$1 body=$2; shift 2
  curl_est "$out" simpleenroll -H 'Content-Type: application/pkcs10' --data-binary "@$body" "$@"
}
reenroll() {
  local out=$1 body=$2; shift 2
  curl_est "$out" simplereenroll -H 'Content-Type: application/pkcs10' --data-binary "@$body" "$@"
}
p7_certs() { openssl base64 -d -in "$1" | openssl pkcs7 -inform DER -print_certs; }
events() { "$bin" events; }
event_count() { events | awk -F'\t' -v k="$1" '$3 == "est" && $5 == k' | wc -l; }

# ---- cacerts and csrattrs --------------------------------------------------------
r=$(curl_est "$tmp/cacerts.b64" cacerts)
[ "$r" = "200 application/pkcs7-mime" ] || fail "cacerts: $r"
p7_certs "$tmp/cacerts.b64" > "$tmp/cacerts.pem"
[ "$(grep -c '^subject=' "$tmp/cacerts.pem")" -eq 2 ] || fail "cacerts: not two certificates"
openssl x509 -in "$ISSUING" -noout -subject > "$tmp/s1"
openssl x509 -in "$ROOT" -noout -subject > "$tmp/s2"
grep -qxF "$(cat "$tmp/s1")" "$tmp/cacerts.pem" || fail "cacerts lacks the issuing CA"
grep -qxF "$(cat "$tmp/s2")" "$tmp/cacerts.pem" || fail "cacerts lacks the root CA"
ok "cacerts: certs-only CMS with the issuing and root CA (openssl pkcs7 -print_certs)"

r=$(curl_est "$tmp/attrs.b64" csrattrs)
[ "$r" = "200 application/csrattrs" ] || fail "csrattrs: $r"
openssl base64 -d -in "$tmp/attrs.b64" | openssl asn1parse -inform DER > "$tmp/attrs.txt"
for o in ecdsa-with-SHA256 id-ecPublicKey prime256v1; do
  grep -q ":$o\$" "$tmp/attrs.txt" || fail "csrattrs lacks $o"
done
ok "csrattrs: ecdsa-with-SHA256, id-ecPublicKey with prime256v1 (openssl asn1parse)"

r=$(curl_est "$tmp/x" nosuch); [ "${r%% *}" = 404 ] || fail "unknown path: $r"
r=$(curl_est "$tmp/x" simpleenroll); [ "${r%% *}" = 405 ] || fail "GET simpleenroll: $r"
r=$(curl_est "$tmp/x" cacerts -X POST -d x); [ "${r%% *}" = 405 ] || fail "POST cacerts: $r"
ok "404 for an unknown operation, 405 for a wrong method"

# ---- simpleenroll with the token --------------------------------------------------
csr dev1 "$tmp/d1"
r=$(curl_est "$tmp/x" simpleenroll -D "$tmp/h401" --data-binary "@$tmp/d1.b64")
[ "${r%% *}" = 401 ] || fail "no credentials: $r"
grep -qi '^WWW-Authenticate: Basic realm=' "$tmp/h401" || fail "401 without WWW-Authenticate"
ok "no credentials: 401 with WWW-Authenticate: Basic"

r=$(enroll "$tmp/d1.p7" "$tmp/d1.b64" -u "dev1:$tok1")
[ "$r" = "200 application/pkcs7-mime; smime-type=certs-only" ] || fail "enrol dev1: $r"
p7_certs "$tmp/d1.p7" > "$tmp/d1.crt"
openssl x509 -in "$tmp/d1.crt" -noout -subject | grep -q 'CN *= *dev1' || fail "dev1 cert subject"
openssl verify -CAfile "$ROOT" -untrusted "$ISSUING" "$tmp/d1.crt" > /dev/null || fail "dev1 cert does not verify"
[ "$(openssl x509 -in "$tmp/d1.crt" -noout -pubkey)" = "$(openssl pkey -in "$tmp/d1.key" -pubout)" ] \
  || fail "dev1 cert is not for the CSR's key"
ok "simpleenroll with the enrolment token: certificate for the CSR's key, verifies to the root"

r=$(enroll "$tmp/x" "$tmp/d1.b64" -u "dev1:$tok1")
[ "${r%% *}" = 403 ] || fail "token reuse: $r"
[ "$(event_count est_token_reused)" -ge 1 ] || fail "no est_token_reused event"
ok "the token again: 403, event est_token_reused"

csr dev2 "$tmp/d2"
r=$(enroll "$tmp/x" "$tmp/d2.b64" -u "dev2:0123456789abcdef0123456789abcdef")
[ "${r%% *}" = 403 ] || fail "wrong token: $r"
r=$(enroll "$tmp/x" "$tmp/d2.b64" -u "nosuchdev:$tok2")
[ "${r%% *}" = 403 ] || fail "unknown device: $r"
[ "$(event_count est_auth_fail)" -ge 2 ] || fail "no est_auth_fail events"
ok "wrong token, unknown device: 403, events est_auth_fail"

csr dev1 "$tmp/d2other"
r=$(enroll "$tmp/x" "$tmp/d2other.b64" -u "dev2:$tok2")
[ "${r%% *}" = 403 ] || fail "CSR for another device: $r"
[ "$(event_count est_csr_wrong_subject)" -ge 1 ] || fail "no est_csr_wrong_subject event"
ok "CSR naming another device: 403, event est_csr_wrong_subject"

# broken signature: flip the last octet of the DER (inside the signature)
python3 - "$tmp/d2.der" "$tmp/bad.der" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[-1] ^= 0x01
open(sys.argv[2], 'wb').write(d)
EOF
openssl req -inform DER -in "$tmp/bad.der" -noout 2> /dev/null || fail "flipped CSR no longer parses"
b64 "$tmp/bad.der" "$tmp/bad.b64"
r=$(enroll "$tmp/x" "$tmp/bad.b64" -u "dev2:$tok2")
[ "${r%% *}" = 403 ] || fail "broken CSR signature: $r"
[ "$(event_count est_csr_pop)" -ge 1 ] || fail "no est_csr_pop event"
ok "CSR with a broken signature (no proof of possession): 403, event est_csr_pop"

csr dev2 "$tmp/rsa1k" -newkey rsa:1024
r=$(enroll "$tmp/x" "$tmp/rsa1k.b64" -u "dev2:$tok2")
[ "${r%% *}" = 403 ] || fail "RSA-1024: $r"
[ "$(event_count est_key_weak)" -ge 1 ] || fail "no est_key_weak event"
ok "RSA-1024 CSR: 403, event est_key_weak"

printf 'this is not base64 at all!\n' > "$tmp/garbage"
head -c 300 /dev/urandom | openssl base64 > "$tmp/garbage2"
for g in garbage garbage2; do
  r=$(enroll "$tmp/x" "$tmp/$g" -u "dev2:$tok2")
  [ "${r%% *}" = 400 ] || fail "$g body: $r"
done
[ "$(event_count est_csr_bad)" -ge 2 ] || fail "no est_csr_bad events"
ok "garbage bodies (not base64; base64 of random octets): 400, events est_csr_bad"

# refusals did not burn dev2's token: it still enrols
r=$(enroll "$tmp/d2.p7" "$tmp/d2.b64" -u "dev2:$tok2")
[ "${r%% *}" = 200 ] || fail "dev2 after the refusals: $r"
ok "a refused CSR does not spend the token: dev2 enrols after six refusals"

# expired token: move its expiry into the past in the database
sqlite3 "$W/m2mguard.db" "UPDATE enrol_tokens SET expires = 1 WHERE device_id = (SELECT id FROM devices WHERE name = 'dev3');"
csr dev3 "$tmp/d3"
r=$(enroll "$tmp/x" "$tmp/d3.b64" -u "dev3:$tok3")
[ "${r%% *}" = 403 ] || fail "expired token: $r"
ok "expired token: 403"

# ---- bodies over est_max_body --------------------------------------------------------
head -c 1048576 /dev/zero > "$tmp/big"
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$est_pid/status")
# answered from the headers: curl uploads (next to) nothing of the 1 MiB
read -r code up secs < <(curl -sS --cacert "$ROOT" -o /dev/null -u "dev5:$tok5" \
  -H 'Expect: 100-continue' -w '%{http_code} %{size_upload} %{time_total}\n' \
  --data-binary "@$tmp/big" "$url/simpleenroll" || true)
[ "$code" = 413 ] || fail "1 MiB body: $code"
[ "$up" -lt 65536 ] || fail "1 MiB body: the server read $up octets before answering 413"
ms=$(python3 -c "print(int(float('$secs') * 1000))")
[ "$ms" -lt 5000 ] || fail "413 took $ms ms"
# chunked (no Content-Length): the server stops reading at the limit and closes
code=$(curl -sS --cacert "$ROOT" -o /dev/null -w '%{http_code}' -u "dev5:$tok5" \
  -H 'Transfer-Encoding: chunked' --data-binary "@$tmp/big" "$url/simpleenroll" 2> /dev/null || true)
[ "$code" != 200 ] || fail "chunked 1 MiB body accepted"
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$est_pid/status")
# the bodies are not buffered: growth stays well under their 2 MiB (AddressSanitizer's
# quarantine keeps freed TLS record buffers: a looser bound there)
rss_max=1024; [ "${MG_SANITIZE:-OFF}" = ON ] && rss_max=16384
[ $((rss1 - rss0)) -lt $rss_max ] || fail "server grew by $((rss1 - rss0)) kB on 1 MiB bodies"
[ "$(event_count est_body_too_large)" -ge 2 ] || fail "no est_body_too_large events"
ok "1 MiB body: 413 in $ms ms, $up octets uploaded; chunked 1 MiB: closed ($code); RSS +$((rss1 - rss0)) kB; events"

# ---- simplereenroll with the issued certificate --------------------------------------
openssl x509 -in "$tmp/d1.crt" -out "$tmp/d1.pem"
csr dev1 "$tmp/d1b"
r=$(reenroll "$tmp/d1b.p7" "$tmp/d1b.b64" --cert "$tmp/d1.pem" --key "$tmp/d1.key")
[ "${r%% *}" = 200 ] || fail "simplereenroll: $r"
p7_certs "$tmp/d1b.p7" > "$tmp/d1b.crt"
s_old=$(openssl x509 -in "$tmp/d1.crt" -noout -serial)
s_new=$(openssl x509 -in "$tmp/d1b.crt" -noout -serial)
[ "$s_old" != "$s_new" ] || fail "re-enrolment returned the same certificate"
[ "$(openssl x509 -in "$tmp/d1b.crt" -noout -pubkey)" = "$(openssl pkey -in "$tmp/d1b.key" -pubout)" ] \
  || fail "new cert is not for the new key"
ok "simplereenroll with the current certificate: new certificate for the new key"

r=$(reenroll "$tmp/x" "$tmp/d1b.b64")
[ "${r%% *}" = 403 ] || fail "simplereenroll without a certificate: $r"
r=$(reenroll "$tmp/x" "$tmp/d1b.b64" -u "dev1:$tok1")
[ "${r%% *}" = 403 ] || fail "simplereenroll with Basic only: $r"
ok "simplereenroll without a client certificate: 403"

csr dev2 "$tmp/d1c"
r=$(reenroll "$tmp/x" "$tmp/d1c.b64" --cert "$tmp/d1b.crt" --key "$tmp/d1b.key")
[ "${r%% *}" = 403 ] || fail "simplereenroll for another device: $r"
ok "simplereenroll with a CSR for another device: 403"

serial=$(openssl x509 -in "$tmp/d1b.crt" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f')
"$bin" ca revoke "$serial" --reason keyCompromise > "$tmp/revoke.log"
csr dev1 "$tmp/d1d"
r=$(reenroll "$tmp/x" "$tmp/d1d.b64" --cert "$tmp/d1b.crt" --key "$tmp/d1b.key")
[ "${r%% *}" = 403 ] || fail "simplereenroll with a revoked cert: $r"
events | awk -F'\t' '$2 == "dev1" && $5 == "est_auth_fail"' | grep -q revoked \
  || fail "no est_auth_fail event naming dev1 for the revoked certificate"
ok "simplereenroll with a revoked certificate: 403"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/other.key" \
  -subj "/CN=dev1" -days 5 -out "$tmp/other.crt" 2> /dev/null
r=$(reenroll "$tmp/x" "$tmp/d1d.b64" --cert "$tmp/other.crt" --key "$tmp/other.key")
case "${r%% *}" in 403|000) ;; *) fail "simplereenroll with another CA's cert: $r" ;; esac
ok "simplereenroll with a certificate of another CA: refused (${r%% *})"

# ---- factory certificate enrolment -------------------------------------------------------
csr dev4 "$tmp/d4"
r=$(enroll "$tmp/d4.p7" "$tmp/d4.b64" --cert "$tmp/fdev4.crt" --key "$tmp/fdev4.key")
[ "${r%% *}" = 200 ] || fail "factory enrolment: $r"
p7_certs "$tmp/d4.p7" | openssl x509 -noout -subject | grep -q 'CN *= *dev4' || fail "dev4 subject"
ok "simpleenroll with a factory certificate (manufacturer CA, CN = device): 200"
r=$(enroll "$tmp/x" "$tmp/d4.b64" --cert "$tmp/edev4.crt" --key "$tmp/edev4.key")
[ "${r%% *}" = 403 ] || fail "factory cert of an unknown manufacturer: $r"
r=$(enroll "$tmp/x" "$tmp/d2.b64" --cert "$tmp/fdev4.crt" --key "$tmp/fdev4.key")
[ "${r%% *}" = 403 ] || fail "factory cert with a CSR for another device: $r"
ok "factory certificate of an unknown CA, or with another device's CSR: 403"

# ---- TLS versions --------------------------------------------------------------------------
curl -sS --cacert "$ROOT" --tlsv1.2 --tls-max 1.2 -o /dev/null "$url/cacerts" || fail "TLS 1.2"
curl -sS --cacert "$ROOT" --tlsv1.3 -o /dev/null "$url/cacerts" || fail "TLS 1.3"
if openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
     < /dev/null > "$tmp/tls11.log" 2>&1; then
  grep -q 'Protocol *: TLSv1.1' "$tmp/tls11.log" && fail "TLS 1.1 accepted"
fi
ok "TLS 1.2 and 1.3 accepted, TLS 1.1 not"

# events carry the peer address and the bearer
events | awk -F'\t' '$3 == "est"' > "$tmp/ev.txt"
awk -F'\t' '$4 != "127.0.0.1"' "$tmp/ev.txt" | grep -q . && fail "an est event without the source"
[ "$(event_count est_enrolled)" -ge 3 ] || fail "no est_enrolled events"
[ "$(event_count est_reenrolled)" -ge 1 ] || fail "no est_reenrolled event"
ok "events: bearer est, source 127.0.0.1, enrolments recorded too"

# ---- event flood: rate-limited ---------------------------------------------------------------
kill "$est_pid"; wait "$est_pid" 2> /dev/null || true
sed -i '/^est_events_burst/d' "$W/m2mguard.conf"
printf 'est_events_burst = 5\nest_events_per_min = 1\nest_max_conn_per_ip = 4\nest_timeout_s = 2\n' \
  >> "$W/m2mguard.conf"
start_est
# connection limits: 4 idle connections from 127.0.0.1 are held, a 5th is closed
# at once; the idle ones are closed after est_timeout_s
python3 - "$port" > "$tmp/conn.log" <<'EOF2'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
time.sleep(0.3)
fifth = socket.create_connection(("127.0.0.1", port))
fifth.settimeout(1.5)
try:
    data = fifth.recv(1)
    print("fifth", "closed" if data == b"" else "data")
except (socket.timeout, TimeoutError):
    print("fifth open")
except ConnectionResetError:
    print("fifth closed")
t0 = time.monotonic()
for s in held:
    s.settimeout(6)
    try:
        s.recv(1)
    except (socket.timeout, TimeoutError):
        print("idle still open"); sys.exit(0)
    except ConnectionResetError:
        pass
print("idle closed after %.1f s" % (time.monotonic() - t0 + 1.5))
EOF2
grep -qx 'fifth closed' "$tmp/conn.log" || fail "5th connection from one address: $(cat "$tmp/conn.log")"
grep -q '^idle closed' "$tmp/conn.log" || fail "idle connections: $(cat "$tmp/conn.log")"
ok "per-address limit: 5th connection closed; idle ones closed by the timeout ($(tail -n 1 "$tmp/conn.log"))"
before=$(event_count est_auth_missing)
args=(); for _ in $(seq 1 60); do args+=(-o /dev/null "$url/simpleenroll"); done
curl -sS --cacert "$ROOT" -X POST -d x "${args[@]}" > /dev/null 2>&1 || true
after=$(event_count est_auth_missing)
n=$((after - before))
[ "$n" -ge 1 ] && [ "$n" -le 6 ] || fail "flood of 60 refusals wrote $n events (want 1..6)"
kill -TERM "$est_pid"; wait "$est_pid" 2> /dev/null || true
grep -q 'suppressed by the rate limit' "$tmp/est.log" || fail "no suppressed count on stop"
ok "60 refusals from one source: $n events written, the rest counted ($(tail -n 1 "$tmp/est.log"))"

# the CRL is rewritten by the running server when it is missing (or near its nextUpdate)
echo "est_crl_check_s = 1" >> "$W/m2mguard.conf"
start_est
rm -f "$W/ca/crl.pem"
wait_for 10 test -s "$W/ca/crl.pem" || fail "the server did not rewrite a missing CRL"
openssl crl -in "$W/ca/crl.pem" -CAfile "$W/ca/chain.pem" -noout > "$tmp/crlcheck.log" 2>&1 \
  || fail "rewritten CRL does not verify: $(cat "$tmp/crlcheck.log")"
grep -q "CRL rewritten" "$tmp/est.log" || fail "no 'CRL rewritten' line"
kill -TERM "$est_pid"; wait "$est_pid" 2> /dev/null || true
ok "a missing CRL is rewritten by the running server within est_crl_check_s, signed by the issuing CA"

echo "est: $pass checks passed"
