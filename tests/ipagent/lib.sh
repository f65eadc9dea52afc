# Shared by the ipagent tests: temp dir, processes started here and stopped by
# their PID, free ports, an openssl-CLI PKI and a TLS mosquitto.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MG_LOG_TAIL=${MG_LOG_TAIL:-40}
mg_test_prefix=mg-ipagent source "$src/tests/lib/harness.sh"
# count_lines FILE PATTERN: lines of FILE matching the fixed string PATTERN (0 if none).
count_lines() { { grep -cF -- "$2" "$1" 2>/dev/null || true; } | tail -n 1; }
has_line() { [ "$(count_lines "$1" "$2")" -ge "${3:-1}" ]; }

# openssl_pki: a root CA and certificates signed by it (EC P-256) in $tmp/pki:
# server (SAN IP 127.0.0.1), and one client certificate per name given.
openssl_pki() {
  local d=$tmp/pki
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/O=test/CN=test root" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  issue_openssl server "$d/server" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
  for n in "$@"; do
    issue_openssl "$n" "$d/$n" "extendedKeyUsage=clientAuth"
  done
}
issue_openssl() {
  local cn=$1 out=$2 ext=$3 d=$tmp/pki
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$out.key" -out "$out.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$out.ext"
  openssl x509 -req -in "$out.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
    -extfile "$out.ext" -out "$out.crt" 2>/dev/null
  chmod 600 "$out.key"
}

# start_mosquitto: TLS listener on 127.0.0.1:$mport requiring a client certificate
# (CN as the username), persistent; sets mosq_pid.
start_mosquitto() {
  local d=$tmp/pki
  mkdir -p "$tmp/mosq"
  cat > "$tmp/mosquitto.conf" <<CONF
per_listener_settings false
user $(id -un)
persistence true
persistence_location $tmp/mosq/
log_dest file $tmp/mosquitto.log
log_type all
listener $mport 127.0.0.1
cafile $d/ca.crt
certfile $d/server.crt
keyfile $d/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
CONF
  mosquitto -c "$tmp/mosquitto.conf" > /dev/null 2>&1 &
  mosq_pid=$!
  pids+=("$mosq_pid")
  wait_for 20 grep -q "listen socket on port $mport" "$tmp/mosquitto.log" || fail "mosquitto did not start"
}
stop_mosquitto() { kill "$mosq_pid"; wait "$mosq_pid" 2>/dev/null || true; }

# tls_sub NAME OUT TOPIC...: mosquitto_sub with NAME's certificate (persistent session, QoS 1).
tls_sub() {
  local n=$1 out=$2; shift 2
  local args=()
  for t in "$@"; do args+=(-t "$t"); done
  mosquitto_sub -h 127.0.0.1 -p "$mport" --cafile "$tmp/pki/ca.crt" --cert "$tmp/pki/$n.crt" \
    --key "$tmp/pki/$n.key" -i "$n" -c -q 1 -v "${args[@]}" > "$out" 2>> "$tmp/sub-$n.log" &
  pids+=("$!")
  sub_pid=$!
}
# tls_pub NAME TOPIC PAYLOAD: one QoS 1 message with NAME's certificate.
tls_pub() {
  mosquitto_pub -h 127.0.0.1 -p "$mport" --cafile "$tmp/pki/ca.crt" --cert "$tmp/pki/$1.crt" \
    --key "$tmp/pki/$1.key" -i "$1-pub" -q 1 -t "$2" -m "$3"
}

# ip_stack_setup LOG_TYPES...: the working directory of an IP test: a CA
# (1-day certificates), the EST server's certificate, free ports $eport (EST)
# and $mport (broker), $conf a broker configuration from `broker config` (tick
# 200 ms, command timeout 5 s, the log types given into $tmp/mosquitto.log),
# device meter-1 with its enrolment token in $tmp/meter-1.token, and an
# application `reader` (telemetry-reader) with $tmp/reader.{key,crt}.
# Sets chain, eport, mport, conf, token.
ip_stack_setup() {
  export M2MGUARD_HOME=$tmp/wd
  "$bin" init "$M2MGUARD_HOME" > "$tmp/init.log"
  "$bin" ca init --days 1 >> "$tmp/init.log" 2>&1
  chain=$M2MGUARD_HOME/ca/chain.pem
  "$bin" ca server est --ip 127.0.0.1 --key-out "$M2MGUARD_HOME/est-server.key" \
    --out "$M2MGUARD_HOME/est-server.crt" >> "$tmp/init.log" 2>&1
  eport=$(free_port)
  mport=$(free_port)
  echo "est_listen = 127.0.0.1:$eport" >> "$M2MGUARD_HOME/m2mguard.conf"
  conf=$tmp/broker.conf
  "$bin" broker config --port "$mport" --out "$conf" >> "$tmp/init.log" 2>&1
  sed -i 's/^plugin_opt_poll_ms .*/plugin_opt_poll_ms 200/' "$conf"
  if grep -q '^plugin_opt_cmd_timeout ' "$conf"; then
    sed -i 's/^plugin_opt_cmd_timeout .*/plugin_opt_cmd_timeout 5/' "$conf"
  else
    sed -i 's/^\(plugin_opt_store .*\)$/\1\nplugin_opt_cmd_timeout 5/' "$conf"
  fi
  printf 'log_dest file %s\n' "$tmp/mosquitto.log" >> "$conf"
  local t
  for t in "$@"; do printf 'log_type %s\n' "$t" >> "$conf"; done

  "$bin" device add meter-1 --ip --enrol-token > "$tmp/add.out" 2>> "$tmp/init.log"
  token=$(sed -n 's/^enrol-token: //p' "$tmp/add.out")
  [ ${#token} -eq 32 ] || fail "no enrolment token printed"
  (umask 077; printf '%s\n' "$token" > "$tmp/meter-1.token")
  "$bin" app add reader --role telemetry-reader >> "$tmp/init.log" 2>&1
  "$bin" ca issue --app reader --genkey --key-out "$tmp/reader.key" --out "$tmp/reader.crt" \
    >> "$tmp/init.log" 2>&1
  ok "working directory, CA, EST server certificate, device with a token, application"
}
