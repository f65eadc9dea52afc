#!/usr/bin/env bash
# Crash tests of the A/B update (issue 14): the agent is killed (SIGKILL, by
# the test hook M2MGUARD_UPDATE_CRASH) during the download, after the image
# is verified but before the switch, and right after the switch write. Each
# restart boots a complete image (the old one, or the complete new one;
# never a half image: every boot line's SHA-256 is one of the images'), and
# the update completes (the pusher pushes again after "interrupted", or gets
# the late update_ok).
source "$(dirname "$0")/lib.sh"
suit_class=meter-v2
suit_setup "$suit_class" c-1
start_broker
start_agent c-1
wait_for 20 connected c-1 || fail "c-1 did not connect"
for v in 1 2 3 4; do head -c $((60000 + v * 20000)) /dev/urandom > "$tmp/v$v.bin"; create $v "$tmp/v$v.bin" "$tmp/v$v.suit"; done
push "$tmp/v1.suit" "$tmp/v1.bin" c-1
[ $push_rc -eq 0 ] && booted c-1 "$tmp/v1.bin" || fail "v1: $push_out"
ok "baseline: c-1 runs v1 (seq 1)"

# restart_agent [ENV=VAL]: stops (already dead) and starts c-1 again
restart_agent() { wait "$agent_pid" 2>/dev/null || true; start_agent c-1 "$@"; }
# push_bg ENVELOPE IMAGE: push in the background, output in $tmp/bg.out
push_bg() {
  "$bin" update push c-1 "$1" --image "$2" --mqtt "127.0.0.1:$mport" --cafile "$chain" \
    --cert "$tmp/ota.crt" --key "$tmp/ota.key" --client-id ota --timeout 60 > "$tmp/bg.out" 2>> "$tmp/push.log" &
  push_pid=$!
  pids+=("$push_pid")
}
push_wait() { set +e; wait "$push_pid"; push_rc=$?; set -e; cat "$tmp/bg.out" >> "$tmp/push.log"; }

# 1. SIGKILL during the download (after 50000 of 100000 octets)
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
c=$(count_lines "$tmp/c-1.log" "connected to")
start_agent c-1 M2MGUARD_UPDATE_CRASH=download:50000
wait_for 20 connected c-1 $((c + 1)) || fail "c-1 did not reconnect"
push_bg "$tmp/v2.suit" "$tmp/v2.bin"
wait_for 30 grep -q "update crash hook at download" "$tmp/c-1.log" || fail "download crash hook not reached"
restart_agent
wait_for 20 connected c-1 $((c + 2)) || fail "c-1 did not come back"
booted c-1 "$tmp/v1.bin" || fail "after a crash during the download c-1 does not boot v1"
push_wait
[ $push_rc -eq 0 ] && grep -q "^c-1 update_ok 2$" "$tmp/bg.out" || fail "v2 after the crash: $(cat "$tmp/bg.out")"
grep -q "download interrupted (device restart): pushing again" "$tmp/push.log" || fail "not re-pushed"
booted c-1 "$tmp/v2.bin" || fail "c-1 does not boot v2"
ok "SIGKILL during the download: restart boots v1 (old, complete), the update is re-pushed and completes (v2)"

# 2. SIGKILL after VERIFIED, before the switch
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
c=$(count_lines "$tmp/c-1.log" "connected to")
start_agent c-1 M2MGUARD_UPDATE_CRASH=verified
wait_for 20 connected c-1 $((c + 1)) || fail "c-1 did not reconnect"
push_bg "$tmp/v3.suit" "$tmp/v3.bin"
wait_for 30 grep -q "update crash hook at verified" "$tmp/c-1.log" || fail "verified crash hook not reached"
restart_agent
wait_for 20 connected c-1 $((c + 2)) || fail "c-1 did not come back"
grep -q "a verified image waits in the inactive slot: switching" "$tmp/c-1.log" || fail "no switch at restart"
booted c-1 "$tmp/v3.bin" || fail "c-1 does not boot v3 after the restart"
push_wait
[ $push_rc -eq 0 ] && grep -q "^c-1 update_ok 3$" "$tmp/bg.out" || fail "v3: $(cat "$tmp/bg.out")"
ok "SIGKILL between verification and switch: restart completes the switch, boots v3 (complete), update_ok"

# 3. SIGKILL right after the switch write (before the reboot and the report)
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
c=$(count_lines "$tmp/c-1.log" "connected to")
start_agent c-1 M2MGUARD_UPDATE_CRASH=switched
wait_for 20 connected c-1 $((c + 1)) || fail "c-1 did not reconnect"
push_bg "$tmp/v4.suit" "$tmp/v4.bin"
wait_for 30 grep -q "update crash hook at switched" "$tmp/c-1.log" || fail "switched crash hook not reached"
restart_agent
wait_for 20 connected c-1 $((c + 2)) || fail "c-1 did not come back"
booted c-1 "$tmp/v4.bin" || fail "c-1 does not boot v4 after the restart"
push_wait
[ $push_rc -eq 0 ] && grep -q "^c-1 update_ok 4$" "$tmp/bg.out" || fail "v4: $(cat "$tmp/bg.out")"
ok "SIGKILL right after the switch write: restart boots v4 (complete), update_ok reported late"

# never a half image: every boot names the factory (empty) slot or a complete image
good=" $(for v in 1 2 3 4; do printf '%s ' "$(sha "$tmp/v$v.bin")"; done)"
while read -r line; do
  d=${line##*sha256 }
  [ "$d" = "(empty: factory image)" ] || [[ "$good" == *" $d "* ]] || fail "booted an unknown image: $line"
done < <(grep "boot slot" "$tmp/c-1.log")
ok "$(count_lines "$tmp/c-1.log" "boot slot") boots, each of a complete image (never a half one)"
echo "PASS: $pass checks"
