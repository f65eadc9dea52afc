#!/usr/bin/env bash
# The live loop (issue 11 item 5): `m2mguard risk analyze --fleet WORKDIR` on a
# real working directory made by `m2mguard init` and `device add` (AES-128,
# AES-256 and one 3DES device), with security events and a detector alert
# written into its store. Checks the counts, the 3DES vector flagged with its
# policy and secure-until years, the observed-attack sections, the verdict
# change under a large burst, JSON equal to the Markdown figures (exactly),
# no key in any report, and the CLI contract. $1 = m2mguard binary.
bin=${1:?m2mguard binary}
src=${MG_SOURCE_DIR:?}
mg_test_prefix=mg-fleet source "$src/tests/lib/harness.sh"
export M2MGUARD_DATA_DIR=${M2MGUARD_DATA_DIR:-$src/data/risk}
unset M2MGUARD_HOME

wd=$tmp/wd
"$bin" init "$wd" >"$tmp/init.log"
for i in 1 2 3; do
  "$bin" device add "meter$i" --msisdn "+4915100000$i" --class meter --dir "$wd" >>"$tmp/init.log"
done
"$bin" device add legacy1 --msisdn +49151000009 --class legacy --alg 3des2 --dir "$wd" >>"$tmp/init.log"
"$bin" device add lock1 --msisdn +49151000010 --class lock --alg aes256 --dir "$wd" >>"$tmp/init.log"
"$bin" device quarantine meter3 --dir "$wd" >>"$tmp/init.log"
ok "working directory with 5 devices (3 AES-128 meters, one quarantined; 3DES; AES-256)"

# analyze RC OUT ARGS...: runs the fleet analysis, checks its exit code
analyze() {
  local want=$1 out=$2; shift 2
  local rc=0
  "$bin" risk analyze --fleet "$wd" "$@" >"$out" 2>"$tmp/err.log" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$tmp/err.log" >&2; fail "rc $rc, want $want: risk analyze --fleet $*"; }
}
# jqv FILTER FILE: one value
jqv() { jq -r "$1" "$2"; }

# ---- no evidence yet -------------------------------------------------------------
analyze 1 "$tmp/r0.md"
analyze 1 "$tmp/r0.json" --format json
jq -e . "$tmp/r0.json" >/dev/null || fail "JSON does not parse"
[ "$(jqv .fleet.devices "$tmp/r0.json")" = 5 ] || fail "devices"
[ "$(jqv .fleet.quarantined "$tmp/r0.json")" = 1 ] || fail "quarantined"
[ "$(jqv '.fleet.classes[] | select(.class=="meter") | .keys.aes128' "$tmp/r0.json")" = 3 ] || fail "meter keys"
[ "$(jqv '.fleet.classes[] | select(.class=="legacy") | .keys["3des2"]' "$tmp/r0.json")" = 1 ] || fail "3des2 key"
[ "$(jqv '.fleet.classes[] | select(.class=="lock") | .keys.aes256' "$tmp/r0.json")" = 1 ] || fail "aes256 key"
[ "$(jqv .fleet.shared_keys "$tmp/r0.json")" = 0 ] || fail "random per-device keys are not shared"
[ "$(jqv .fleet.mac_bits "$tmp/r0.json")" = 64 ] || fail "checksum bits"
grep -Fq '| meter | 3 | 1 | 0 | 3 | 0 | 3 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |' "$tmp/r0.md" || fail "meter row in Markdown"
grep -Fq '| legacy | 1 | 0 | 0 | 1 | 0 | 0 | 0 | 0 | 1 | 0 | 0 | 0 | 0 |' "$tmp/r0.md" || fail "legacy row in Markdown"
ok "counts per class, bearer and key algorithm (JSON and Markdown)"

