# Shared by the broker tests (tests/mqtt/*.sh): a working directory with a CA,
# a real Mosquitto 2.0 with the m2mguard plugin on a free port, clients
# mosquitto_pub/mosquitto_sub and MQTT.js (peer.js). Every process started
# here is stopped by its PID on exit.
# usage (from a test): source lib.sh M2MGUARD_BIN PLUGIN_SO
set -euo pipefail
bin=$1
plugin_so=$2
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export MG_SOURCE_DIR=$src
MG_LOG_TAIL=${MG_LOG_TAIL:-40}
mg_test_prefix=m2mguard-mqtttest source "$src/tests/lib/harness.sh"
has() { grep -- "$2" "$1" > /dev/null 2>&1; }
events_json() { "$bin" events --json; }
# has_event KIND PATTERN: an event of that kind whose JSON line matches PATTERN.
has_event() { local out; out=$(events_json) && grep "\"kind\":\"$1\"" <<<"$out" | grep -- "$2" > /dev/null; }
count_events() { local out; out=$(events_json) || return 1; grep -c "\"kind\":\"$1\"" <<<"$out" || true; }

# setup: working directory with a CA and a broker configuration (not started).
setup() {
  export M2MGUARD_HOME=$tmp/wd
  "$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
  "$bin" ca init >> "$tmp/init.log" 2>&1
  port=$(free_port)
  conf=$tmp/mosquitto.conf
  "$bin" broker config --port "$port" --plugin "$plugin_so" --out "$conf" 2>> "$tmp/init.log"
  chain=$M2MGUARD_HOME/ca/chain.pem
  # faster polling for the tests; the broker log goes to a file
  sed -i 's/^plugin_opt_poll_ms .*/plugin_opt_poll_ms 200/' "$conf"
  printf 'log_dest file %s\nlog_type all\n' "$tmp/broker.log" >> "$conf"
}

# set_opt NAME VALUE: a plugin_opt_ line of the configuration.
set_opt() { sed -i "s/^plugin_opt_$1 .*/plugin_opt_$1 $2/" "$conf"; }

start_broker() {
  : > "$tmp/broker.log"
  mosquitto -c "$conf" >> "$tmp/mosquitto.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_for 10 grep -q "Opening ipv4 listen socket on port $port" "$tmp/broker.log" ||
    fail "broker did not start"
}
stop_broker() {
  kill "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
}

# new_device NAME: IP-only device with a certificate $tmp/NAME.crt / .key.
new_device() {
  "$bin" device add "$1" --ip >> "$tmp/init.log" 2>&1
  "$bin" ca issue "$1" --genkey --key-out "$tmp/$1.key" --out "$tmp/$1.crt" >> "$tmp/init.log" 2>&1
}
# new_app NAME ROLE
new_app() {
  "$bin" app add "$1" --role "$2" >> "$tmp/init.log" 2>&1
  "$bin" ca issue --app "$1" --genkey --key-out "$tmp/$1.key" --out "$tmp/$1.crt" >> "$tmp/init.log" 2>&1
}
serial_of() { openssl x509 -in "$tmp/$1.crt" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f'; }

# mpub WHO CLIENTID TOPIC MESSAGE [extra mosquitto_pub options]
mpub() {
  local who=$1 id=$2 t=$3 m=$4; shift 4
  mosquitto_pub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/$who.crt" --key "$tmp/$who.key" \
    -i "$id" -q 1 -t "$t" -m "$m" "$@"
}
# msub_bg WHO CLIENTID OUTFILE TOPIC...: background subscriber; sets sub_pid.
msub_bg() {
  local who=$1 id=$2 out=$3; shift 3
  local ts=()
  for t in "$@"; do ts+=(-t "$t"); done
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$chain" --cert "$tmp/$who.crt" --key "$tmp/$who.key" \
    -i "$id" -q 1 -v "${ts[@]}" > "$out" 2>> "$tmp/sub.log" &
  sub_pid=$!
  pids+=("$sub_pid")
}
# peer WHO CLIENTID [peer.js options]: runs peer.js to completion, output on stdout.
peer() {
  local who=$1 id=$2; shift 2
  node "$src/tests/mqtt/peer.js" --port "$port" --ca "$chain" --cert "$tmp/$who.crt" \
    --key "$tmp/$who.key" --id "$id" "$@" 2>> "$tmp/peer.log" || true
}
