# SoftHSM2 tokens and operator keys for the signed-command tests; needs $tmp.
# new_token LABEL: a SoftHSM2 token in $tmp (user PIN 1234, PIN file $tmp/LABEL.pin 0600).
module=${M2MGUARD_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -f "$module" ] || { echo "SKIP: no SoftHSM2 module at $module"; exit 77; }
command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null ||
  { echo "SKIP: softhsm2-util / pkcs11-tool missing"; exit 77; }
new_token() {
  if [ ! -f "$tmp/softhsm2.conf" ]; then
    mkdir -m 700 "$tmp/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp" \
      > "$tmp/softhsm2.conf"
  fi
  export SOFTHSM2_CONF=$tmp/softhsm2.conf
  softhsm2-util --init-token --free --label "$1" --pin 1234 --so-pin 5678 > "$tmp/softhsm.log"
  (umask 077; printf '1234\n' > "$tmp/$1.pin")
}
p11() { pkcs11-tool --module "$module" "$@"; }

# es256_key NAME: an EC P-256 PEM key $tmp/NAME.key (0600) and its public key
# $tmp/NAME.pub (PEM); pubhex NAME prints 04||x||y as hex.
es256_key() {
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key" 2> /dev/null)
  openssl pkey -in "$tmp/$1.key" -pubout -out "$tmp/$1.pub" 2> /dev/null
}
pubhex() { openssl pkey -pubin -in "$tmp/$1.pub" -outform DER | tail -c 65 | od -An -v -tx1 | tr -d ' \n'; }
# token_key TOKEN LABEL ID: an EC P-256 key generated inside TOKEN (never
# extractable), its public key as $tmp/LABEL.pub; prints nothing.
token_key() {
  p11 --token-label "$1" --login --pin 1234 --keypairgen --key-type EC:prime256v1 --sensitive \
    --usage-sign --label "$2" --id "$3" > "$tmp/keygen-$2.log" 2>&1 || fail "keypairgen $2"
  p11 --token-label "$1" --read-object --type pubkey --id "$3" -o "$tmp/$2.pub.der" > /dev/null 2>&1
  openssl pkey -pubin -inform DER -in "$tmp/$2.pub.der" -out "$tmp/$2.pub"
}
token_uri() { echo "pkcs11:token=$1;object=$2;type=private?pin-source=$tmp/$1.pin&module-path=$module"; }

# inject_cmd DEVICE HEXPACKET: submits a secured command packet (sms pack) to
# DEVICE's number from the gateway's number through the SMSC, as the gateway
# would: one SM (UDH 70 00) or concatenated SMs (TS 23.040 IEI 00; the 70 00
# command-packet IE in the first segment only, TS 31.115). Needs the gateway
# test library (inject, gateway_number).
inject_cmd() {
  local msisdn=$1 hex=$2 ref=$(( RANDOM % 256 ))
  local n=$(( ${#hex} / 2 ))
  if [ "$n" -le 137 ]; then inject --from "$gateway_number" --to "$msisdn" "027000$hex"; return; fi
  local parts=$(( 1 + (n - 132 + 133) / 134 )) off=0 seq=1 len
  while [ "$off" -lt "$n" ]; do
    if [ "$seq" -eq 1 ]; then len=132; else len=134; fi
    [ $((off + len)) -le "$n" ] || len=$((n - off))
    local udh
    if [ "$seq" -eq 1 ]; then
      udh=$(printf '070003%02x%02x%02x7000' "$ref" "$parts" "$seq")
    else
      udh=$(printf '050003%02x%02x%02x' "$ref" "$parts" "$seq")
    fi
    inject --from "$gateway_number" --to "$msisdn" "$udh${hex:$((off * 2)):$((len * 2))}"
    off=$((off + len)); seq=$((seq + 1))
  done
}
# pack_for NAME CNTR DATAHEX: a secured command packet for device NAME (its
# keys from its .prov), counter CNTR (decimal), PoR requested, ciphered.
pack_for() {
  local prov=${PROV_DIR:-$M2MGUARD_HOME/devices}/$1.prov
  local kic kid tar
  kic=$(sed -n 's/^kic=//p' "$prov"); kid=$(sed -n 's/^kid=//p' "$prov"); tar=$(sed -n 's/^tar=//p' "$prov")
  "$bin" sms pack --spi 1639 --kic 12 --kid 12 --tar "$tar" --cntr "$(printf '%010x' "$2")" \
    --kic-key "$kic" --kid-key "$kid" "$3"
}
# wait_cond SECONDS 'SHELL CONDITION': polls the condition (evaluated anew each
# time, unlike wait_for's arguments) every 0.1 s until it holds.
wait_cond() {
  local end=$(( $(date +%s) + $1 ))
  until eval "$2" > /dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
