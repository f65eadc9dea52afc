# Shared by the gateway tests: real SMSC peer (npm `smpp` server), working
# directory, processes started here and stopped by their PID.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
tmp=$(mktemp -d /tmp/mg-gwtest.XXXXXX)
pids=()
pass=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- logs (test failed) ---" >&2
    for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  fi
  [ -n "${MG_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); echo "ok ($SECONDS s): $*"; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_smsc: a real SMSC on 127.0.0.1:$port; sets smsc_pid.
start_smsc() {
  [ -d "$src/tests/smsc/node_modules/smpp" ] || "$src/tools/install-npm-deps.sh" >&2
  SMSC_PASSWORD=$password SMSC_QUIET=${MG_SMSC_QUIET:-1} node "$src/tests/smsc/smsc.js" "$port" \
    > "$tmp/smsc.out" 2>> "$tmp/smsc.log" &
  smsc_pid=$!
  pids+=("$smsc_pid")
  wait_for 20 grep -q '^listening' "$tmp/smsc.out" || fail "SMSC did not start"
}

# new_workdir: m2mguard init + configuration pointing at the SMSC.
new_workdir() {
  export M2MGUARD_HOME=$tmp/gw
  "$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
  port=$(free_port)
  password=$(sed -n 's/^password=//p' "$M2MGUARD_HOME/m2mguard.conf")
  gateway_number=$(sed -n 's/^gateway_number=//p' "$M2MGUARD_HOME/m2mguard.conf")
  sed -i "s/^smsc_port=.*/smsc_port=$port/; s/^enquire_link_ms=.*/enquire_link_ms=5000/" \
    "$M2MGUARD_HOME/m2mguard.conf"
  grep -q "^smsc_port=$port\$" "$M2MGUARD_HOME/m2mguard.conf" || fail "cannot set smsc_port"
}

start_gateway() {
  "$bin" gateway run >> "$tmp/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
}

# start_agent NAME [options...]: the reference device for NAME; sets agent_pid.
start_agent() {
  local name=$1; shift
  M2MGUARD_SMSC_PASSWORD=$password "$bin" agent run --prov "${PROV:-$M2MGUARD_HOME/devices/$name.prov}" \
    --smsc "127.0.0.1:$port" --output "$tmp/$name.jsonl" --sent-log "$tmp/$name.sent" "$@" \
    >> "$tmp/$name.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
}

inbox_at_least() { [ "$(inbox_lines)" -ge "$1" ]; }
inbox_lines() { [ -f "$M2MGUARD_HOME/inbox.jsonl" ] && wc -l < "$M2MGUARD_HOME/inbox.jsonl" || echo 0; }
has_event() { "$bin" events --json | grep "\"kind\":\"$1\"" | grep -q "$2"; }
inject() { M2MGUARD_SMSC_PASSWORD=$password "$bin" agent inject --smsc "127.0.0.1:$port" "$@" >> "$tmp/inject.log" 2>&1; }
