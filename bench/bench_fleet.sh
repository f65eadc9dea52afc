#!/usr/bin/env bash
# 1 M devices (issue 15; docs/fleet.md): `m2mguard device import` of N devices
# (default 1 000 000) from a generated CSV, its rate (goal >= 10 000 devices/s),
# the database's size, then bench_fleet (the gateway's start-up, peak RSS and
# device look-up p99 over S random senders; goal < 50 us), and `gateway run`
# against the test SMSC (tests/smsc/smsc.js, when node and its modules are
# there): the time to smpp_bound and the daemon's memory.
# Usage: bench/bench_fleet.sh M2MGUARD [N] [SENDERS]
set -euo pipefail
bin=$1
n=${2:-1000000}
senders=${3:-100000}
here=$(cd "$(dirname "$0")" && pwd)
bench=${MG_BENCH_FLEET:-$(dirname "$bin")/bench/bench_fleet}
tmp=$(mktemp -d /tmp/mg-bench-fleet.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
"$bin" init "$tmp/wd" > /dev/null
awk -v n="$n" 'BEGIN { print "name,msisdn,class";
  for (i = 0; i < n; i++) printf "meter-%07d,+4915%09d,meter\n", i, (i * 7919) % 1000000000 }' > "$tmp/fleet.csv"
echo "device import of $n devices (CSV $(du -h "$tmp/fleet.csv" | cut -f1)), SQLite WAL synchronous=FULL"
/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" \
  "$bin" device import --dir "$tmp/wd" --provision-out "$tmp/prov.jsonl" "$tmp/fleet.csv" > "$tmp/import.out"
read -r wall user sys maxrss < "$tmp/time"
awk -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v m="$maxrss" 'BEGIN {
  printf "  %.1f s wall, %.1f s CPU (user %.1f + sys %.1f), peak RSS %d MiB\n", w, u + s, u, s, m / 1024;
  printf "  rate: %.0f devices/s wall (goal >= 10000: %s), %.0f devices/s of CPU time\n",
         n / w, (n / w >= 10000 ? "PASS" : "FAIL"), n / (u + s) }'
db=$tmp/wd/m2mguard.db
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" > /dev/null
echo "  database: $(du -h "$db" | cut -f1) ($(stat -c %s "$db") octets, $(( $(stat -c %s "$db") / n )) a device)"
echo "  provisioning output: $(du -h "$tmp/prov.jsonl" | cut -f1), mode $(stat -c %a "$tmp/prov.jsonl")"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# the daemon: `gateway run` with this registry against a local SMSC (before
# bench_fleet, whose messages would leave inbox rows for the daemon to output)
src=$(cd "$here/.." && pwd)
if command -v node > /dev/null && [ -d "$src/tests/smsc/node_modules/smpp" ]; then
  conf=$tmp/wd/m2mguard.conf
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -i "s/^smsc_port=.*/smsc_port=$port/" "$conf"
  SMSC_PASSWORD=$(sed -n 's/^password=//p' "$conf") SMSC_QUIET=1 node "$src/tests/smsc/smsc.js" "$port" \
    > "$tmp/smsc.out" 2> "$tmp/smsc.log" &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q '^listening' "$tmp/smsc.out" && break; sleep 0.05; done
  start=$(date +%s.%N)
  "$bin" gateway run --dir "$tmp/wd" > "$tmp/gw.log" 2>&1 &
  gw=$!
  pids+=("$gw")
  for _ in $(seq 1 1200); do grep -q smpp_bound "$tmp/gw.log" && break; sleep 0.01; done
  grep -q smpp_bound "$tmp/gw.log" || { echo "gateway run: did not bind"; exit 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v h="$(awk '/^VmHWM:/ { print $2 }' "/proc/$gw/status")" \
      -v a="$(awk '/^RssAnon:/ { print $2 }' "/proc/$gw/status")" 'BEGIN {
    printf "gateway run (process start to smpp_bound with the local SMSC): %.2f s, peak RSS %.1f MiB (anonymous %.1f MiB)\n",
           e - s, h / 1024, a / 1024 }'
  kill "$gw"; wait "$gw" 2>/dev/null || true
else
  echo "gateway run: skipped (needs node and tests/smsc/node_modules: tools/install-npm-deps.sh)"
fi
"$bench" "$db" "$tmp/wd/master.key" "$tmp/prov.jsonl" "$senders"
