#!/usr/bin/env bash
# The CA's issuing key inside a SoftHSM2 token: generated INSIDE the token
# (pkcs11-tool --keypairgen --sensitive), `ca init --issuing-key pkcs11:...`
# makes the issuing certificate for it, a device certificate and the CRL are
# signed in the token and verified with the openssl CLI, and the key cannot
# be read out of the token.
. "$(dirname "$0")/lib.sh"
new_token ca
p11 --token-label ca --login --pin 1234 --keypairgen --key-type EC:prime256v1 --sensitive \
  --usage-sign --label issuing --id 01 > "$tmp/keygen.log" 2>&1 || fail "keypairgen: $(cat "$tmp/keygen.log")"
uri="pkcs11:token=ca;object=issuing;type=private?pin-source=$tmp/ca.pin&module-path=$module"
export M2MGUARD_HOME=$tmp/wd
run 0 init "$M2MGUARD_HOME"
run 0 ca init --help
has "help names --issuing-key" "$out" "--issuing-key REF"
run 2 ca init --issuing-key relative/key.pem
has "relative key path refused" "$err" "absolute path or a pkcs11: URI"
run 0 ca init --issuing-key "$uri"
ca=$M2MGUARD_HOME/ca
[ ! -e "$ca/issuing.key" ] || fail "issuing.key written although the key is in the token"
ok "no issuing.key file"
has "ca.conf names the token key" "$ca/ca.conf" "^issuing_key = pkcs11:token=ca;object=issuing"
hasnt "no PIN printed" "$out" "1234"

# the issuing certificate carries the token's public key
p11 --token-label ca --read-object --type pubkey --id 01 -o "$tmp/tok.pub.der" > /dev/null 2>&1
openssl pkey -pubin -inform DER -in "$tmp/tok.pub.der" -outform DER -out "$tmp/tok.spki.der"
openssl x509 -in "$ca/issuing.crt" -noout -pubkey | openssl pkey -pubin -outform DER -out "$tmp/crt.spki.der"
cmp -s "$tmp/tok.spki.der" "$tmp/crt.spki.der" || fail "issuing.crt key is not the token's key"
ok "issuing.crt holds the token key"
openssl verify -CAfile "$ca/root.crt" "$ca/issuing.crt" > "$tmp/v0" 2>&1 || fail "issuing.crt: $(cat "$tmp/v0")"
ok "issuing.crt verifies under the root"

# a device certificate signed inside the token
run 0 device add lock-1 --ip
run 0 ca issue lock-1 --genkey --key-out "$tmp/lock-1.key" --out "$tmp/lock-1.crt"
openssl verify -CAfile "$ca/root.crt" -untrusted "$ca/issuing.crt" "$tmp/lock-1.crt" > "$tmp/v1" 2>&1 ||
  fail "device certificate: $(cat "$tmp/v1")"
ok "device certificate verifies (root -> issuing in token -> device)"
openssl x509 -in "$tmp/lock-1.crt" -noout -issuer > "$tmp/iss"
has "issued by the issuing CA" "$tmp/iss" "CN ?= ?m2mguard issuing CA"
# the CRL, signed in the token, after a revocation
run 0 ca revoke --device lock-1
openssl crl -in "$ca/crl.pem" -CAfile "$ca/chain.pem" -noout > "$tmp/crl" 2>&1 || fail "CRL: $(cat "$tmp/crl")"
has "CRL signature verifies" "$tmp/crl" "verify OK"
openssl verify -crl_check -CRLfile "$ca/crl.pem" -CAfile "$ca/root.crt" -untrusted "$ca/issuing.crt" \
  "$tmp/lock-1.crt" > "$tmp/v2" 2>&1 && fail "revoked certificate still verifies"
has "revoked certificate refused with the token-signed CRL" "$tmp/v2" "revoked"

# the private key cannot leave the token
p11 --token-label ca --login --pin 1234 --list-objects --type privkey > "$tmp/objs" 2>&1
has "key is sensitive" "$tmp/objs" "Access: .*sensitive"
has "key never extractable" "$tmp/objs" "never extractable"
# pkcs11-tool refuses to read private keys whatever the token says; the
# attributes above are the token's answer (CKA_SENSITIVE, CKA_NEVER_EXTRACTABLE).
p11 --token-label ca --login --pin 1234 --read-object --type privkey --id 01 -o "$tmp/leak" \
  > "$tmp/read.log" 2>&1 || true
[ ! -s "$tmp/leak" ] || fail "private key octets written"
ok "reading the private key fails"
echo "ca_token: $pass checks passed"
