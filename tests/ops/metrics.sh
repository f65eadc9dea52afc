#!/usr/bin/env bash
# Issue 15 item 5: Prometheus metrics of `gateway run` (docs/metrics.md).
# A gateway with metrics_listen on a free loopback port, a real SMSC; the
# exposition passes `promtool check metrics` before and after traffic (one
# genuine message, one forged, one from an unknown number), and the counters
# moved: accepted, refused per kind, commits and the commit-latency histogram.
# Only GET /metrics is served; an address off the loopback is refused.
source "$(dirname "$0")/lib.sh"
command -v promtool > /dev/null || fail "promtool missing (Debian package prometheus)"

new_workdir
new_device met-1 +4915100009001
mport=$(free_port)
set_conf metrics_listen "127.0.0.1:$mport"
start_smsc
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
grep -q "gateway: metrics on http://127.0.0.1:$mport/metrics" "$tmp/gateway.log" || fail "no metrics line"

scrape "$tmp/m0.txt" || fail "no /metrics"
promtool check metrics < "$tmp/m0.txt" > "$tmp/promtool0.log" 2>&1 || fail "promtool: $(cat "$tmp/promtool0.log")"
[ "$(metric "$tmp/m0.txt" m2mguard_gateway_smpp_bound)" = 1 ] || fail "not bound in the metrics"
[ "$(metric "$tmp/m0.txt" m2mguard_gateway_smpp_window_size)" = 10 ] || fail "window size"
ct=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$mport/metrics")
[ "$ct" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "content type: $ct"
ok "exposition 0.0.4 passes promtool check metrics; bound, window 10"

send_genuine 1 hello
send_forged
inject --from +4915100009999 --to "$gateway_number" 027000aabbcc || fail "inject"
moved() {
  scrape "$tmp/m1.txt" &&
    [ "$(metric "$tmp/m1.txt" m2mguard_gateway_accepted_total)" = 1 ] &&
    [ "$(metric "$tmp/m1.txt" 'm2mguard_gateway_refused_total{kind="auth_fail"}')" = 1 ] &&
    [ "$(metric "$tmp/m1.txt" 'm2mguard_gateway_refused_total{kind="unknown_sender"}')" = 1 ]
}
wait_for 15 moved || fail "counters did not move: $(grep -v '^#' "$tmp/m1.txt")"
promtool check metrics < "$tmp/m1.txt" > "$tmp/promtool1.log" 2>&1 || fail "promtool: $(cat "$tmp/promtool1.log")"
commits=$(metric "$tmp/m1.txt" m2mguard_gateway_commits_total)
hcount=$(metric "$tmp/m1.txt" m2mguard_gateway_commit_duration_seconds_count)
inf=$(metric "$tmp/m1.txt" 'm2mguard_gateway_commit_duration_seconds_bucket{le="+Inf"}')
[ "$commits" -ge 1 ] && [ "$hcount" = "$commits" ] && [ "$inf" = "$commits" ] ||
  fail "histogram: commits $commits, count $hcount, +Inf $inf"
grep -q '^m2mguard_gateway_commit_duration_seconds_sum [0-9.e+-]*$' "$tmp/m1.txt" || fail "no histogram sum"
echo "metrics: after traffic: $(grep -E '^m2mguard_gateway_(accepted|refused|commits)' "$tmp/m1.txt" | tr '\n' ' ')"
ok "accepted 1, refused auth_fail 1 and unknown_sender 1, $commits commit(s) in the histogram; promtool passes"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/")
[ "$code" = 404 ] || fail "GET / answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "http://127.0.0.1:$mport/metrics")
[ "$code" = 405 ] || fail "POST answered $code"
ok "GET /metrics only: / is 404, POST is 405"

printf 'metrics_listen = 0.0.0.0:%s\n' "$mport" > "$tmp/off.conf"; chmod 600 "$tmp/off.conf"
rc=0; "$bin" config check "$tmp/off.conf" 2> "$tmp/off.err" || rc=$?
[ "$rc" = 1 ] && grep -q "off.conf:1: metrics_listen: .*loopback" "$tmp/off.err" || fail "0.0.0.0 not refused: $(cat "$tmp/off.err")"
ok "a metrics address off the loopback is refused"

kill -TERM "$gw_pid"; wait "$gw_pid" 2>/dev/null || true

# the detector's metrics (detect_metrics_listen): it has read the events above
dport=$(free_port)
set_conf detect_metrics_listen "127.0.0.1:$dport"
"$bin" detect run --poll-ms 100 >> "$tmp/detect.log" 2>&1 &
det_pid=$!
pids+=("$det_pid")
wait_for 15 grep -q "metrics on http://127.0.0.1:$dport/metrics" "$tmp/detect.log" || fail "detect: no metrics line"
det_read() {
  curl -fsS --max-time 5 "http://127.0.0.1:$dport/metrics" > "$tmp/d1.txt" &&
    [ "$(metric "$tmp/d1.txt" m2mguard_detect_events_total)" -ge 3 ]
}
wait_for 15 det_read || fail "detect metrics: $(cat "$tmp/d1.txt")"
promtool check metrics < "$tmp/d1.txt" > "$tmp/promtool2.log" 2>&1 || fail "promtool: $(cat "$tmp/promtool2.log")"
kill -TERM "$det_pid"; wait "$det_pid" 2>/dev/null || true
ok "detect run: $(metric "$tmp/d1.txt" m2mguard_detect_events_total) events read in its metrics; promtool passes"
echo "metrics: $pass passed, 0 failed"
