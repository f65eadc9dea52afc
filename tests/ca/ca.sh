#!/usr/bin/env bash
# `m2mguard ca ...`, `app ...` and the device commands' certificate parts,
# checked with the openssl CLI as an independent reader: every field of an
# issued certificate (x509 -text), the chain (verify -untrusted), the CRL
# (crl -text: v2, nextUpdate, CRL number grows, revoked serial with reason;
# verify -crl_check), CSR refusals, file modes, `ca init` twice.
set -euo pipefail
bin=$1
pass=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); }
expect() { # expect NAME WANT GOT
  [ "$2" == "$3" ] || fail "$1: want '$2' got '$3'"
  ok
}
has() { # has NAME FILE REGEX (grep -E, no -q: no SIGPIPE)
  grep -E -- "$3" "$2" >/dev/null || fail "$1: no /$3/ in $(cat "$2")"
  ok
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out; err=$tmp/err
run() { # run WANT_RC cmd...: stdout in $out, stderr in $err
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$err") $(cat "$out")"
  ok
}
mode() { stat -c %a "$1"; }
unset M2MGUARD_HOME
dir=$tmp/wd
ca=$dir/ca
export M2MGUARD_HOME=$dir

# ---- help tells the truth ------------------------------------------------------
run 0 ca --help
for c in init issue server revoke crl list; do has "ca help $c" "$out" "^  $c "; done
for c in init issue server revoke crl list; do run 0 ca $c --help; has "$c usage" "$out" "^usage: m2mguard ca $c"; done
run 0 app --help
run 0 app add --help
has "app add usage" "$out" "telemetry-reader"

# ---- init ------------------------------------------------------------------------
run 3 ca init # no working directory yet
run 0 init "$dir"
run 2 ca init --key ed25519
run 0 ca init --crl-days 9 --days 200 --root-key-out "$tmp/root-offline.key"
for f in issuing.key ca.conf; do expect "mode $f" 600 "$(mode "$ca/$f")"; done
expect "offline root key mode" 600 "$(mode "$tmp/root-offline.key")"
[ ! -e "$ca/root.key" ] || fail "root.key written despite --root-key-out"
ok
run 1 ca init
has "init twice" "$err" "already holds a CA"
openssl x509 -in "$ca/root.crt" -noout -text >"$tmp/root.txt"
has "root self-signed" "$tmp/root.txt" "Issuer: O = m2mguard, CN = m2mguard root CA"
has "root BC" "$tmp/root.txt" "CA:TRUE"
has "root KU" "$tmp/root.txt" "Certificate Sign, CRL Sign"
has "root P-256" "$tmp/root.txt" "ASN1 OID: prime256v1"
openssl x509 -in "$ca/issuing.crt" -noout -text >"$tmp/iss.txt"
has "issuing pathlen" "$tmp/iss.txt" "CA:TRUE, pathlen:0"
has "issuing issuer" "$tmp/iss.txt" "Issuer: O = m2mguard, CN = m2mguard root CA"
openssl verify -CAfile "$ca/root.crt" "$ca/issuing.crt" >"$out" 2>&1 || fail "issuing does not verify: $(cat "$out")"
ok
openssl crl -in "$ca/crl.pem" -noout -text >"$tmp/crl0.txt"
has "crl v2" "$tmp/crl0.txt" "Version 2"
has "crl empty" "$tmp/crl0.txt" "No Revoked Certificates"
n0=$(sed -n '/X509v3 CRL Number/{n;s/ //g;p}' "$tmp/crl0.txt")

# ---- devices and applications ---------------------------------------------------------
run 0 device add meter-1 --ip --enrol-token --token-ttl 2
has "ip-only add" "$out" "^added device meter-1 \(id [0-9]+, IP-only, no SMS keys\)$"
has "token printed" "$out" "^enrol-token: [0-9a-f]{32}$"
[ ! -e "$dir/devices/meter-1.prov" ] || fail "IP-only device has a .prov file"
ok
token=$(sed -n 's/^enrol-token: //p' "$out")
run 0 device add dual-1 --ip --msisdn +4915100000001
has "dual add" "$out" "^bearers: sms ip$"
run 2 device add x-1 --enrol-token --msisdn +4915100000002
run 2 device add x-1 --ip --alg aes
run 0 device add meter-2 --ip
run 0 app add dash --role telemetry-reader
run 1 app add meter-1 --role operator # a device's name
run 2 app add dash2 --role 'bad role'
run 0 app list
has "app list" "$out" "^[0-9]+	dash	telemetry-reader	"
# the store holds SHA-256 of the 16 token octets, valid for --token-ttl 2 hours
want_hash=$(printf '%s' "$token" | xxd -r -p | sha256sum | cut -d' ' -f1)
got_hash=$(sqlite3 "$dir/m2mguard.db" "SELECT lower(hex(hash)) FROM enrol_tokens t JOIN devices d ON d.id = t.device_id WHERE d.name = 'meter-1'")
expect "token hash stored" "$want_hash" "$got_hash"
ttl=$(sqlite3 "$dir/m2mguard.db" "SELECT t.expires - d.created FROM enrol_tokens t JOIN devices d ON d.id = t.device_id WHERE d.name = 'meter-1'")
[ "$ttl" -ge 7199 ] && [ "$ttl" -le 7201 ] || fail "token ttl $ttl s, want 7200"
ok
# the token is in no file of the working directory (only its hash in the store)
if grep -r -- "$token" "$dir" >/dev/null 2>&1; then fail "the enrolment token is stored in clear"; fi
ok

# ---- issue: genkey, CSR from openssl (PEM and DER) ---------------------------------------
run 0 ca issue meter-1 --genkey --key-out "$tmp/m1.key" --out "$tmp/m1.crt"
expect "device key mode" 600 "$(mode "$tmp/m1.key")"
serial1=$(sed -n 's/^serial: //p' "$out")
[[ $serial1 =~ ^[0-7][0-9a-f]{31}$ && $serial1 != 00* ]] || fail "serial '$serial1' is not 16 positive octets"
ok
fp1=$(sed -n 's/^sha256: //p' "$out")
want_fp=$(openssl x509 -in "$tmp/m1.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
expect "fingerprint" "$want_fp" "$fp1"
openssl x509 -in "$tmp/m1.crt" -noout -text >"$tmp/m1.txt"
has "version 3" "$tmp/m1.txt" "Version: 3 \(0x2\)"
has "serial" "$tmp/m1.txt" "Serial Number:"
want_serial=$(openssl x509 -in "$tmp/m1.crt" -noout -serial | sed 's/serial=//' | tr A-F a-f)
expect "serial matches" "$serial1" "$want_serial"
has "signature ecdsa-with-SHA256" "$tmp/m1.txt" "Signature Algorithm: ecdsa-with-SHA256"
has "issuer" "$tmp/m1.txt" "Issuer: O = m2mguard, CN = m2mguard issuing CA"
has "subject" "$tmp/m1.txt" "Subject: CN = meter-1$"
has "SAN URI" "$tmp/m1.txt" "URI:urn:m2mguard:dev:meter-1$"
has "KU critical" "$tmp/m1.txt" "X509v3 Key Usage: critical"
has "KU digitalSignature only" "$tmp/m1.txt" "^ +Digital Signature$"
has "EKU clientAuth" "$tmp/m1.txt" "TLS Web Client Authentication$"
has "BC critical" "$tmp/m1.txt" "X509v3 Basic Constraints: critical"
has "BC CA:FALSE" "$tmp/m1.txt" "CA:FALSE"
has "SKI" "$tmp/m1.txt" "X509v3 Subject Key Identifier"
has "AKI" "$tmp/m1.txt" "X509v3 Authority Key Identifier"
nb=$(date -d "$(openssl x509 -in "$tmp/m1.crt" -noout -startdate | sed 's/.*=//')" +%s)
na=$(date -d "$(openssl x509 -in "$tmp/m1.crt" -noout -enddate | sed 's/.*=//')" +%s)
expect "default validity (ca init --days 200)" $((200 * 86400)) $((na - nb))
openssl verify -CAfile "$ca/root.crt" -untrusted "$ca/issuing.crt" "$tmp/m1.crt" >"$out" 2>&1 \
  || fail "device certificate does not verify: $(cat "$out")"
ok
openssl verify -CAfile "$ca/chain.pem" -purpose sslclient "$tmp/m1.crt" >"$out" 2>&1 \
  || fail "not a TLS client certificate: $(cat "$out")"
ok
# the key matches the certificate
expect "key matches" "$(openssl pkey -in "$tmp/m1.key" -pubout)" "$(openssl x509 -in "$tmp/m1.crt" -noout -pubkey)"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$tmp/m2.key" \
  -subj /CN=meter-2 -out "$tmp/m2.csr" 2>/dev/null
openssl req -in "$tmp/m2.csr" -outform DER -out "$tmp/m2.der"
run 0 ca issue meter-2 --csr "$tmp/m2.csr" --minutes 5 --out "$tmp/m2.crt"
nb=$(date -d "$(openssl x509 -in "$tmp/m2.crt" -noout -startdate | sed 's/.*=//')" +%s)
na=$(date -d "$(openssl x509 -in "$tmp/m2.crt" -noout -enddate | sed 's/.*=//')" +%s)
expect "short-lived 5 minutes" 300 $((na - nb))
run 0 ca issue meter-2 --csr "$tmp/m2.der" --days 10 # PEM on stdout
openssl x509 -noout -subject <"$out" >"$tmp/subj" || fail "stdout is not a PEM certificate"
has "PEM on stdout" "$tmp/subj" "CN = meter-2"
run 2 ca issue meter-2 --csr "$tmp/m2.der" --days 10 --minutes 5
run 3 ca issue nobody --csr "$tmp/m2.der"
run 1 ca issue meter-2 --csr "$tmp/m2.csr" --out "$tmp/m2.crt" # exists: refused

# application certificate
openssl req -new -newkey rsa:2048 -nodes -keyout "$tmp/dash.key" -subj /CN=dash -out "$tmp/dash.csr" 2>/dev/null
run 0 ca issue --app dash --csr "$tmp/dash.csr" --out "$tmp/dash.crt"
openssl x509 -in "$tmp/dash.crt" -noout -text >"$tmp/dash.txt"
has "app SAN" "$tmp/dash.txt" "URI:urn:m2mguard:app:dash$"
has "app EKU" "$tmp/dash.txt" "TLS Web Client Authentication$"

# server certificate
run 0 ca server broker --dns localhost --ip 127.0.0.1 --key-out "$tmp/srv.key" --out "$tmp/srv.crt"
expect "server key mode" 600 "$(mode "$tmp/srv.key")"
openssl x509 -in "$tmp/srv.crt" -noout -text >"$tmp/srv.txt"
has "server SAN" "$tmp/srv.txt" "DNS:localhost, IP Address:127.0.0.1"
has "server EKU" "$tmp/srv.txt" "TLS Web Server Authentication$"
openssl verify -CAfile "$ca/chain.pem" -purpose sslserver "$tmp/srv.crt" >"$out" 2>&1 \
  || fail "server certificate does not verify: $(cat "$out")"
ok
run 2 ca server broker --dns 'bad name' --key-out "$tmp/srv2.key" --out "$tmp/srv2.crt"
run 2 ca server broker --key-out "$tmp/srv3.key" --out "$tmp/srv3.crt"

# ---- CSR refusals (each exit 1 with a reason and an event) --------------------------------
# bad signature: flip one octet of the signature (the last octet of the DER)
cp "$tmp/m2.der" "$tmp/bad.der"
last=$(( $(stat -c %s "$tmp/bad.der") - 1 ))
orig=$(od -An -tx1 -j "$last" -N1 "$tmp/bad.der" | tr -d ' ')
printf "$(printf '\\x%02x' $(( 0x$orig ^ 0x01 )))" | dd of="$tmp/bad.der" bs=1 seek="$last" conv=notrunc 2>/dev/null
run 1 ca issue meter-2 --csr "$tmp/bad.der"
has "PoP refused" "$err" "proof of possession"
run 1 ca issue meter-1 --csr "$tmp/m2.der" # CN meter-2 for meter-1
has "CN refused" "$err" "names another device"
openssl req -new -newkey rsa:1024 -nodes -keyout "$tmp/weak.key" -subj /CN=meter-2 -out "$tmp/weak.csr" 2>/dev/null
run 1 ca issue meter-2 --csr "$tmp/weak.csr"
has "RSA-1024 refused" "$err" "RSA-1024 key refused"
openssl req -new -newkey ed25519 -nodes -keyout "$tmp/ed.key" -subj /CN=meter-2 -out "$tmp/ed.csr" 2>/dev/null
run 1 ca issue meter-2 --csr "$tmp/ed.csr"
has "Ed25519 refused" "$err" "EdDSA key refused"
head -c 300 /dev/urandom >"$tmp/garbage"
run 1 ca issue meter-2 --csr "$tmp/garbage"
has "garbage refused" "$err" "not a DER PKCS#10 CSR"
{ cat "$tmp/m2.der"; head -c 17000 /dev/zero; } >"$tmp/big.der"
run 1 ca issue meter-2 --csr "$tmp/big.der"
has "oversized refused" "$err" "at most 16384"
run 0 events
has "csr refusal events" "$out" "csr_refused"

# ---- list, revoke, CRL ------------------------------------------------------------------
run 0 ca list --device meter-1
has "list" "$out" "^$serial1	dev:meter-1	meter-1	.*	valid	-	$fp1$"
run 0 ca list --json
has "list json" "$out" "\"serial\":\"$serial1\""
run 2 ca revoke "$serial1" --reason nonsense
run 0 ca revoke "$serial1" --reason keyCompromise
run 1 ca revoke "$serial1"
run 3 ca revoke 0123456789abcdef
openssl crl -in "$ca/crl.pem" -noout -text >"$tmp/crl1.txt"
has "crl v2" "$tmp/crl1.txt" "Version 2"
has "crl nextUpdate" "$tmp/crl1.txt" "Next Update: "
has "crl lists serial" "$tmp/crl1.txt" "Serial Number: $(echo "$serial1" | tr a-f A-F)"
has "crl reason" "$tmp/crl1.txt" "Key Compromise"
has "crl AKI" "$tmp/crl1.txt" "X509v3 Authority Key Identifier"
n1=$(sed -n '/X509v3 CRL Number/{n;s/ //g;p}' "$tmp/crl1.txt")
[ $((16#$n1)) -gt $((16#$n0)) ] || fail "CRL number did not grow ($n0 -> $n1)"
ok
lu=$(date -d "$(openssl crl -in "$ca/crl.pem" -noout -lastupdate | sed 's/.*=//')" +%s)
nu=$(date -d "$(openssl crl -in "$ca/crl.pem" -noout -nextupdate | sed 's/.*=//')" +%s)
expect "nextUpdate = thisUpdate + 9 days" $((9 * 86400)) $((nu - lu))
cat "$ca/chain.pem" "$ca/crl.pem" >"$tmp/chain-crl.pem"
set +e
openssl verify -crl_check -CAfile "$tmp/chain-crl.pem" "$tmp/m1.crt" >"$out" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "revoked certificate verifies with -crl_check"
has "verify says revoked" "$out" "certificate revoked"
openssl verify -crl_check -CAfile "$tmp/chain-crl.pem" "$tmp/m2.crt" >"$out" 2>&1 \
  || fail "valid certificate fails -crl_check: $(cat "$out")"
ok
run 0 ca list --device meter-1
has "list revoked" "$out" "	revoked	keyCompromise	"
run 0 ca crl
has "crl print" "$out" "^-----BEGIN X509 CRL-----$"
run 0 ca crl --refresh
has "crl fresh" "$err" "CRL still fresh"
run 0 ca crl --write
openssl crl -in "$ca/crl.pem" -noout -text >"$tmp/crl2.txt"
n2=$(sed -n '/X509v3 CRL Number/{n;s/ //g;p}' "$tmp/crl2.txt")
[ $((16#$n2)) -gt $((16#$n1)) ] || fail "CRL number did not grow on --write ($n1 -> $n2)"
ok

# ---- device revoke revokes the certificates; device show lists them ------------------------
run 0 device show meter-2
has "show certs" "$out" "^cert: [0-9a-f]{32} not_after .* valid$"
has "show bearers" "$out" "^bearers: ip$"
run 0 device revoke meter-2
has "device revoke certs" "$out" "^revoked 2 certificates of meter-2; CRL rewritten$"
openssl crl -in "$ca/crl.pem" -noout -text >"$tmp/crl3.txt"
has "crl cessation" "$tmp/crl3.txt" "Cessation Of Operation"
run 0 device show meter-2 --json
has "show json revoked" "$out" "\"status\":\"revoked\"\\}"
run 1 ca issue meter-2 --csr "$tmp/m2.csr" # revoked device: no certificate
run 0 events
has "revoke events" "$out" "cert_revoked"

# ---- device delete revokes the certificates first ----------------------------------------
run 0 device add meter-3 --ip
run 0 ca issue meter-3 --genkey --key-out "$tmp/m3.key" --out "$tmp/m3.crt"
serial3=$(sed -n 's/^serial: //p' "$out")
run 1 device delete meter-3 # active: needs --yes
run 0 device delete meter-3 --yes
has "device delete certs" "$out" "^revoked 1 certificate of meter-3; CRL rewritten$"
has "device delete done" "$out" "^device meter-3 deleted$"
openssl crl -in "$ca/crl.pem" -noout -text >"$tmp/crl4.txt"
has "crl lists deleted device's serial" "$tmp/crl4.txt" "Serial Number: $(echo "$serial3" | tr a-f A-F)"
run 0 ca list
has "list deleted device's cert revoked" "$out" "^$serial3	.*	revoked	cessationOfOperation	"

# ---- pkcs11: key reference ----------------------------------------------------------------
sed -i 's|^issuing_key = .*|issuing_key = pkcs11:token=ca;object=issuing|' "$ca/ca.conf"
# no token here with that label (tests/unit/test_keyref.c signs with a SoftHSM2 token)
run 3 ca crl --write
has "pkcs11 no token" "$err" "token"
echo "ca.sh: $pass checks passed"
