# Shared by the update tests (issue 14): the IP stack of an m2mguard working
# directory (CA, broker with the plugin), devices of one class with their
# certificates issued here, an updater application, a signing key, the
# update provisioning of the agents. Processes are stopped by their PID.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MG_LOG_TAIL=${MG_LOG_TAIL:-40}
mg_test_prefix=mg-suit source "$src/tests/lib/harness.sh"
count_lines() { { grep -cF -- "$2" "$1" 2>/dev/null || true; } | tail -n 1; }
has_line() { [ "$(count_lines "$1" "$2")" -ge "${3:-1}" ]; }

# suit_setup CLASS DEVICE...: working directory, CA, broker configuration
# ($conf, port $mport), the devices (IP, class CLASS) with key and certificate
# in $tmp/NAME.d, the application `ota` (role updater), an ES256 signing key
# $tmp/keys/vendor.pem, the anchors file $tmp/anchors and the update
# provisioning $tmp/update.prov (vendor example.com, class CLASS).
suit_setup() {
  local cls=$1; shift
  export M2MGUARD_HOME=$tmp/wd
  "$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
  "$bin" ca init --days 1 >> "$tmp/init.log" 2>&1
  chain=$M2MGUARD_HOME/ca/chain.pem
  mport=$(free_port)
  conf=$tmp/broker.conf
  "$bin" broker config --port "$mport" --out "$conf" >> "$tmp/init.log" 2>&1
  sed -i 's/^plugin_opt_poll_ms .*/plugin_opt_poll_ms 200/' "$conf"
  printf 'log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\n' "$tmp/mosquitto.log" >> "$conf"
  local n
  for n in "$@"; do
    "$bin" device add "$n" --ip --class "$cls" >> "$tmp/init.log" 2>&1
    mkdir -m 700 "$tmp/$n.d"
    "$bin" ca issue "$n" --genkey --key-out "$tmp/$n.d/key.pem" --out "$tmp/$n.d/cert.pem" \
      >> "$tmp/init.log" 2>&1
  done
  "$bin" app add ota --role updater >> "$tmp/init.log" 2>&1
  "$bin" ca issue --app ota --genkey --key-out "$tmp/ota.key" --out "$tmp/ota.crt" >> "$tmp/init.log" 2>&1
  mkdir -m 700 "$tmp/keys"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/keys/vendor.pem" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/keys/rogue.pem" 2>/dev/null
  chmod 600 "$tmp/keys"/*.pem
  openssl pkey -in "$tmp/keys/vendor.pem" -pubout -out "$tmp/keys/vendor.pub" 2>/dev/null
  local pub
  pub=$(openssl pkey -in "$tmp/keys/vendor.pem" -pubout -outform DER | tail -c 65 | od -An -tx1 | tr -d ' \n')
  printf 'anchor=vendor:ES256:%s\n' "$pub" > "$tmp/anchors"
  # the identifiers as `update create` derives them from names (UUID5)
  head -c 100 /dev/urandom > "$tmp/probe.bin"
  "$bin" update create --image "$tmp/probe.bin" --vendor example.com --class "$cls" --seq 1 \
    --key "$tmp/keys/vendor.pem" --kid vendor -o "$tmp/probe.suit" 2>> "$tmp/init.log"
  "$bin" update inspect --json "$tmp/probe.suit" > "$tmp/probe.json"
  local v c
  v=$(sed -n 's/.*"vendor":"\([0-9a-f-]*\)".*/\1/p' "$tmp/probe.json")
  c=$(sed -n 's/.*"class":"\([0-9a-f-]*\)".*/\1/p' "$tmp/probe.json")
  [ ${#v} -eq 36 ] && [ ${#c} -eq 36 ] || fail "no vendor/class UUID from update inspect"
  printf 'vendor=%s\nclass=%s\nslot_size=1048576\n' "$v" "$c" > "$tmp/update.prov"
}

start_broker() {
  mosquitto -c "$conf" >> "$tmp/mosquitto.out.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_for 10 grep -q "plugin ready" "$tmp/mosquitto.log" || fail "broker did not start"
}

# start_agent NAME [ENV=VAL...]: the IP agent of NAME with updates on; sets agent_pid.
start_agent() {
  local n=$1; shift
  env "$@" "$bin" agent run --mqtt "127.0.0.1:$mport" --name "$n" --cafile "$chain" \
    --state-dir "$tmp/$n.d" --anchors "$tmp/anchors" --update "$tmp/update.prov" \
    --output "$tmp/$n.jsonl" >> "$tmp/$n.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
}
connected() { has_line "$tmp/$1.log" "connected to" "${2:-1}"; }

# create SEQ IMAGE OUT [CLASS [KEY]]: an envelope.
create() {
  "$bin" update create --image "$2" --vendor example.com --class "${4:-$suit_class}" --seq "$1" \
    --key "${5:-$tmp/keys/vendor.pem}" --kid vendor -o "$3" 2>> "$tmp/create.log" || fail "update create $1"
}
# push ENVELOPE IMAGE TARGETS... : update push as the application ota; output in $push_out, exit in $push_rc.
push() {
  local env=$1 img=$2; shift 2
  set +e
  push_out=$("$bin" update push "$@" "$env" --image "$img" --mqtt "127.0.0.1:$mport" --cafile "$chain" \
    --cert "$tmp/ota.crt" --key "$tmp/ota.key" --client-id ota --timeout "${PUSH_TIMEOUT:-60}" \
    ${PUSH_ARGS:-} 2>> "$tmp/push.log")
  push_rc=$?
  set -e
  echo "$push_out" >> "$tmp/push.log"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
# booted NAME IMAGE: the agent's last boot line names IMAGE's digest.
booted() { grep "boot slot" "$tmp/$1.log" | tail -n1 | grep -F "sha256 $(sha "$2")" > /dev/null; }
auth_events() { sqlite3 -cmd ".timeout 5000" "$M2MGUARD_HOME/m2mguard.db" \
  "SELECT count(*) FROM events WHERE kind = '$1' AND auth = 1 ${2:+AND reason LIKE '%$2%'}"; }
