#!/usr/bin/env bash
# store_pg_cli: the commands that used to take DIR/m2mguard.db whatever
# m2mguard.conf said, with `store = <PostgreSQL connection string>`:
# `broker config` writes the connection string as plugin_opt_store (and
# plugin_opt_policy DIR/policy.yaml, which must exist), `store master-import`
# checks the token key against PostgreSQL, `audit` audits PostgreSQL and calls
# a leftover m2mguard.db stale, backup and restore refuse. No command creates m2mguard.db, and the
# password of the connection string appears in no message.
#   pg_cli.sh M2MGUARD
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mg_test_prefix=mg-pgcli source "$src/tests/lib/harness.sh"
# shellcheck source=../lib/pg.sh
source "$src/tests/lib/pg.sh"
trap 'rc=$?; pg_stop; (exit $rc); cleanup' EXIT
PG_FSYNC=off pg_start
pg_createdb m2mguard
secret=Pw0rd-Not-Shown
conninfo="$(pg_conninfo m2mguard) password=$secret" # trust: libpq never sends it
unset M2MGUARD_HOME
wd=$tmp/wd
out=$tmp/out; err=$tmp/err; all=$tmp/all
: >"$all"
run() { # run WANT_RC args...
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  cat "$err" >>"$all"
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$err") $(tail -n 3 "$out")"
}

"$bin" init "$wd" >/dev/null
echo "store = $conninfo" >>"$wd/m2mguard.conf"
rm -f "$wd/m2mguard.db"
run 0 device add pg-1 --msisdn +4915300000001 --dir "$wd"
run 0 ca init --dir "$wd"
[ "$(pg_psql m2mguard -tA -c 'SELECT count(*) FROM devices')" -eq 1 ] || fail "device not in PostgreSQL"
ok "working directory on PostgreSQL: a device, the CA"

# ---- broker config -----------------------------------------------------------------
plugin=$tmp/m2mguard_mosquitto.so
: >"$plugin"
run 3 broker config --plugin "$plugin" --port 18883 --dir "$wd"
grep -E 'policy.yaml, which does not exist' "$err" >/dev/null || fail "no policy message: $(cat "$err")"
(umask 077; : >"$wd/policy.yaml")
run 0 broker config --plugin "$plugin" --port 18883 --out "$tmp/mosquitto.conf" --dir "$wd"
[ "$(stat -c %a "$tmp/mosquitto.conf")" = 600 ] || fail "mosquitto.conf not 0600"
grep -Fx "plugin_opt_store $conninfo" "$tmp/mosquitto.conf" >/dev/null ||
  fail "plugin_opt_store: $(grep plugin_opt_store "$tmp/mosquitto.conf")"
wdreal=$(realpath "$wd")
grep -Fx "plugin_opt_policy $wdreal/policy.yaml" "$tmp/mosquitto.conf" >/dev/null ||
  fail "plugin_opt_policy: $(grep plugin_opt_policy "$tmp/mosquitto.conf" || echo none)"
if grep -F 'm2mguard.db' "$tmp/mosquitto.conf" >/dev/null; then fail "m2mguard.db in the broker config"; fi
ok "broker config: plugin_opt_store is the connection string, plugin_opt_policy named (refused without it)"

# ---- audit -------------------------------------------------------------------------
run 0 audit --json --fail-on critical --dir "$wd"
python3 - "$out" <<'PY' || fail "audit report: $(cat "$out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["summary"]["complete"] and r["summary"]["devices"] == 1, r["summary"]
assert not [f for f in r["findings"] if "SQLite store" in f["what"]]
PY
(umask 077; : >"$wd/m2mguard.db")
run 0 audit --json --fail-on critical --dir "$wd"
python3 - "$out" <<'PY' || fail "audit report: $(cat "$out")"
import json, sys
r = json.load(open(sys.argv[1]))
f = [f for f in r["findings"] if f["check"] == "secret_files" and "SQLite store" in f["what"]]
assert len(f) == 1 and f[0]["severity"] == "low", r["findings"]
PY
rm -f "$wd/m2mguard.db"
ok "audit: PostgreSQL audited (1 device, complete); a leftover m2mguard.db is a low finding"

# ---- backup and restore: SQLite only, refused -----------------------------------------
run 1 backup "$tmp/b.db" --dir "$wd"
[ ! -e "$tmp/b.db" ] || fail "backup wrote a file"
run 1 restore "$tmp/b.db" --dir "$wd"
grep -F 'pg_restore' "$err" >/dev/null || fail "restore: $(cat "$err")"
ok "backup and restore refused on PostgreSQL (pg_dump, pg_restore)"

# ---- store master-import -------------------------------------------------------------
module=${M2MGUARD_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ -f "$module" ] && command -v softhsm2-util >/dev/null; then
  mkdir -m 700 "$tmp/tokens"
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp" \
    >"$tmp/softhsm2.conf"
  export SOFTHSM2_CONF=$tmp/softhsm2.conf
  softhsm2-util --init-token --free --label m2mguard --pin 1234 --so-pin 5678 >"$tmp/softhsm.log"
  (umask 077; printf '1234\n' >"$tmp/m2mguard.pin")
  uri="pkcs11:token=m2mguard;object=store-master;type=secret-key?pin-source=$tmp/m2mguard.pin&module-path=$module"
  run 0 store master-import "$uri" --dir "$wd"
  mv "$wd/master.key" "$tmp/master.key.offline"
  run 0 device show pg-1 --dir "$wd"
  grep -F 'aes-128' "$out" >/dev/null || fail "device show through the token: $(cat "$out")"
  ok "store master-import: the token key checked against PostgreSQL; keys unwrap through it"
else
  echo "skip: no SoftHSM2 (store master-import)"
fi

[ ! -e "$wd/m2mguard.db" ] || fail "a command created m2mguard.db"
if grep -F -- "$secret" "$all" >/dev/null; then fail "the store password appeared in a message"; fi
ok "no m2mguard.db created; the password in no message"
echo "pg_cli.sh: $pass checks passed"
