# Shared by the gateway tests: real SMSC peer (npm `smpp` server), working
# directory, processes started here and stopped by their PID.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mg_test_prefix=mg-gwtest source "$src/tests/lib/harness.sh"

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
# (no grep -q at the end of a pipe: under pipefail its early exit would fail the pipe)
has_event() { local out; out=$("$bin" events --json) && grep "\"kind\":\"$1\"" <<<"$out" | grep "$2" > /dev/null; }
inject() { M2MGUARD_SMSC_PASSWORD=$password "$bin" agent inject --smsc "127.0.0.1:$port" "$@" >> "$tmp/inject.log" 2>&1; }

# ---- helpers of the issue-9 end-to-end tests (reflection, interop, algorithms, flood) ----

# set_conf KEY VALUE: sets KEY in m2mguard.conf (replaced, or appended when absent).
set_conf() {
  local f=$M2MGUARD_HOME/m2mguard.conf
  if grep -q "^$1=" "$f"; then sed -i "s|^$1=.*|$1=$2|" "$f"; else echo "$1=$2" >> "$f"; fi
  grep -qx "$1=$2" "$f" || fail "cannot set $1"
}
# stop_pid PID: stops one process this test started, by its PID.
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# restart_smsc [VAR=VALUE...]: a new SMSC on the same port, with the given modes
# (SMSC_LOOP_MT=1, SMSC_DCS=0xF6, ...); clients reconnect to it.
restart_smsc() {
  [ -n "${smsc_pid:-}" ] && stop_pid "$smsc_pid"
  echo "--- smsc restarted with: $*" >> "$tmp/smsc.log"
  local kv
  for kv in "$@"; do export "${kv?}"; done
  start_smsc
  for kv in "$@"; do unset "${kv%%=*}"; done
}
# count_events KIND [PATTERN]: number of KIND events (whose JSON line matches PATTERN).
count_events() { "$bin" events --json | grep "\"kind\":\"$1\"" | grep -c -- "${2:-}" || true; }
# event_rows: rows of the events table.
event_rows() { sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM events"; }
# cmd_id OUTPUT: the command id in the output of `send` / `key rotate`.
cmd_id() { sed -n 's/^command \([0-9]*\) queued.*/\1/p' <<<"$1" | head -n1; }
# cmd_state ID: the command's state and detail as stored, e.g. "4|por_ok".
cmd_state() { sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" "SELECT state, detail FROM commands WHERE id = $1"; }
# rss_kib PID: resident set size of a process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# gw_binds: how many times the gateway has bound so far.
gw_binds() { grep -c smpp_bound "$tmp/gateway.log" || true; }