[ "$(jqv '.keys[] | select(.target=="sms_legacy") | .key' "$tmp/r0.json")" = 3des2 ] || fail "3DES link"
[ "$(jqv '.keys[] | select(.target=="sms_legacy") | .weak' "$tmp/r0.json")" = true ] || fail "3DES not flagged"
[ "$(jqv '.keys[] | select(.target=="sms_legacy") | .disallowed_since' "$tmp/r0.json")" = 2016 ] || fail "3DES policy year"
[ "$(jqv '.keys[] | select(.target=="sms_meter") | .weak' "$tmp/r0.json")" = false ] || fail "AES flagged"
grep -Eq '^\| sms_legacy \| 3des2 \| offline_key_bruteforce \| .* \| 2016 \| WEAK' "$tmp/r0.md" || fail "3DES row in Markdown"
grep -Fq 'No attack observed in the window' "$tmp/r0.md" || fail "no-evidence wording"
[ "$(jqv '.observed | length' "$tmp/r0.json")" = 0 ] || fail "observed without alerts"
ok "3DES link flagged weak, disallowed by policy since 2016; no attack observed"

# no key material in any report (the keys are compared by digest only)
for f in "$wd"/devices/*.prov; do
  for k in $(sed -n 's/^ki[cd]=//p' "$f"); do
    if grep -qi "$k" "$tmp/r0.md" "$tmp/r0.json"; then fail "a key of $f is in a report"; fi
  done
done
ok "no key in the reports"

# ---- evidence: 400 checksum failures from meter1's number and the detector's alert
now=$(date +%s)
sqlite3 "$wd/m2mguard.db" <<SQL
INSERT INTO events(time, device_id, bearer, source, kind, reason, count, last, auth)
  VALUES ($((now - 600)), 0, 'sms', '+49151000001', 'auth_fail', 'checksum mismatch', 400, $((now - 300)), 0),
         ($((now - 590)), 0, 'sms', '+4917099999', 'unknown_sender', 'not registered', 1, 0, 0);
INSERT INTO alerts(rule, scope, device_id, source, severity, auth, first_evidence, detected_ms,
                   evidence, evidence_count, summary, response, state, updated)
  VALUES ('checksum_burst', 'source', 0, '+49151000001', 'high', 0, $((now - 600)),
          $(( (now - 598) * 1000 )), '7', 400, '400 bad checksums in 300 s', 'throttle', 0, $now);
SQL
analyze 1 "$tmp/r1.md"
analyze 1 "$tmp/r1.json" --format json
[ "$(jqv '.evidence.alert_count' "$tmp/r1.json")" = 1 ] || fail "alert count"
[ "$(jqv '.evidence.events[] | select(.kind=="auth_fail") | .count' "$tmp/r1.json")" = 400 ] || fail "aggregated event count"
[ "$(jqv '.observed[0].vector' "$tmp/r1.json")" = sms_mac_online_forgery ] || fail "mapped vector"
[ "$(jqv '.observed[0].target' "$tmp/r1.json")" = sms_meter ] || fail "attacked link (meter1's number)"
[ "$(jqv '.observed[0].spent_eur' "$tmp/r1.json")" = 20 ] || fail "spent: 400 SMS at 0.05 EUR"
[ "$(jqv '.fleet.ttd_median_s' "$tmp/r1.json")" = 2 ] || fail "observed time to detect"
[ "$(jqv '.stop[0].prevents[0].measure' "$tmp/r1.json")" = signed_commands ] || fail "measure preventing the forgery"
grep -Fq '## Observed attacks' "$tmp/r1.md" || fail "observed section"
grep -Eq '^\| checksum_burst \| sms_mac_online_forgery \| sms_meter \| 400 \| 20 \|' "$tmp/r1.md" || fail "observed row"
grep -Fq '## Where the observed attacks change the verdict' "$tmp/r1.md" || fail "change section"
grep -Fq '## Measures that stop their repetition' "$tmp/r1.md" || fail "stop section"
grep -Eq '^\| sms_meter \| sms_mac_online_forgery \| .*signed_commands' "$tmp/r1.md" || fail "stop row"
ok "checksum burst: observed attack on sms_meter, 20 EUR spent, signed_commands prevents it"

# JSON equals the Markdown figures, exactly (parsed as the same doubles)
json_eq_md() {
  python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read().splitlines()
def row(prefix):
    for l in md:
        if l.startswith('| ' + prefix + ' |'):
            return [c.strip() for c in l.strip('|').split('|')]
    sys.exit('no Markdown row ' + prefix)
def same(md_cell, v, what):
    if v is None:
        if md_cell in ('unbounded', 'not limited by key length', 'never'):
            return
        sys.exit('%s: JSON null, Markdown %s' % (what, md_cell))
    if float(md_cell) != float(v):
        sys.exit('%s: JSON %r != Markdown %s' % (what, v, md_cell))
b, a = j['verdict']['without_evidence'], j['verdict']['with_evidence']
r = row('residual risk (EUR)'); same(r[1], b['residual_eur'], 'residual'); same(r[2], a['residual_eur'], 'residual with')
r = row('smallest margin (EUR)'); same(r[1], b['min_margin_eur'], 'margin'); same(r[2], a['min_margin_eur'], 'margin with')
r = row('findings not secure enough'); same(r[1], b['insecure'], 'insecure'); same(r[2], a['insecure'], 'insecure with')
r = row('secure until'); same(r[1], b['secure_until'], 'until'); same(r[2], a['secure_until'], 'until with')
for o in j['observed']:
    r = row('%s | %s | %s' % (o['rule'], o['vector'], o['target']))
    for i, k in enumerate(['occurrences', 'spent_eur', 'probability', 'probability_with_evidence'], 3):
        same(r[i], o[k], k)
    for i, k in enumerate(['margin_eur', 'margin_with_evidence_eur', 'demand_eur', 'demand_with_evidence_eur'], 9):
        same(r[i], o[k], k)
for k in j['keys']:
    r = row(k['target'])
    same(r[3], k['secure_until'], 'key until'); same(r[5], k['disallowed_since'], 'disallowed')
for c in j['changes']:
    r = row('%s | %s' % (c['vector'], c['target']))
    same(r[4], c['margin_eur'], 'change margin'); same(r[5], c['margin_with_evidence_eur'], 'change margin with')
for s in j['stop']:
    r = row('%s | %s' % (s['target'], ', '.join(s['vectors'])))
    same(r[3], s['cost_eur'], 'stop cost')
PY
}
json_eq_md "$tmp/r1.json" "$tmp/r1.md" || fail "JSON and Markdown figures differ (small burst)"
ok "JSON figures equal the Markdown figures (small burst)"

# ---- a burst large enough to buy something else: the verdict changes --------------
sqlite3 "$wd/m2mguard.db" "UPDATE events SET count = 400000 WHERE kind = 'auth_fail';
                           UPDATE alerts SET evidence_count = 400000;"
analyze 1 "$tmp/r2.md"
analyze 1 "$tmp/r2.json" --format json
[ "$(jqv '.observed[0].spent_eur' "$tmp/r2.json")" = 20000 ] || fail "spent: 400000 SMS"
[ "$(jqv '.changes | length' "$tmp/r2.json")" -ge 1 ] || fail "a 20000 EUR attacker changes no verdict"
[ "$(jqv '.changes[0].secure' "$tmp/r2.json")" = true ] || fail "change direction"
[ "$(jqv '.changes[0].secure_with_evidence' "$tmp/r2.json")" = false ] || fail "change direction"
[ "$(jqv '.budgets[] | select(.attacker=="buzz_and_glory") | .budget_with_evidence_eur[0]' "$tmp/r2.json")" = 20000 ] \
  || fail "budget floor"
v=$(jqv '.changes[0].vector' "$tmp/r2.json"); t=$(jqv '.changes[0].target' "$tmp/r2.json")
grep -Eq "^\\| $v \\| $t \\| yes \\| no \\|" "$tmp/r2.md" || fail "change row in Markdown"
json_eq_md "$tmp/r2.json" "$tmp/r2.md" || fail "JSON and Markdown figures differ (large burst)"
ok "400000 trials: budgets raised to 20000 EUR, $v on $t no longer secure enough; JSON = Markdown"

# ---- an analyst's model with the fleet's facts: the 3DES secure-until year ----------
# secure enough on its own figures; the 400000-trial attacker changes that (exit 1)
analyze 1 "$tmp/r3.json" --format json --model "$src/examples/risk-payment-terminals.yaml"
[ "$(jqv '.verdict.without_evidence.secure' "$tmp/r3.json")" = true ] || fail "payment terminals: secure without evidence"
[ "$(jqv '.verdict.with_evidence.secure' "$tmp/r3.json")" = false ] || fail "payment terminals: the evidence changes the verdict"
[ "$(jqv '.model' "$tmp/r3.json")" = "$src/examples/risk-payment-terminals.yaml" ] || fail "model name"
[ "$(jqv '.fleet.devices' "$tmp/r3.json")" = 5 ] || fail "model devices"
year=$(jqv '.keys[] | select(.target=="key_loading_sms") | .secure_until' "$tmp/r3.json")
case $year in 20[2-9][0-9]|2[1-9][0-9][0-9]) ;; *) fail "3DES secure-until year: '$year'";; esac
[ "$(jqv '.keys[] | select(.target=="key_loading_sms") | .key' "$tmp/r3.json")" = 3des2 ] || fail "the fleet's weakest key"
analyze 1 "$tmp/r3.md" --model "$src/examples/risk-payment-terminals.yaml"
grep -Eq "^\\| key_loading_sms \\| 3des2 \\| offline_key_bruteforce \\| $year \\| [0-9]+ \\| 2016 \\| WEAK" "$tmp/r3.md" \
  || fail "3DES row with its secure-until year"
json_eq_md "$tmp/r3.json" "$tmp/r3.md" || fail "JSON and Markdown figures differ (--model)"
ok "--model: the fleet's 3des2 key on key_loading_sms, secure until $year, WEAK; secure enough only without the evidence"

# ---- the built model round-trips; HTML; CLI contract --------------------------------
analyze 1 "$tmp/r4.md" --emit-model "$tmp/model.yaml" --since 1
"$bin" risk check "$tmp/model.yaml" >"$tmp/check.log" || fail "the emitted model does not check"
grep -Fq 'id: "sms_legacy", kind: sms' "$tmp/model.yaml" || fail "emitted model: legacy link"
grep -Fq 'algorithm: 3des2' "$tmp/model.yaml" || fail "emitted model: 3des2"
analyze 1 "$tmp/r4.html" --format html --output - 
grep -Fq '<h2>Observed attacks</h2>' "$tmp/r4.html" || fail "HTML sections"
analyze 1 /dev/null --format json --output "$tmp/r5.json"
[ "$(jq -c 'del(.window)' "$tmp/r5.json")" = "$(jq -c 'del(.window)' "$tmp/r2.json")" ] \
  || fail "--output differs from stdout (same seed)"
ok "--emit-model passes 'risk check'; HTML; --output; deterministic"

"$bin" risk analyze --help >"$tmp/help.txt"
grep -Fq -- '--fleet WORKDIR' "$tmp/help.txt" || fail "--help: --fleet"
grep -Fq -- '--since DAYS' "$tmp/help.txt" || fail "--help: --since"
rc=0; "$bin" risk analyze --fleet "$wd" "$src/examples/risk-vending.yaml" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--fleet with a MODEL argument: rc $rc"
rc=0; "$bin" risk analyze --fleet "$wd" --format pdf >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--format pdf: rc $rc"
rc=0; "$bin" risk analyze --since 3 "$src/examples/risk-vending.yaml" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--since without --fleet: rc $rc"
rc=0; "$bin" risk analyze --fleet "$wd" --emit-model - >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "model and report both on stdout: rc $rc"
rc=0; "$bin" risk analyze --fleet "$tmp/nowhere" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "missing working directory: rc $rc"
ok "usage errors 2, missing working directory 3"
echo "fleet: $pass checks passed"
