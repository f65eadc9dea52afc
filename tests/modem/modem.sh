#!/bin/bash
# The AT-modem bearer (src/agent/modem.c, driven by modem_drive) against two
# simulated modems (modem-sim.js, standing in for hardware; see README.md) on
# socat pty pairs, routed through the real SMSC peer tests/smsc/smsc.js:
#   - 3 SMS injected by a plain SMPP ESME (`m2mguard agent inject`) reach
#     modem 1 byte-exact (UD of 4, 43 and 140 octets);
#   - modem 1 sends 5 SMS to modem 2 and modem 2 sends 10 to modem 1 (more
#     than the bearer's queue of 8), all UDHI + binary, compared byte-exact;
#   - modem 1's simulator emits lines to ignore (--noise): a >512-octet line,
#     broken +CMT headers/PDUs, an SMS-SUBMIT as +CMT; none may surface.
# usage: modem.sh M2MGUARD_BINARY MODEM_DRIVE_BINARY
drive=${2:?usage: modem.sh M2MGUARD_BINARY MODEM_DRIVE_BINARY}
command -v socat >/dev/null || { echo "SKIP: socat is not installed (tools/debian-packages.txt)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
# shellcheck source=../gateway/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/lib.sh" "$1"

n1=+4915400000001
n2=+4915400000002
n3=+4915400009999 # the plain ESME
port=$(free_port)
password=mdmtest1 # SMPP: at most 8 characters
start_smsc

# start_modem N MSISDN [sim options]: pty pair N and a simulator on its M end.
start_modem() {
  local n=$1 msisdn=$2; shift 2
  socat -d -d "pty,raw,echo=0,link=$tmp/ttyM$n" "pty,raw,echo=0,link=$tmp/ttyD$n" 2> "$tmp/socat$n.log" &
  pids+=("$!")
  wait_for 5 test -e "$tmp/ttyM$n" -a -e "$tmp/ttyD$n" || fail "socat pty pair $n"
  node "$src/tests/modem/modem-sim.js" --tty "$tmp/ttyM$n" --smsc "127.0.0.1:$port" \
    --msisdn "$msisdn" --password "$password" "$@" > "$tmp/sim$n.out" 2> "$tmp/sim$n.log" &
  pids+=("$!")
  wait_for 10 grep -q '^ready' "$tmp/sim$n.out" || fail "modem simulator $n did not start"
}
start_modem 1 "$n1" --noise
start_modem 2 "$n2"
ok "SMSC, two pty pairs and two simulated modems up"

"$drive" --tty "$tmp/ttyD1" --to "$n2" --send 5 --expect 13 --timeout 25 > "$tmp/drive1.out" 2> "$tmp/drive1.log" &
d1=$!; pids+=("$d1")
"$drive" --tty "$tmp/ttyD2" --to "$n1" --send 10 --expect 5 --timeout 25 > "$tmp/drive2.out" 2> "$tmp/drive2.log" &
d2=$!; pids+=("$d2")
wait_for 15 grep -q '^ready' "$tmp/drive1.out" || fail "bearer 1 not initialised"
wait_for 15 grep -q '^ready' "$tmp/drive2.out" || fail "bearer 2 not initialised"
ok "both bearers initialised (AT, ATE0, AT+CMEE=1, AT+CMGF=0, AT+CNMI=2,2,0,0,0)"

injected=()
for len in 1 40 137; do
  ud=027000$(python3 -c "import os; print(os.urandom($len).hex().upper())")
  M2MGUARD_SMSC_PASSWORD=$password "$bin" agent inject --smsc "127.0.0.1:$port" --from "$n3" --to "$n1" "$ud" \
    >> "$tmp/inject.log" 2>&1 || fail "inject refused (rc $?): $(tail -n 3 "$tmp/inject.log")"
  injected+=("$ud")
done
ok "3 SMS injected by a plain SMPP ESME for $n1"

wait "$d1" || fail "driver 1 failed"
wait "$d2" || fail "driver 2 failed"

# rx lines: rx OA UDHI PID DCS UD
rx_from() { awk -v oa="$2" '$1 == "rx" && $2 == oa {print $3, $4, $5, $6}' "$tmp/$1.out" | sort; }
tx_of() { awk '$1 == "tx" {print "1 00 04", $3}' "$tmp/$1.out" | sort; }

[ "$(grep -c '^sent [0-9]* ok [0-9]' "$tmp/drive1.out")" = 5 ] || fail "driver 1: not 5 x +CMGS: <mr> OK"
[ "$(grep -c '^sent [0-9]* ok [0-9]' "$tmp/drive2.out")" = 10 ] || fail "driver 2: not 10 x +CMGS: <mr> OK"
ok "15 AT+CMGS answered +CMGS: <mr> / OK"
grep -q '^queue-full [1-9]' "$tmp/drive2.out" || fail "driver 2 never saw the queue (8) full"
ok "queue bounded at 8 (MG_ERR_BUF seen, everything still sent)"

diff <(tx_of drive1) <(rx_from drive2 "$n1") > "$tmp/diff.log" || fail "1 -> 2 not byte-exact: $(cat "$tmp/diff.log")"
ok "5 SMS modem 1 -> modem 2 byte-exact (UDHI, PID 00, DCS 04)"
diff <(tx_of drive2) <(rx_from drive1 "$n2") > "$tmp/diff.log" || fail "2 -> 1 not byte-exact: $(cat "$tmp/diff.log")"
ok "10 SMS modem 2 -> modem 1 byte-exact"
diff <(printf '1 00 04 %s\n' "${injected[@]}" | sort) <(rx_from drive1 "$n3") > "$tmp/diff.log" ||
  fail "ESME -> modem 1 not byte-exact: $(cat "$tmp/diff.log")"
ok "3 SMS ESME -> modem 1 byte-exact (UD of 4, 43 and 140 octets)"

[ "$(grep -c '^rx ' "$tmp/drive1.out")" = 13 ] || fail "driver 1 received other SMS than the 13 sent"
for msg in 'line longer than 512 octets discarded' '+CMT ignored: no PDU line' \
           '+CMT ignored: <length> differs' '+CMT ignored: not an SMS-DELIVER' 'unparseable +CMT header'; do
  grep -qF "$msg" "$tmp/drive1.log" || fail "bearer 1 did not report: $msg"
done
ok "noise from the modem (long line, broken +CMT) ignored and reported"
inter=$(cat "$tmp/sim1.log" "$tmp/sim2.log" | grep -c 'while AT+CMGS waits' || true)
echo "info: $inter +CMT interleaved between AT+CMGS and its result"
echo "PASS: $pass checks in $SECONDS s"
