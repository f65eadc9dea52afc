#!/bin/bash
# The AT-modem bearer when the modem misbehaves (simulated; see README.md):
#   - a tty on which nobody answers: each init command times out after 5 s
#     and the init starts again; the bearer never claims to be ready;
#   - the serial line hangs up under a ready bearer (socat killed): the
#     bearer reports the loss (on_state false) instead of crashing or spinning.
# usage: modem_fault.sh M2MGUARD_BINARY MODEM_DRIVE_BINARY
drive=${2:?usage: modem_fault.sh M2MGUARD_BINARY MODEM_DRIVE_BINARY}
command -v socat >/dev/null || { echo "SKIP: socat is not installed (tools/debian-packages.txt)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
# shellcheck source=../gateway/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/lib.sh" "$1"

port=$(free_port)
password=mdmtest1
start_smsc

pty_pair() { # pty_pair N: sets socat_pid
  socat -d -d "pty,raw,echo=0,link=$tmp/ttyM$1" "pty,raw,echo=0,link=$tmp/ttyD$1" 2> "$tmp/socat$1.log" &
  socat_pid=$!
  pids+=("$socat_pid")
  wait_for 5 test -e "$tmp/ttyM$1" -a -e "$tmp/ttyD$1" || fail "socat pty pair $1"
}

# 1. silent modem
pty_pair 1
"$drive" --tty "$tmp/ttyD1" --expect 1 --timeout 8 > "$tmp/drive1.out" 2> "$tmp/drive1.log" &
d1=$!; pids+=("$d1")
if wait "$d1"; then fail "driver 1 succeeded without a modem"; fi
grep -q 'init again: AT: no answer' "$tmp/drive1.log" || fail "no init time-out reported"
grep -q '^ready' "$tmp/drive1.out" && fail "ready without a modem"
ok "silent modem: AT timed out after 5 s, init retried, never ready"

# 2. hang-up of a ready modem
pty_pair 2
node "$src/tests/modem/modem-sim.js" --tty "$tmp/ttyM2" --smsc "127.0.0.1:$port" \
  --msisdn +4915400000001 --password "$password" > "$tmp/sim2.out" 2> "$tmp/sim2.log" &
pids+=("$!")
wait_for 10 grep -q '^ready' "$tmp/sim2.out" || fail "modem simulator did not start"
"$drive" --tty "$tmp/ttyD2" --expect 1 --timeout 15 > "$tmp/drive2.out" 2> "$tmp/drive2.log" &
d2=$!; pids+=("$d2")
wait_for 10 grep -q '^ready' "$tmp/drive2.out" || fail "bearer not initialised"
kill "$socat_pid"
start=$SECONDS
if wait "$d2"; then fail "driver 2 succeeded after the hang-up"; fi
[ $((SECONDS - start)) -le 3 ] || fail "loss noticed only after $((SECONDS - start)) s"
grep -q 'not ready (hang-up' "$tmp/drive2.log" || fail "no hang-up reported: $(tail -n 3 "$tmp/drive2.log")"
grep -q 'lost 1' "$tmp/drive2.log" || fail "on_state(false) not called once"
ok "hang-up of the serial line reported at once (on_state false), no crash"
echo "PASS: $pass checks in $SECONDS s"
