#!/usr/bin/env bash
# Issue 15 item 5: SIGHUP re-reads the configuration of `gateway run`
# (docs/operations.md "Reloading"). Observed through the gateway's behaviour:
# 1. cntr_jump_max = 1000: a genuine packet leaping 4999 counters is refused
#    (counter_jump); events_burst = 1: of 3 forged SMS 2 are suppressed (counted
#    into the aggregate row). After `cntr_jump_max = 0`, `events_burst = 5` and
#    SIGHUP the same leap is accepted and 2 more forged SMS are rows of their
#    own (suppressed stays 2): the live settings applied; log_level too.
# 2. a change of `store` and of `gateway_number` is refused with a warning
#    naming the key (never its value), the gateway goes on with the old ones.
# 3. a bad file (a bad number on one line, and cntr_jump_max = 1 on another)
#    keeps the old configuration entirely: the file:line error is logged, a
#    leap of 10 is still accepted (cntr_jump_max stays 0), the reload counted
#    as failed.
source "$(dirname "$0")/lib.sh"

new_workdir
new_device rel-1 +4915100009101
mport=$(free_port)
set_conf metrics_listen "127.0.0.1:$mport"
set_conf cntr_jump_max 1000
set_conf events_burst 1
set_conf events_aggregate_s 60
start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
conf=$M2MGUARD_HOME/m2mguard.conf
inbox_has() { [ "$(inbox_lines)" -ge "$1" ]; }
jumps() { "$bin" events --json | grep -c '"kind":"counter_jump"' || true; }

send_genuine 1 first
wait_for 10 inbox_has 1 || fail "first message not accepted"
send_genuine 5000 leap
wait_for 10 test "$(jumps)" -ge 1 || fail "the leap of 4999 was not refused"
forged_seen() { scrape "$tmp/mf.txt" && [ "$(metric "$tmp/mf.txt" 'm2mguard_gateway_refused_total{kind="auth_fail"}')" = "$1" ]; }
for _ in 1 2 3; do send_forged; done
wait_for 10 forged_seen 3 || fail "3 forged SMS not refused: $(grep refused "$tmp/mf.txt")"
[ "$(metric "$tmp/mf.txt" m2mguard_gateway_events_suppressed_total)" = 2 ] || fail "events_burst = 1 not in force"
ok "cntr_jump_max = 1000: a leap of 4999 is refused (counter_jump); events_burst = 1: 2 of 3 suppressed"

set_conf cntr_jump_max 0
set_conf events_burst 5
set_conf log_level debug
kill -HUP "$gw_pid"
wait_for 10 grep -q "configuration reloaded (SIGHUP)" "$tmp/gateway.log" || fail "no reload"
send_genuine 5000 leap
wait_for 10 inbox_has 2 || fail "after SIGHUP (cntr_jump_max = 0) the leap was not accepted"
scrape "$tmp/m1.txt" || fail "no metrics"
[ "$(metric "$tmp/m1.txt" m2mguard_gateway_log_level)" = 7 ] || fail "log_level debug not applied"
[ "$(metric "$tmp/m1.txt" 'm2mguard_gateway_config_reloads_total{result="ok"}')" = 1 ] || fail "reload not counted"
kill -0 "$gw_pid" || fail "the gateway died"
for _ in 1 2; do send_forged; done
wait_for 10 forged_seen 5 || fail "2 more forged SMS not refused"
[ "$(metric "$tmp/mf.txt" m2mguard_gateway_events_suppressed_total)" = 2 ] || fail "events_burst = 5 not applied"
ok "SIGHUP: cntr_jump_max = 0, events_burst = 5 and log_level = debug applied at once"

echo "store = postgresql://mg:secret-pw@127.0.0.1/none" >> "$conf"
set_conf gateway_number +491710000099
kill -HUP "$gw_pid"
wait_for 10 grep -q "reload: store changed: it needs a restart; the old value stays" "$tmp/gateway.log" ||
  fail "store change not refused"
grep -q "reload: gateway_number changed: it needs a restart" "$tmp/gateway.log" || fail "gateway_number change not refused"
! grep -q "secret-pw\|491710000099" "$tmp/gateway.log" || fail "a refused value was logged"
send_genuine 5001 after
wait_for 10 inbox_has 3 || fail "the gateway stopped accepting after the refused changes"
ok "store and gateway_number changes refused with a warning (values not logged); the gateway goes on"

sed -i '/^store = /d; s/^gateway_number=.*/gateway_number='"$gateway_number"'/' "$conf"
set_conf cntr_jump_max 1
echo "events_burst = abc" >> "$conf"
line=$(grep -n '^events_burst = abc' "$conf" | cut -d: -f1)
kill -HUP "$gw_pid"
wait_for 10 grep -q "configuration reload failed: the old configuration stays" "$tmp/gateway.log" ||
  fail "bad file not refused"
grep -q "m2mguard.conf:$line: events_burst: \"abc\" is not a number" "$tmp/gateway.log" || fail "no file:line error"
send_genuine 5011 leap10
wait_for 10 inbox_has 4 || fail "a bad file changed cntr_jump_max"
scrape "$tmp/m2.txt" || fail "no metrics"
[ "$(metric "$tmp/m2.txt" 'm2mguard_gateway_config_reloads_total{result="failed"}')" = 1 ] || fail "failure not counted"
ok "a bad file keeps the old configuration entirely (file:line logged; cntr_jump_max stays 0)"

kill -TERM "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
grep -q "gateway: stopped" "$tmp/gateway.log" || fail "no clean stop"
echo "reload: $pass passed, 0 failed"
