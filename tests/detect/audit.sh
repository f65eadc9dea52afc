#!/usr/bin/env bash
# `m2mguard audit` on real working directories: init, devices (AES, 3DES, IP),
# the CA and a short-lived certificate; a loose provisioning file, a loose
# master key; a CA made with the openssl CLI (RSA-1024, expiring) and a CRL
# whose nextUpdate has passed (python3 cryptography); --config, --json, the
# exit codes, and that no key appears in any output.
bin=$1
mg_test_prefix=mg-audit source "${MG_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/harness.sh"
unset M2MGUARD_HOME
out=$tmp/out; err=$tmp/err; all=$tmp/all
: >"$all"
run() { # run WANT_RC args...: stdout in $out, stderr in $err
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  cat "$out" "$err" >>"$all"
  [ "$rc" -eq "$want" ] || fail "'audit $*': exit $rc, want $want: $(head -c 600 "$err") $(tail -n 3 "$out")"
}
# checks on the JSON report: py EXPR... (r = the report, f = its findings); each must
# be true (one python3 per report: its start-up is slow on a busy machine)
py() {
  python3 - "$out" "$@" <<'EOF' || fail "JSON check failed"
import json, sys
r = json.load(open(sys.argv[1]))
f = r["findings"]
def has(check, sev=None, text=""):
    return [x for x in f if x["check"] == check and (sev is None or x["severity"] == sev)
            and (text in x["what"] or text in x["where"])]
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("false: " + e, file=sys.stderr)
if bad:
    print(json.dumps(r, indent=1), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

wd=$tmp/wd
"$bin" init "$wd" >/dev/null
"$bin" device add m1 --msisdn +491000001 --dir "$wd" >/dev/null
"$bin" device add legacy --msisdn +491000002 --alg 3des2 --tar 4d4702 --dir "$wd" >/dev/null
"$bin" device add cam --ip --dir "$wd" >/dev/null
"$bin" ca init --dir "$wd" >/dev/null
"$bin" ca issue cam --genkey --key-out "$wd/cam.key" --days 10 --out "$wd/cam.crt" --dir "$wd" >/dev/null

# ---- help and usage ---------------------------------------------------------------
run 0 audit --help
grep -q -- '--fail-on' "$out" || fail "--help does not describe --fail-on"
run 2 audit --fail-on severe --dir "$wd"
run 2 audit --dir "$wd" extra
run 2 audit --dir "$tmp/none"
ok "help and usage errors (exit 2)"

# ---- the first audit: 3DES (high), a certificate expiring, no detector ----------
run 1 audit --json --dir "$wd"
# the secure-until year is the analysis engine's (docs/risk-method.md 1.8, data/risk:
# 80-bit strength against cyber_crime's 500 000 EUR) and the NIST year 2016
py 'len(has("weak_algorithm", "high", "legacy")) == 1' \
   '[x.get("secure_until_year") for x in has("weak_algorithm")] == [2052]' \
   'has("weak_algorithm")[0]["disallowed_since"] == 2016' \
   'len(has("certificates", "medium", "expires in 10 days")) == 1' \
   'len(has("event_logging", "medium", "never run")) == 1' \
   'r["summary"]["high"] == 1 and r["summary"]["critical"] == 0' \
   'r["summary"]["devices"] == 3 and r["summary"]["exit"] == 1 and r["summary"]["complete"]' \
   'not has("secret_files") and not has("shared_keys")'
ok "3DES with the engine's year 2052, certificate expiring, detector never run; exit 1"
run 0 audit --fail-on critical -C "$wd"
grep -q '^\[high\] weak_algorithm: 1 device with 3des2' "$out" || fail "text report: $(cat "$out")"
grep -q '^audit: 3 findings (critical 0, high 1, medium 2' "$out" || fail "summary: $(tail -1 "$out")"
ok "--fail-on critical (and -C DIR): the same findings, exit 0"

# ---- a loose provisioning file -----------------------------------------------------
chmod 644 "$wd/devices/m1.prov"
run 1 audit --json --fail-on high --dir "$wd"
py 'len(has("secret_files", "high", "m1.prov")) == 1 and "0644" in has("secret_files")[0]["what"]'
chmod 600 "$wd/devices/m1.prov"
"$bin" device delete legacy --yes --dir "$wd" >/dev/null
run 0 audit --dir "$wd"
run 1 audit --fail-on medium --dir "$wd"
ok "chmod 644 on a .prov is high; fixed and the 3DES device gone: exit 0 (1 at --fail-on medium)"

# ---- --config: thresholds and event logging --------------------------------------
cp "$wd/m2mguard.conf" "$tmp/alt.conf"
printf 'events_per_s = 0\naudit_cert_expiry_days = 5\n' >>"$tmp/alt.conf"
chmod 600 "$tmp/alt.conf"
run 1 audit --json --config "$tmp/alt.conf" --dir "$wd"
py 'len(has("event_logging", "high", "events_per_s = 0")) == 1 and not has("certificates")'
printf 'audit_silent_days = x\n' >>"$tmp/alt.conf"
run 2 audit --config "$tmp/alt.conf" --dir "$wd"
grep -q 'audit_silent_days' "$err" || fail "bad setting not named: $(cat "$err")"
ok "--config: events_per_s = 0 is high, thresholds read, a bad value is exit 2"

# events_retention_days: the audit reads the range and the meaning of the key table
# and the gateway: 0 is "no age limit" (low), -1 is refused by both (config check too)
cp "$wd/m2mguard.conf" "$tmp/ret.conf"
chmod 600 "$tmp/ret.conf"
printf 'events_retention_days = 0\n' >>"$tmp/ret.conf"
run 0 audit --json --fail-on critical --config "$tmp/ret.conf" --dir "$wd"
py 'len(has("event_logging", "low", "kept for ever")) == 1'
"$bin" config check "$tmp/ret.conf" >/dev/null || fail "config check refuses events_retention_days = 0"
sed -i 's/^events_retention_days = 0$/events_retention_days = 10/' "$tmp/ret.conf"
run 0 audit --json --fail-on critical --config "$tmp/ret.conf" --dir "$wd"
py 'len(has("event_logging", "medium", "kept only 10 days")) == 1 and not has("event_logging", "low")'
sed -i 's/^events_retention_days = 10$/events_retention_days = -1/' "$tmp/ret.conf"
run 2 audit --config "$tmp/ret.conf" --dir "$wd"
grep -q 'events_retention_days' "$err" || fail "-1 not named: $(cat "$err")"
set +e; "$bin" config check "$tmp/ret.conf" >/dev/null 2>"$tmp/check.err"; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "config check accepts events_retention_days = -1 (exit $rc)"
grep -q 'events_retention_days' "$tmp/check.err" || fail "config check: $(cat "$tmp/check.err")"
ok "events_retention_days: 0 is no age limit (low), 10 is short (medium), -1 refused by audit and config check"

# ---- a master key readable by others: the store is refused, the files are audited --
chmod 644 "$wd/master.key"
run 1 audit --json --dir "$wd"
py 'len(has("secret_files", "high", "master.key")) == 1 and not r["summary"]["complete"]'
grep -q 'only the file checks run' "$err" || fail "no notice: $(cat "$err")"
chmod 600 "$wd/master.key"
ok "master.key 0644: high finding, audit incomplete, exit 1"

# ---- a weak CA made with the openssl CLI, and a stale CRL ---------------------------
wd2=$tmp/wd2
"$bin" init "$wd2" >/dev/null
mkdir -m 700 "$wd2/ca"
openssl req -x509 -newkey rsa:1024 -nodes -keyout "$wd2/ca/root.key" -out "$wd2/ca/root.crt" \
  -days 10 -subj "/CN=weak root" 2>/dev/null
chmod 644 "$wd2/ca/root.key"
python3 - "$wd2/ca" <<'EOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
d = sys.argv[1]
key = serialization.load_pem_private_key(open(d + "/root.key", "rb").read(), None)
ca = x509.load_pem_x509_certificate(open(d + "/root.crt", "rb").read())
now = datetime.datetime.now(datetime.timezone.utc)
crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
       .last_update(now - datetime.timedelta(days=10))
       .next_update(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
open(d + "/crl.pem", "wb").write(crl.public_bytes(serialization.Encoding.PEM))
EOF
run 1 audit --json --dir "$wd2"
py 'len(has("ca", "high", "RSA of 1024 bits")) == 1' \
   'len(has("ca", "high", "expires in 10 days")) == 1' \
   'len(has("ca", "high", "nextUpdate")) == 1' \
   'len(has("secret_files", "high", "root.key")) == 1'
ok "CA: RSA-1024, expiring, CRL nextUpdate past, key file 0644"

# ---- no key material in any output -----------------------------------------------
for k in $(sed -n 's/^\(kic\|kid\)=//p' "$wd/devices/m1.prov"); do
  [ ${#k} -ge 32 ] || fail "no key read from the .prov"
  if grep -qi -- "$k" "$all"; then fail "a key appeared in the output"; fi
done
ok "no key in any output"
echo "audit.sh: $pass checks passed"
