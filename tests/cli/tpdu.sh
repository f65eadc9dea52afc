#!/usr/bin/env bash
# CLI tests of `m2mguard sms tpdu decode|encode` (3GPP TS 23.040, 27.005).
# $1: the m2mguard binary. Vectors name their source.
set -euo pipefail
M=$1
fail=0

# expect NAME WANT_RC WANT_STDOUT -- ARGS...
expect() {
    local name=$1 want_rc=$2 want_out=$3
    shift 4
    local out rc=0
    out=$("$M" "$@" 2>/tmp/mg_tpdu_err.$$) || rc=$?
    if [[ $rc -ne $want_rc ]]; then
        echo "FAIL $name: exit $rc, want $want_rc; stderr: $(cat /tmp/mg_tpdu_err.$$)"
        fail=1
    elif [[ -n $want_out && $out != "$want_out" ]]; then
        echo "FAIL $name: output"
        diff <(echo "$want_out") <(echo "$out") || true
        fail=1
    else
        echo "ok   $name"
    fi
}
# expect_err NAME WANT_RC STDERR_SUBSTRING -- ARGS...
expect_err() {
    local name=$1 want_rc=$2 want_err=$3
    shift 4
    local rc=0
    "$M" "$@" >/dev/null 2>/tmp/mg_tpdu_err.$$ || rc=$?
    local err
    err=$(cat /tmp/mg_tpdu_err.$$)
    if [[ $rc -ne $want_rc || $err != *"$want_err"* || $(wc -l </tmp/mg_tpdu_err.$$) -ne 1 ]]; then
        echo "FAIL $name: exit $rc (want $want_rc), stderr: $err"
        fail=1
    else
        echo "ok   $name"
    fi
}
trap 'rm -f /tmp/mg_tpdu_err.$$' EXIT

# osmocom/pysim tests/unittests/test_ota.py '3DES-SJA5-CIPHERED-CC' encoded_tpdu,
# with TP-UDL corrected from 03 to 25 (pysim counts only the UDH).
OTA_CMD=00201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f
OTA_FIXED=400881214365877ff62270520000000025027000$OTA_CMD
OTA_PUB=400881214365877ff62270520000000003027000$OTA_CMD

expect "decode pysim OTA deliver (human)" 0 "type: sms-deliver
mti: 0
mms: 0
lp: 0
sri: 0
udhi: 1
rp: 0
oa: 12345678
ton: 0
npi: 1
pid: 7f
dcs: f6
alphabet: 8bit
scts: 2022-07-25T00:00:00+00:00
udl: 37
udh: iei=70 data=
ud: $OTA_CMD" -- sms tpdu decode "$OTA_FIXED"

expect "decode pysim OTA deliver (json)" 0 '{"type":"sms-deliver","mti":0,"mms":false,"lp":false,"sri":false,"udhi":true,"rp":false,"oa":"12345678","ton":0,"npi":1,"pid":"7f","dcs":"f6","alphabet":"8bit","scts":"2022-07-25T00:00:00+00:00","udl":37,"udh":[{"iei":"70","data":""}],"ud":"'$OTA_CMD'"}' \
    -- sms tpdu decode --json "$OTA_FIXED"

expect_err "decode pysim OTA deliver as published (UDL 03)" 3 "TP-UD: bad_length" \
    -- sms tpdu decode "$OTA_PUB"

expect "encode pysim OTA deliver" 0 "$OTA_FIXED" \
    -- sms tpdu encode --type deliver --oa 12345678 --pid 7f --dcs f6 --scts 22705200000000 --udh 027000 "$OTA_CMD"

# Dreamfabric "SMS messages and the PDU format" (mirror subnets.ru/saved/sms_pdu_format.html)
expect "decode dreamfabric submit, PDU mode" 0 '{"smsc":null,"cmgs_length":23,"type":"sms-submit","mti":1,"rd":false,"vpf":"relative","srr":false,"udhi":false,"rp":false,"mr":0,"da":"+46708251358","ton":1,"npi":1,"pid":"00","dcs":"00","alphabet":"gsm7","vp":"aa","udl":10,"udh":[],"ud":"e8329bfd4697d9ec37"}' \
    -- sms tpdu decode --json --pdu-mode 0011000B916407281553F80000AA0AE8329BFD4697D9EC37
expect "decode dreamfabric deliver, PDU mode" 0 "smsc: +27381000015
cmgs_length: 28
type: sms-deliver
mti: 0
mms: 1
lp: 0
sri: 0
udhi: 0
rp: 0
oa: 27838890001
ton: 4
npi: 8
pid: 00
dcs: 00
alphabet: gsm7
scts: 1999-03-29T15:16:59+02:00
udl: 10
ud: e8329bfd4697d9ec37" \
    -- sms tpdu decode --pdu-mode 07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37

