#!/usr/bin/env bash
# Issue 15 item 5: the configuration is checked at start against one table of
# known keys (src/cli/workdir.c mg_conf_keys): an unknown key, a bad number, a
# number out of range, a bad choice, a key given twice are errors
# "FILE:LINE: key: why"; `config check` reports every bad line and exits 1
# (0 for a valid file); `gateway run` does not start on a bad file; the table
# of docs/operations.md is the table's (`config keys --markdown`); every key
# the sources read is in the table.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mg_test_prefix=mg-opsconf source "$src/tests/lib/harness.sh"

"$bin" init "$tmp/d" > /dev/null
conf=$tmp/d/m2mguard.conf
out=$("$bin" config check --dir "$tmp/d") || fail "a fresh configuration is not valid"
[ "$out" = "$conf: valid (11 settings)" ] || fail "config check said: $out"
"$bin" config check --help | grep -q '^usage: m2mguard config check' || fail "no --help"
ok "a fresh configuration is valid (exit 0)"

cp "$conf" "$tmp/bad.conf"; chmod 600 "$tmp/bad.conf"
n=$(wc -l < "$tmp/bad.conf")
cat >> "$tmp/bad.conf" <<'CONF'
events_burst = abc
smsc_portt = 2775
smsc_port = 70000
log = journald
log_level = verbose
window = 10
gateway_number = 0171
CONF
rc=0; "$bin" config check "$tmp/bad.conf" 2> "$tmp/check.err" || rc=$?
[ "$rc" = 1 ] || fail "config check of a bad file: exit $rc"
want() { grep -qxF -- "$1" "$tmp/check.err" || fail "missing: $1; got: $(cat "$tmp/check.err")"; }
want "$tmp/bad.conf:$((n + 1)): events_burst: \"abc\" is not a number"
want "$tmp/bad.conf:$((n + 2)): smsc_portt: unknown key (the keys: docs/operations.md, m2mguard config keys)"
want "$tmp/bad.conf:$((n + 3)): smsc_port: \"70000\" is out of range 1..65535"
want "$tmp/bad.conf:$((n + 4)): log: \"journald\" is not one of stderr|syslog|journal"
want "$tmp/bad.conf:$((n + 5)): log_level: \"verbose\" is not one of error|warning|notice|info|debug"
wline=$(grep -n '^window=' "$conf" | cut -d: -f1)
want "$tmp/bad.conf:$((n + 6)): window given twice (first on line $wline)"
want "$tmp/bad.conf:$((n + 7)): gateway_number: \"0171\" is not a number in +E.164 form"
want "m2mguard config check: $tmp/bad.conf: 7 errors"
ok "config check: every bad line as FILE:LINE: key: why, exit 1"

echo "events_burst = abc" >> "$conf"
line=$(wc -l < "$conf")
rc=0; timeout 20 "$bin" gateway run --dir "$tmp/d" 2> "$tmp/run.err" || rc=$?
[ "$rc" = 3 ] || fail "gateway run on a bad file: exit $rc"
grep -qxF "$conf:$line: events_burst: \"abc\" is not a number" "$tmp/run.err" || fail "gateway run said: $(cat "$tmp/run.err")"
rc=0; timeout 20 "$bin" gateway run --dir "$tmp/d" --config "$tmp/bad.conf" 2> "$tmp/run2.err" || rc=$?
[ "$rc" = 3 ] || fail "gateway run --config on a bad file: exit $rc"
rc=0; "$bin" device list --dir "$tmp/d" > /dev/null 2> "$tmp/list.err" || rc=$?
[ "$rc" = 3 ] && grep -q "events_burst" "$tmp/list.err" || fail "device list on a bad file: exit $rc"
sed -i '$d' "$conf"
"$bin" config check --dir "$tmp/d" > /dev/null || fail "not valid again"
ok "gateway run (and every command) refuses a bad file with FILE:LINE, exit 3"

"$bin" config keys --markdown > "$tmp/keys.md"
awk '/<!-- config-keys: begin/ { on = 1; next } /<!-- config-keys: end/ { on = 0 } on' \
  "$src/docs/operations.md" > "$tmp/doc.md"
[ -s "$tmp/doc.md" ] || fail "docs/operations.md has no config-keys markers"
diff -u "$tmp/doc.md" "$tmp/keys.md" > "$tmp/keys.diff" ||
  fail "docs/operations.md's table differs from 'm2mguard config keys --markdown': $(cat "$tmp/keys.diff")"
ok "docs/operations.md's configuration table is the table of the code"

"$bin" config keys | cut -f1 | sort > "$tmp/known.txt"
grep -rhoE '(mg_conf_get|conf_[a-z0-9_]+)\(&?w, "[a-z0-9_]+"' "$src/src" | grep -oE '"[a-z0-9_]+"' | tr -d '"' |
  sort -u > "$tmp/read.txt"
missing=$(comm -23 "$tmp/read.txt" "$tmp/known.txt" | tr '\n' ' ')
[ -z "$missing" ] || fail "keys read by the sources but not in the table: $missing"
ok "every key the sources read is in the table ($(wc -l < "$tmp/read.txt") read, $(wc -l < "$tmp/known.txt") known)"
echo "config: $pass passed, 0 failed"
