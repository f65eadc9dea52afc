#!/usr/bin/env bash
# Signed commands against an independent implementation (tests/cose/peer.py:
# Debian python3-cryptography + python3-cbor2, its own Sig_structure), and the
# refusals of `m2mguard cmd verify`. Keys are made by the openssl CLI.
# $1: the m2mguard binary.
set -euo pipefail
M=$1
SRC=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
PEER="$PY $SRC/tests/cose/peer.py"
if ! $PY -c 'import cbor2, cryptography' 2>/dev/null; then
    echo "FAIL: python3-cbor2 and python3-cryptography are required (tools/debian-packages.txt)"
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mg-cose.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
pass=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/es.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$T/ed.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.pem" 2>/dev/null
chmod 600 "$T"/*.pem
for k in es ed other; do openssl pkey -in "$T/$k.pem" -pubout -out "$T/$k.pub"; done
now=$(date +%s)

# m2mguard signs, the peer verifies (both algorithms)
for k in es ed; do
    h=$("$M" cmd sign --key "$T/$k.pem" --kid "op-$k" --device door-1 --seq 3 --command unlock --args "door=front")
    if out=$($PEER verify --pub "$T/$k.pub" --device door-1 "$h" 2>&1) && [[ $out == *"command=unlock seq=3"* ]]; then
        ok "m2mguard signs ($k), peer verifies: $out"
    else
        bad "m2mguard signs ($k), peer verifies: $out"
    fi
    # the peer refuses it for another device and when tampered (last signature octet)
    if $PEER verify --pub "$T/$k.pub" --device door-2 "$h" >/dev/null 2>&1; then
        bad "peer accepted the wrong audience ($k)"
    else ok "peer refuses the wrong audience ($k)"; fi
    last=${h: -1}
    [[ $last == 0 ]] && flip=1 || flip=0
    if $PEER verify --pub "$T/$k.pub" --device door-1 "${h%?}$flip" >/dev/null 2>&1; then
        bad "peer accepted a tampered signature ($k)"
    else ok "peer refuses a tampered signature ($k)"; fi
done

# the peer signs, m2mguard verifies (both algorithms)
A=(--anchor "op-es=$T/es.pub" --anchor "op-ed=$T/ed.pub")
for k in es ed; do
    h=$($PEER sign --key "$T/$k.pem" --kid "op-$k" --device door-1 --seq 9 --command unlock \
        --args "door=front" --iat "$now" --exp $((now + 300)))
    want="ok seq=9 kid=op-$k alg=$([[ $k == es ]] && echo ES256 || echo EdDSA) command=unlock args=door=front"
    if out=$("$M" cmd verify "${A[@]}" --device door-1 --last-seq 8 "$h" 2>&1) && [[ $out == "$want" ]]; then
        ok "peer signs ($k), m2mguard verifies: $out"
    else
        bad "peer signs ($k), m2mguard verifies: $out"
    fi
done

# refusals, each with its precise reason
h=$($PEER sign --key "$T/es.pem" --kid op-es --device door-1 --seq 9 --command unlock \
    --iat "$now" --exp $((now + 300)))
refuse() { # NAME REASON ARGS...
    local name=$1 reason=$2 err rc=0
    shift 2
    err=$("$M" cmd verify "$@" 2>&1 >/dev/null) || rc=$?
    if [[ $rc -eq 1 && $err == "refused: $reason" ]]; then ok "$name: $err"; else bad "$name: rc $rc, '$err', want $reason"; fi
}
refuse "another device" wrong_audience "${A[@]}" --device door-2 "$h"
refuse "replay" seq_not_higher "${A[@]}" --device door-1 --last-seq 9 "$h"
refuse "expired" expired "${A[@]}" --device door-1 --now $((now + 300)) "$h"
refuse "not yet valid" not_yet_valid "${A[@]}" --device door-1 --now $((now - 301)) "$h"
refuse "unknown key id" unknown_kid --anchor "op-ed=$T/ed.pub" --device door-1 "$h"
refuse "alg not allowed for the key" alg_not_allowed --anchor "op-es=$T/ed.pub" --device door-1 "$h"
refuse "signed by another key" bad_signature --anchor "op-es=$T/other.pub" --device door-1 "$h"
mid=$(( ${#h} - 20 ))
c=${h:$mid:1}; [[ $c == 0 ]] && f=1 || f=0
refuse "tampered" bad_signature "${A[@]}" --device door-1 "${h:0:$mid}$f${h:$((mid + 1))}"
refuse "truncated" malformed "${A[@]}" --device door-1 "${h:0:$((${#h} - 2))}"
refuse "trailing bytes" trailing_bytes "${A[@]}" --device door-1 "${h}00"
h2=$($PEER sign --key "$T/es.pem" --kid op-es --device door-1 --seq 9 --command unlock \
     --iat "$now" --exp $((now + 300)) --shuffle)
refuse "keys out of order (validly signed)" not_deterministic "${A[@]}" --device door-1 "$h2"
h2=$($PEER sign --key "$T/es.pem" --kid op-es --device door-1 --seq 9 --command unlock \
     --iat "$now" --exp $((now + 300)) --duplicate)
refuse "duplicate key (validly signed)" duplicate_key "${A[@]}" --device door-1 "$h2"
big=$(head -c 1100 /dev/zero | od -v -An -tx1 | tr -d ' \n')
refuse "oversized" oversized "${A[@]}" --device door-1 "$big"

# binary in/out, inspect, help
"$M" cmd sign --key "$T/ed.pem" --kid op-ed --device door-1 --seq 4 --command reboot --out "$T/c.cose"
if out=$("$M" cmd verify "${A[@]}" --device door-1 --in "$T/c.cose") && [[ $out == "ok seq=4 kid=op-ed alg=EdDSA command=reboot" ]]; then
    ok "--out / --in: $out"
else bad "--out / --in: $out"; fi
if out=$("$M" cmd inspect --in "$T/c.cose") && [[ $out == *"command: reboot"* && $out == *"NOT VERIFIED"* ]]; then
    ok "inspect"
else bad "inspect: $out"; fi
chmod 644 "$T/es.pem"
rc=0; "$M" cmd sign --key "$T/es.pem" --kid x --device d --seq 1 --command c >/dev/null 2>&1 || rc=$?
if [[ $rc -eq 3 ]]; then ok "a group-readable private key is refused"; else bad "key mode: rc $rc"; fi
for c in sign verify inspect; do
    if [[ $("$M" cmd "$c" --help) == "usage: m2mguard cmd $c"* ]]; then ok "cmd $c --help"; else bad "cmd $c --help"; fi
done

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