# osmocom/pysim tests/unittests/test_sms.py Test_DELIVER: alphanumeric OA
expect "decode pysim deliver, alphanumeric OA" 0 '{"type":"sms-deliver","mti":0,"mms":true,"lp":false,"sri":false,"udhi":false,"rp":false,"oa":"ekit","ton":5,"npi":0,"pid":"7f","dcs":"f6","alphabet":"8bit","scts":"2009-07-09T03:57:31+00:00","udl":8,"udh":[],"ud":"24010101bb400101"}' \
    -- sms tpdu decode --json 0408D0E5759A0E7FF6907090307513000824010101BB400101

# 9cbs.com "SMS PDU mode ... length calculation": SMSC +491710760000, DCS F6, "hello"
expect "encode 9cbs submit, PDU mode with SMSC" 0 079194710167000011000781214365f700f6aa0568656c6c6f \
    -- sms tpdu encode --type submit --da 1234567 --dcs f6 --vp-rel 170 --pdu-mode --smsc +491710760000 68656c6c6f

expect "encode submit defaults (PID 00, DCS 04), SRR, MR" 0 2105048121430004022a2b \
    -- sms tpdu encode --type submit --da 1234 --srr --mr 5 2a2b
expect "encode submit, default SMSC prefix" 0 0001000b916407281553f80004026869 \
    -- sms tpdu encode --type submit --da +46708251358 --pdu-mode 6869

# errors: input -> 3, command line -> 2
expect_err "odd hex" 3 "odd number of hex digits" -- sms tpdu decode 001
expect_err "not hex" 3 "not a hex digit" -- sms tpdu decode 0g
expect_err "truncated TPDU" 3 "TP-OA: truncated" -- sms tpdu decode 0011
expect_err "MTI 2" 3 "first octet: unsupported" -- sms tpdu decode 02
# An out-of-range or non-BCD TP-SCTS does not hide the message (issue 9): the
# rest is decoded, the field flagged, a warning printed, exit 0.
expect_err "bad SCTS warned" 0 "TP-SCTS is not a valid time stamp (month 13 out of range 1..12)" \
    -- sms tpdu decode 000481214300042231520000000000
expect "bad SCTS month 13 (json)" 0 '{"type":"sms-deliver","mti":0,"mms":false,"lp":false,"sri":false,"udhi":false,"rp":false,"oa":"1234","ton":0,"npi":1,"pid":"00","dcs":"04","alphabet":"8bit","scts":null,"scts_raw":"22315200000000","scts_error":"month 13 out of range 1..12","udl":0,"udh":[],"ud":""}' \
    -- sms tpdu decode --json 000481214300042231520000000000
expect "bad SCTS non-BCD (text)" 0 "$(printf '%s\n' 'type: sms-deliver' 'mti: 0' 'mms: 0' 'lp: 0' 'sri: 0' 'udhi: 0' 'rp: 0' 'oa: 1234' 'ton: 0' 'npi: 1' 'pid: 00' 'dcs: 04' 'alphabet: 8bit' 'scts: invalid (year: not BCD (octet ff)), raw ffffffffffffff' 'udl: 1' 'ud: 42')" \
    -- sms tpdu decode 00048121430004ffffffffffffff0142
expect_err "bad PDU-mode SMSC" 3 "SMSC" -- sms tpdu decode --pdu-mode 0c91
expect_err "bad UDH" 3 "--udh: malformed" -- sms tpdu encode --type submit --da 1 --udh 0370 00
expect_err "UD_HEX too long" 3 "UD_HEX: too long" -- sms tpdu encode --type submit --da 1 "$(printf '00%.0s' $(seq 141))"
expect_err "UDH + UD too long" 3 "user data too long" -- sms tpdu encode --type submit --da 1 --udh 027000 "$(printf '00%.0s' $(seq 138))"
expect_err "no type" 2 "--type is required" -- sms tpdu encode --da 1 00
expect_err "submit with --oa" 2 "--type submit needs --da" -- sms tpdu encode --type submit --oa 1 00
expect_err "deliver without scts" 2 "needs --scts" -- sms tpdu encode --type deliver --oa 1 00
expect_err "7-bit DCS" 2 "GSM 7-bit" -- sms tpdu encode --type submit --da 1 --dcs 00 00
expect_err "bad address" 2 "--da" -- sms tpdu encode --type submit --da +12x 00
expect_err "mr out of range" 2 "--mr" -- sms tpdu encode --type submit --da 1 --mr 256 00
expect_err "unknown option" 2 "unknown option" -- sms tpdu decode --bogus 00
expect_err "two arguments" 2 "exactly one" -- sms tpdu decode 00 00
expect_err "smsc without pdu-mode" 2 "--smsc needs --pdu-mode" -- sms tpdu encode --type submit --da 1 --smsc +1 00

# --help prints the usage on stdout and exits 0
for sub in decode encode; do
    rc=0
    out=$("$M" sms tpdu $sub --help) || rc=$?
    if [[ $rc -ne 0 || $out != "usage: m2mguard sms tpdu $sub "* ]]; then
        echo "FAIL $sub --help"
        fail=1
    else
        echo "ok   $sub --help"
    fi
done

exit $fail
