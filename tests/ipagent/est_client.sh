#!/usr/bin/env bash
# The agent's EST client against a hostile HTTPS peer (est_peer.py): an answer
# larger than 64 KiB (with Content-Length and chunked), garbage, a certs-only
# PKCS#7 without a certificate for the agent's key, 202 (manual approval), 401,
# and an EST server whose certificate is of another CA. Each is refused with a
# clear reason, no certificate is written, the key stays 0600.
source "$(dirname "$0")/lib.sh"
openssl_pki stranger
# a certs-only PKCS#7 holding a certificate for another key
openssl crl2pkcs7 -nocrl -certfile "$tmp/pki/stranger.crt" -outform DER | openssl base64 > "$tmp/other.b64"
port=$(free_port)
python3 "$(dirname "$0")/est_peer.py" "$port" "$tmp/pki/server.crt" "$tmp/pki/server.key" \
  "$tmp/other.b64" > "$tmp/peer.out" 2>> "$tmp/peer.log" &
pids+=("$!")
wait_for 10 grep -q listening "$tmp/peer.out" || fail "EST peer did not start"
n=0
try() { # try MODE EXPECTED_RC REASON [CAFILE]: the device name selects the peer's answer
  local mode=$1 want=$2 reason=$3 cafile=${4:-$tmp/pki/ca.crt}
  n=$((n + 1))
  set +e
  "$bin" agent run --mqtt 127.0.0.1:1 --est "https://127.0.0.1:$port" --name "$mode" \
    --token 00112233445566778899aabbccddeeff --cafile "$cafile" --state-dir "$tmp/st$n" \
    > /dev/null 2> "$tmp/agent$n.log"
  local rc=$?
  set -e
  [ $rc -eq "$want" ] || fail "$mode: exit $rc, expected $want: $(cat "$tmp/agent$n.log")"
  grep -qF -- "$reason" "$tmp/agent$n.log" || fail "$mode: reason missing: $(cat "$tmp/agent$n.log")"
  [ ! -e "$tmp/st$n/cert.pem" ] || fail "$mode: a certificate was written"
  [ "$(stat -c %a "$tmp/st$n/key.pem")" = 600 ] || fail "$mode: key.pem not 0600"
  ! grep -q 00112233445566778899aabbccddeeff "$tmp/agent$n.log" || fail "$mode: the token was logged"
  ok "$mode: refused ($reason)"
}
try big 4 "answer larger than 65536 octets, refused"
try chunkbig 4 "answer larger than 65536 octets, refused"
try garbage 1 "not base64 DER PKCS#7"
try other 1 "holds no certificate for our key"
try pending 1 "manual approval is not supported"
try unauth 1 "HTTP status 401"
[ -s "$tmp/st1/cacerts.pem" ] || fail "cacerts.pem not written"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=other" \
  -keyout "$tmp/o.key" -out "$tmp/o.crt" 2>/dev/null
try other 4 "SSL peer certificate or SSH remote key was not OK" "$tmp/o.crt"
echo "PASS: $pass checks"
