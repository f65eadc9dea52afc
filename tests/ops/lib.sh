# Shared by the operations tests (tests/ops, issue 15 item 5): the gateway
# tests' helpers (real SMSC peer, working directory, processes stopped by PID)
# and a device whose genuine packets the test builds with `m2mguard sms pack`.
# shellcheck source=../gateway/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/lib.sh"

# new_device NAME MSISDN: registers it; sets dev, kic, kid (its packets: TAR 4d4700).
new_device() {
  "$bin" device add "$1" --msisdn "$2" > /dev/null
  local prov=$M2MGUARD_HOME/devices/$1.prov
  dev=$2
  kic=$(sed -n 's/^kic=//p' "$prov"); kid=$(sed -n 's/^kid=//p' "$prov")
}
# send_genuine CNTR TEXT: one secured SMS of the device with counter CNTR (decimal).
send_genuine() {
  local pkt
  pkt=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr "$(printf '%010x' "$1")" \
    --kic-key "$kic" --kid-key "$kid" "$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n')") || fail "sms pack"
  inject --from "$dev" --to "$gateway_number" "027000$pkt" || fail "inject"
}
# send_forged: one SMS from the device under a wrong key (auth_fail).
send_forged() {
  local pkt
  pkt=$("$bin" sms pack --spi 1600 --kic 12 --kid 12 --tar 4d4700 --cntr 00000000ff \
    --kic-key 00112233445566778899aabbccddeeff --kid-key 00112233445566778899aabbccddeeff 6f6f) || fail "sms pack"
  inject --from "$dev" --to "$gateway_number" "027000$pkt" || fail "inject"
}
# scrape FILE: GET /metrics into FILE.
scrape() { curl -fsS --max-time 5 "http://127.0.0.1:$mport/metrics" > "$1"; }
# metric FILE NAME: the value of the sample NAME (with its labels), else 0.
metric() { awk -v n="$2" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }' "$1"; }
