#!/usr/bin/env bash
# Issue 16: the console in a real headless Chromium (Debian `chromium`, driven by
# npm playwright-core from tests/smsc/node_modules) against a real store, the
# gateway bound to the SMSC peer, the detector and `m2mguard console run`.
#   tests/console/browser.sh M2MGUARD
# The scenario (tests/console/browser.js): log in; a device added with
# `m2mguard device add` appears on the fleet page; a forged SMS arrives live on
# the events page; from the alert it raises the operator quarantines the device
# and the gateway refuses the device's next valid message (event `quarantined`);
# a viewer sees no action button and is refused by the API; screenshots of every
# page at 1280x800 and 390x844 (MG_CONSOLE_SHOTS, default build dir); no response
# the browser received holds key material; accessibility basics.
source "$(dirname "$0")/../gateway/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
chromium=${MG_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "no $chromium (Debian package chromium, tools/debian-packages.txt)"
[ -d "$src/tests/smsc/node_modules/playwright-core" ] || "$src/tools/install-npm-deps.sh" >&2
[ -d "$src/tests/smsc/node_modules/playwright-core" ] || fail "npm playwright-core missing (tools/install-npm-deps.sh)"
"$bin" console --help > /dev/null 2>&1 || fail "this m2mguard has no console command"
shots=${MG_CONSOLE_SHOTS:-$tmp/console-screenshots}
mkdir -p "$shots"
rm -f "$shots"/*.png

new_workdir
set_conf reconnect_max_ms 1000
cport=$(free_port)
# the browser starts now (Chromium takes seconds) and waits for $tmp/ready
MG_BIN=$bin MG_URL="https://127.0.0.1:$cport" MG_SHOTS=$shots MG_TMP=$tmp \
  MG_SMSC="127.0.0.1:$port" MG_SMSC_PASSWORD=$password MG_GATEWAY_NUMBER=$gateway_number \
  MG_CHROMIUM=$chromium NODE_PATH="$src/tests/smsc/node_modules" \
  timeout 110 node "$src/tests/console/browser.js" > "$tmp/browser.out" 2>> "$tmp/browser.log" &
node_pid=$!
pids+=("$node_pid")
# accounts (in the background: Argon2id is slow on purpose): an operator and
# a viewer; passwords from files, never on a command line
(umask 077; openssl rand -hex 12 > "$tmp/alice.pw"; openssl rand -hex 12 > "$tmp/bob.pw")
{ "$bin" console user add alice --role operator --password-file "$tmp/alice.pw" &&
  "$bin" console user add bob --role viewer --password-file "$tmp/bob.pw"; } > "$tmp/users.log" 2>&1 &
u1=$!
pids+=("$u1")
"$bin" device add meter-1 --msisdn +4915100000301 --class meter > /dev/null
"$bin" device add lock-1 --msisdn +4915100000302 --class lock > /dev/null
ok "working directory with devices meter-1 and lock-1"
start_smsc
start_gateway
# the detector: a forged SMS carrying a device's number raises a device alert
# (notify only: the operator decides in the console)
cat > "$tmp/rules.yaml" <<'YAML'
rules:
  forged_for_device:
    kinds: [auth_fail]
    scope: device
    window_s: 300
    threshold: 1
    severity: high
    response: [notify]
YAML
"$bin" detect run --rules "$tmp/rules.yaml" --poll-ms 100 2> "$tmp/detect.log" &
pids+=("$!")
wait "$u1" || fail "console user add: $(cat "$tmp/users.log")"
ok "console accounts alice (operator) and bob (viewer)"
"$bin" console run --listen "127.0.0.1:$cport" >> "$tmp/console.log" 2>&1 &
pids+=("$!")
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
wait_for 20 curl -sk -o /dev/null "https://127.0.0.1:$cport/login" || fail "console did not start"
ok "SMSC, gateway, detector and console (https://127.0.0.1:$cport) running"
touch "$tmp/ready"
rc=0
wait "$node_pid" || rc=$?
[ "$rc" = 0 ] || { cat "$tmp/browser.out"; fail "browser scenario failed (exit $rc): $(tail -n 5 "$tmp/browser.log")"; }
grep '^ok ' "$tmp/browser.out" || true
pass=$((pass + $(grep -c '^ok ' "$tmp/browser.out" || true)))
echo "browser done ($SECONDS s)"
echo "screenshots: $shots ($(ls "$shots" | wc -l) files)"
echo "console_browser: $pass passed, 0 failed"
