#!/usr/bin/env bash
# The working directory's checks at start (directory, master.key and database
# modes, each with its own message) and the JSON output of `events --json` and
# `device list|show --json` whatever bytes the store holds: every line must be
# valid UTF-8 and valid JSON (checked by Python's strict codec and json module).
set -euo pipefail
bin=$1
pass=0
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME WANT GOT
  [ "$2" == "$3" ] || fail "$1: want '$2' got '$3'"
  pass=$((pass + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out; err=$tmp/err
run() { # run WANT_RC cmd...: stdout in $out, stderr in $err
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$err")"
  pass=$((pass + 1))
}
unset M2MGUARD_HOME
dir=$tmp/wd
run 0 init "$dir"
export M2MGUARD_HOME=$dir
run 0 device add meter-1 --msisdn +4915112345678 --class meter
run 0 device list

# ---- the directory must not be writable by group or others --------------------------
chmod 770 "$dir"
run 3 device list
expect "dir 0770" "m2mguard: working directory $dir has mode 0770: writable by its group; it must be 0700 (chmod 700 $dir)" "$(cat "$err")"
chmod 757 "$dir"
run 3 events
expect "dir 0757" "m2mguard: working directory $dir has mode 0757: writable by everyone; it must be 0700 (chmod 700 $dir)" "$(cat "$err")"
chmod 750 "$dir" # readable by the group is the operator's choice; writable is not
run 0 device list
chmod 700 "$dir"

# ---- master.key: mode, emptiness, length, symlink: each named as such ------------------
key=$dir/master.key
chmod 644 "$key"
run 3 device list
expect "master 0644" "master key: $key has mode 0644, must be 0600 (chmod 600 $key)" "$(cat "$err")"
chmod 400 "$key"
run 0 device list # read-only for the owner is fine
chmod 600 "$key"
cp "$key" "$tmp/master.save"
: >"$key"
run 3 device list
expect "master empty" "master key: $key is empty" "$(cat "$err")"
head -c 62 "$tmp/master.save" >"$key"
run 3 device list
expect "master short" "master key: $key must hold 32 octets as 64 hex digits" "$(cat "$err")"
{ head -c 62 "$tmp/master.save"; printf 'zz\n'; } >"$key"
run 3 device list
expect "master not hex" "master key: $key must hold 32 octets as 64 hex digits" "$(cat "$err")"
grep -q "$(head -c 62 "$tmp/master.save")" "$err" && fail "master key digits in a message"
rm "$key"; ln -s "$tmp/master.save" "$key"
run 3 device list
expect "master symlink" "master key: $key is a symbolic link; give the file itself" "$(cat "$err")"
rm "$key"; cp "$tmp/master.save" "$key"; chmod 600 "$key"
{ printf '  '; cat "$tmp/master.save"; printf '\n\n'; } >"$key" # whitespace around: fine
run 0 device list

# ---- the database ----------------------------------------------------------------------
chmod 644 "$dir/m2mguard.db"
run 3 device list
expect "db 0644" "m2mguard: database $dir/m2mguard.db has mode 0644, must be 0600 (chmod 600 $dir/m2mguard.db)" "$(cat "$err")"
chmod 600 "$dir/m2mguard.db"

# ---- the configuration file: an empty one says so ---------------------------------------
cp "$dir/m2mguard.conf" "$tmp/conf.save"
: >"$dir/m2mguard.conf"
run 3 device list
expect "conf empty" "config: $dir/m2mguard.conf is empty" "$(cat "$err")"
cp "$tmp/conf.save" "$dir/m2mguard.conf"

# ---- JSON output whatever the store holds ----------------------------------------------
# Event fields carry what an attacker sent (a source address, a reason built
# from it); device fields can be anything a database editor wrote. Bytes:
# quote, backslash, ESC, NUL-free control characters, a lone continuation
# octet, an overlong '/', a UTF-8 surrogate, a truncated sequence, U+00E9.
weird="X'2278225C1B5B33316D0A0D09807FC0AFEDA080E282C3A9'"
sqlite3 "$dir/m2mguard.db" \
  "INSERT INTO events(time, device_id, bearer, source, kind, reason) VALUES
     (1764057600, 0, 'sms', CAST($weird AS TEXT), 'unknown_sender', CAST($weird AS TEXT));
   UPDATE devices SET class = CAST($weird AS TEXT) WHERE name = 'meter-1';"
json_lines() { # every line of $out is valid UTF-8 JSON; prints the field $1 of the last
  python3 - "$out" "$1" <<'EOF'
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8", "strict").splitlines()
assert lines, "no output"
objs = [json.loads(l) for l in lines]
print(ascii(objs[-1][sys.argv[2]]) if sys.argv[2] in objs[-1] else ascii(objs[-1]))
EOF
}
want="'\"x\"\\\\\\x1b[31m\\n\\r\\t\\ufffd\\x7f\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\xe9'"
run 0 events --json
expect "events --json source" "$want" "$(json_lines source)"
expect "events --json reason" "$want" "$(json_lines reason)"
run 0 events
grep -q $'\x1b' "$out" && fail "events text output carries ESC"
pass=$((pass + 1))
run 0 device list --json
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1],"rb").read().decode("utf-8","strict")); print(ascii(d[0]["class"]))' "$out" >"$tmp/cls" ||
  fail "device list --json is not valid UTF-8 JSON: $(cat "$out")"
expect "device list --json class" "$want" "$(cat "$tmp/cls")"
run 0 device show meter-1 --json
expect "device show --json class" "$want" "$(json_lines class)"
echo "cli workdir: $pass passed, 0 failed"
