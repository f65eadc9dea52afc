#!/usr/bin/env bash
# `m2mguard update create|inspect|verify` without a network: an envelope
# signed by a key inside a SoftHSM2 token (pkcs11: URI, the key never leaves)
# and by an Ed25519 PEM key; inspect (text and JSON) shows the manifest;
# verify accepts the right anchor (PEM, and a registered signer by kid) and
# the right image, refuses another key, a revoked signer, a single bit flip
# anywhere in the envelope, and the wrong image; usage errors exit 2.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mg_test_prefix=mg-suitcli source "$src/tests/lib/harness.sh"
source "$src/tests/signed/token.sh"
export M2MGUARD_HOME=$tmp/wd
"$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
head -c 5000 /dev/urandom > "$tmp/img.bin"
new_token vendor
token_key vendor fw 01
uri=$(token_uri vendor fw)
"$bin" update create --image "$tmp/img.bin" --vendor example.com --class meter-v2 --seq 7 \
  --min-version 3 --key "$uri" --kid fw -o "$tmp/a.suit" 2> "$tmp/create.log" || fail "create with a token key: $(cat "$tmp/create.log")"
"$bin" update inspect "$tmp/a.suit" > "$tmp/inspect.out"
grep -q "^sequence: 7$" "$tmp/inspect.out" && grep -q "^image-size: 5000$" "$tmp/inspect.out" &&
  grep -q "^min-version: 3$" "$tmp/inspect.out" && grep -q "NOT VERIFIED" "$tmp/inspect.out" || fail "inspect: $(cat "$tmp/inspect.out")"
grep -q "image-digest: sha-256 $(sha256sum "$tmp/img.bin" | cut -d' ' -f1)" "$tmp/inspect.out" || fail "inspect digest"
"$bin" update inspect --json "$tmp/a.suit" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["seq"]==7 and d["image_size"]==5000 and d["min_version"]==3, d'
ok "create with a key inside a SoftHSM2 token (pkcs11:), inspect (text, JSON)"
"$bin" update verify "$tmp/a.suit" --anchor "$tmp/fw.pub" --image "$tmp/img.bin" > "$tmp/v.out" || fail "verify"
grep -q "signature: verified; image verified" "$tmp/v.out" || fail "verify output"
"$bin" signer add fw --pub "$tmp/fw.pub" --role vendor > /dev/null 2>> "$tmp/init.log" || fail "signer add"
"$bin" update verify "$tmp/a.suit" --signer fw > /dev/null || fail "verify --signer"
ok "verify with the PEM anchor and image, and with the registered signer by kid"

es256_key other
set +e
"$bin" update verify "$tmp/a.suit" --anchor "$tmp/other.pub" 2> "$tmp/e1"; r1=$?
"$bin" signer revoke fw > /dev/null 2>&1
"$bin" update verify "$tmp/a.suit" --signer fw 2> "$tmp/e2"; r2=$?
head -c 4999 "$tmp/img.bin" > "$tmp/short.bin"
"$bin" update verify "$tmp/a.suit" --anchor "$tmp/fw.pub" --image "$tmp/short.bin" 2> "$tmp/e3"; r3=$?
"$bin" update verify "$tmp/a.suit" 2> /dev/null; r4=$?
"$bin" update create --image "$tmp/img.bin" --vendor x --class y --seq 0 --key "$uri" -o "$tmp/z" 2> /dev/null; r5=$?
set -e
[ $r1 -eq 1 ] && grep -q "refused: bad_signature" "$tmp/e1" || fail "another key: $r1 $(cat "$tmp/e1")"
[ $r2 -eq 1 ] && grep -q "revoked" "$tmp/e2" || fail "revoked signer: $r2"
[ $r3 -eq 1 ] && grep -q "refused: image_too_short" "$tmp/e3" || fail "short image: $r3 $(cat "$tmp/e3")"
[ $r4 -eq 2 ] && [ $r5 -eq 2 ] || fail "usage errors: $r4 $r5"
ok "refused: another key (bad_signature), a revoked signer, a short image (image_too_short); usage errors exit 2"

# a single bit flip in every octet of the envelope is refused (Ed25519; bit i mod 8 of octet i)
openssl genpkey -algorithm ed25519 -out "$tmp/ed.key" 2>/dev/null; chmod 600 "$tmp/ed.key"
openssl pkey -in "$tmp/ed.key" -pubout -out "$tmp/ed.pub"
"$bin" update create --image "$tmp/img.bin" --vendor example.com --class meter-v2 --seq 8 \
  --key "$tmp/ed.key" -o "$tmp/b.suit" 2>> "$tmp/create.log"
"$bin" update verify "$tmp/b.suit" --anchor "$tmp/ed.pub" > /dev/null || fail "Ed25519 envelope"
n=$(stat -c %s "$tmp/b.suit")
python3 - "$tmp/b.suit" "$tmp/flips" <<'PY'
import sys, os
data = open(sys.argv[1], 'rb').read()
os.makedirs(sys.argv[2])
for i in range(len(data)):
    b = bytearray(data); b[i] ^= 1 << (i % 8)
    open(os.path.join(sys.argv[2], '%d' % i), 'wb').write(b)
PY
accepted=0
for f in "$tmp/flips"/*; do
  if "$bin" update verify "$f" --anchor "$tmp/ed.pub" > /dev/null 2>&1; then accepted=$((accepted + 1)); echo "accepted: $f" >&2; fi
done
[ $accepted -eq 0 ] || fail "$accepted bit-flipped envelopes verified"
ok "Ed25519: $n single-bit flips, one in each octet of the $n-octet envelope, all refused"
echo "PASS: $pass checks"
