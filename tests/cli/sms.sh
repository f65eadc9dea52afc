#!/usr/bin/env bash
# `m2mguard sms pack|unpack|por-pack|por-unpack`: exact outputs and exit codes.
# Vectors: osmocom pySim tests/unittests/test_ota.py (sysmoISIM-SJA5 sample cards).
set -euo pipefail
bin=$1
pass=0
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME WANT GOT
  [ "$2" == "$3" ] || fail "$1: want '$2' got '$3'"
  pass=$((pass + 1))
}
expect_rc() { # expect_rc NAME WANT_RC cmd...
  local name=$1 want=$2; shift 2
  set +e; "$@" >/dev/null 2>&1; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want"
  pass=$((pass + 1))
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

AES_KIC=200102030405060708090a0b0c0d0e0f
AES_KID=201102030405060708090a0b0c0d0e0f
AES_CMD=00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058
AES_POR=027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f

# pack reproduces the card-validated AES-128 vector
got=$("$bin" sms pack --spi 0619 --kic 22 --kid 22 --tar b00011 --cntr 0000000000 \
      --kic-key $AES_KIC --kid-key $AES_KID 00a40004023f00)
expect "pack AES vector" "$AES_CMD" "$got"

# unpack with the open MSL (the vector uses no counter)
got=$("$bin" sms unpack --msl none --kic-key $AES_KIC --kid-key $AES_KID --json $AES_CMD)
expect "unpack AES vector json" \
  '{"spi":"0619","kic":"22","kid":"22","tar":"b00011","cntr":"0000000000","pcntr":11,"data":"00a40004023f00","status":"por_ok"}' "$got"
got=$("$bin" sms unpack --msl none --kic-key $AES_KIC --kid-key $AES_KID $AES_CMD | grep '^data:')
expect "unpack AES vector text" "data: 00a40004023f00" "$got"

# the profile's MSL refuses it: no counter
set +e
err=$("$bin" sms unpack --kic-key $AES_KIC --kid-key $AES_KID $AES_CMD 2>&1 >/dev/null); rc=$?
set -e
expect "unpack MSL rc" 1 $rc
expect "unpack MSL status" "insufficient_security_level" "${err%%:*}"

# profile packet: counter must be higher
PKT=$("$bin" sms pack --spi 1639 --kic 12 --kid 12 --tar 4d4701 --cntr 0000000005 \
      --kic-key $AES_KIC --kid-key $AES_KID 756e6c6f636b)
got=$("$bin" sms unpack --kic-key $AES_KIC --kid-key $AES_KID --last-cntr 0000000004 $PKT | grep '^data:')
expect "profile unpack" "data: 756e6c6f636b" "$got"
set +e
err=$("$bin" sms unpack --kic-key $AES_KIC --kid-key $AES_KID --last-cntr 0000000005 $PKT 2>&1 >/dev/null); rc=$?
set -e
expect "replay rc" 1 $rc
expect "replay status" "cntr_low" "${err%%:*}"
# tampered: flip one bit of the last octet
last=${PKT: -2}; flipped=$(printf '%02x' $(( 0x$last ^ 1 )))
set +e
err=$("$bin" sms unpack --kic-key $AES_KIC --kid-key $AES_KID ${PKT:0:-2}$flipped 2>&1 >/dev/null); rc=$?
set -e
expect "tamper rc" 1 $rc
expect "tamper status" "rc_cc_ds_failed" "${err%%:*}"
# JSON on failure carries the status too
set +e
got=$("$bin" sms unpack --json --kic-key $AES_KIC --kid-key $AES_KID ${PKT:0:-2}$flipped 2>/dev/null)
set -e
expect "tamper json" '{"status":"rc_cc_ds_failed","error":"rc_cc_ds_failed"}' "$got"

# key files: 0600 accepted, 0644 refused
printf '%s\n' $AES_KIC > "$tmp/kic"; printf '%s\n' $AES_KID > "$tmp/kid"
chmod 600 "$tmp/kic" "$tmp/kid"
got=$("$bin" sms unpack --kic-key-file "$tmp/kic" --kid-key-file "$tmp/kid" --last-cntr 0000000004 $PKT | grep '^cntr:')
expect "key files" "cntr: 0000000005" "$got"
chmod 644 "$tmp/kid"
expect_rc "key file 0644 refused" 3 "$bin" sms unpack --kic-key-file "$tmp/kic" --kid-key-file "$tmp/kid" $PKT

# key defects of issue 9: each has its own message and the README's exit code
expect_err() { # expect_err NAME WANT_RC STDERR_SUBSTRING cmd...
  local name=$1 want=$2 sub=$3; shift 3
  set +e; local err; err=$("$@" 2>&1 >/dev/null); local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want (stderr: $err)"
  [[ $err == *"$sub"* ]] || fail "$name: stderr '$err' lacks '$sub'"
  [[ $err != *"$AES_KIC"* && $err != *"$AES_KID"* ]] || fail "$name: a key in the message"
  pass=$((pass + 1))
}
UNPACK=("$bin" sms unpack --last-cntr 0000000004)
expect_err "key file mode named" 3 "$tmp/kid has mode 0644, must be 0600 (chmod 600 $tmp/kid)" \
  "${UNPACK[@]}" --kic-key-file "$tmp/kic" --kid-key-file "$tmp/kid" $PKT
chmod 600 "$tmp/kid"
expect_err "empty --kic-key" 2 "--kic-key: empty key" "${UNPACK[@]}" --kic-key "" --kid-key $AES_KID $PKT
expect_err "empty --kid-key" 2 "--kid-key: empty key" "${UNPACK[@]}" --kic-key $AES_KIC --kid-key "" $PKT
: > "$tmp/empty"; chmod 600 "$tmp/empty"
expect_err "empty key file" 3 "--kic-key-file: $tmp/empty is empty" \
  "${UNPACK[@]}" --kic-key-file "$tmp/empty" --kid-key $AES_KID $PKT
printf '  \n\n' > "$tmp/blank"; chmod 600 "$tmp/blank"
expect_err "blank key file" 3 "$tmp/blank holds no hex digits" \
  "${UNPACK[@]}" --kic-key-file "$tmp/blank" --kid-key $AES_KID $PKT
expect_err "missing key file" 3 "--kid-key-file: cannot open $tmp/nope" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key-file "$tmp/nope" $PKT
if [ "$(id -u)" -ne 0 ]; then # root reads a mode-000 file anyway
  cp "$tmp/kid" "$tmp/kid000"; chmod 000 "$tmp/kid000"
  expect_err "unreadable key file" 3 "cannot open $tmp/kid000" \
    "${UNPACK[@]}" --kic-key $AES_KIC --kid-key-file "$tmp/kid000" $PKT
fi
ln -s "$tmp/kid" "$tmp/kidlink"
expect_err "symlinked key file" 3 "$tmp/kidlink is a symbolic link" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key-file "$tmp/kidlink" $PKT
printf '%s\n' "${AES_KID:0:30}zz" > "$tmp/badhex"; chmod 600 "$tmp/badhex"
expect_err "not hex key file" 3 "$tmp/badhex holds a character that is not a hex digit" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key-file "$tmp/badhex" $PKT
expect_err "not hex --kid-key" 2 "--kid-key: not a hex key" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key "${AES_KID:0:30}zz" $PKT
expect_err "odd --kid-key" 2 "--kid-key: odd number of hex digits" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key "${AES_KID:0:31}" $PKT
expect_err "--kic-key and --kic-key-file" 2 "both --kic-key and --kic-key-file given" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kic-key-file "$tmp/kic" --kid-key $AES_KID $PKT
expect_err "--kid-key-file and --kid-key" 2 "both --kid-key and --kid-key-file given" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kid-key-file "$tmp/kid" --kid-key $AES_KID $PKT
expect_err "--kic-key twice" 2 "--kic-key given twice" \
  "${UNPACK[@]}" --kic-key $AES_KIC --kic-key $AES_KIC --kid-key $AES_KID $PKT
# upper-case hex keys are the same keys
got=$("${UNPACK[@]}" --kic-key "${AES_KIC^^}" --kid-key "${AES_KID^^}" $PKT | grep '^cntr:')
expect "upper-case keys" "cntr: 0000000005" "$got"

# PoR: open the card's AES PoR, and build it again byte-exact
got=$("$bin" sms por-unpack --spi 0619 --kic 22 --kid 22 --kic-key $AES_KIC --kid-key $AES_KID --json $AES_POR)
expect "por-unpack AES vector" '{"tar":"b00011","cntr":"0000000000","pcntr":14,"status":"por_ok","data":"016132"}' "$got"
got=$("$bin" sms por-pack --spi 0619 --kic 22 --kid 22 --tar b00011 --cntr 0000000000 --status por_ok \
      --kic-key $AES_KIC --kid-key $AES_KID 016132)
expect "por-pack AES vector" "$AES_POR" "$got"
# 3DES PoR with CC only (card 8988211000000467285), status by hex
got=$("$bin" sms por-unpack --spi 0209 --kic 35 --kid 35 --kid-key 12110c78e678c25408233076aa033615 \
      027100001612b000110000000000000055f47118381175fb01612f 2>/dev/null | grep '^status:')
expect "por-unpack 3DES" "status: por_ok" "$got"
got=$("$bin" sms por-pack --spi 0201 --kic 00 --kid 00 --tar b00011 --cntr 0000000000 --status 0a)
expect "por-pack plain status 0a" "027100""000b""0a""b00011""0000000000""00""0a" "$got"
expect_rc "por-unpack tampered" 1 "$bin" sms por-unpack --spi 0209 --kic 35 --kid 35 \
  --kid-key 12110c78e678c25408233076aa033615 027100001612b000110000000000000055f47118381175fb02612f

# the example in README.md stays true
got=$("$bin" sms pack --spi 1639 --kic 12 --kid 12 --tar 4d4701 --cntr 0000000005 \
      --kic-key 000102030405060708090a0b0c0d0e0f --kid-key f0e0d0c0b0a090807060504030201000 756e6c6f636b)
expect "README example" 002815163912124d47019397160cedf51c11a9e2dfd7a0c4916e1a91e9a9a3e96472b8cc0f1e23f0b8b3 "$got"
grep -q "$got" "${MG_SOURCE_DIR:-$(dirname "$0")/../..}/README.md" || fail "README example packet not in README.md"
pass=$((pass + 1))

# usage errors
expect_rc "missing --spi" 2 "$bin" sms pack --kic 12 --kid 12 --tar 000000 --cntr 0000000001 00
expect_rc "odd hex" 3 "$bin" sms pack --spi 0000 --kic 12 --kid 12 --tar 000000 --cntr 0000000001 0
expect_rc "bad option" 2 "$bin" sms unpack --bogus 00
expect_rc "status not for pack" 2 "$bin" sms pack --status por_ok --spi 0000 --kic 12 --kid 12 --tar 000000 --cntr 0000000001 00
expect_rc "help" 0 "$bin" sms pack --help
expect_rc "help sms" 0 "$bin" sms --help
expect_rc "unknown sms command" 2 "$bin" sms frobnicate
expect_rc "truncated" 1 "$bin" sms unpack --msl none 0028150619

echo "cli sms: $pass passed, 0 failed"
