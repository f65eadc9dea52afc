#!/usr/bin/env bash
# CLI contract of `m2mguard risk`: verdict exit codes, reports, schema errors
# with locations, --help, catalogue listing, determinism. $1 = m2mguard binary.
set -u
bin=$1
src=${MG_SOURCE_DIR:?}
export M2MGUARD_DATA_DIR=${M2MGUARD_DATA_DIR:-$src/data/risk}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect_rc() { # want cmd...
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else bad "rc $rc (want $want): $*"; cat "$tmp/err"; fi
}

# verdicts: the secured fleets are secure enough (0), the others are not (1)
expect_rc 0 "$bin" risk analyze "$src/examples/risk-door-locks-secured.yaml"
grep -q "SECURE ENOUGH" "$tmp/out" && ok || bad "secured: no verdict line"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-door-locks-sms.yaml"
head -1 "$tmp/out" | grep -q "NOT SECURE ENOUGH" && ok || bad "verdict must come first"
grep -q "cheapest measures" "$tmp/out" && ok || bad "no portfolio in the summary"
expect_rc 0 "$bin" risk analyze "$src/examples/risk-payment-terminals.yaml"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-vending.yaml"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-smart-meters.yaml"

# secure until: expected case 2024 + 2*(63 - log2(7e13 * 50000)) = 2026.8; worst case
# (2^64 trials) two years later; faster-growing budgets bring it forward
expect_rc 1 "$bin" risk analyze "$src/examples/risk-vending.yaml"
grep -q "secure until: 2026 " "$tmp/out" && ok || bad "vending secure until 2026"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-vending.yaml" --worst-case
grep -q "secure until: 2028 " "$tmp/out" && ok || bad "--worst-case: secure until 2028"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-vending.yaml" --budget-growth 0.2
grep -q "secure until: 2025 " "$tmp/out" && ok || bad "--budget-growth 0.2: secure until 2025"
expect_rc 2 "$bin" risk analyze "$src/examples/risk-vending.yaml" --budget-growth -1
# no finding limited by key length: never "already broken"
expect_rc 1 "$bin" risk analyze "$src/examples/risk-door-locks-sms.yaml"
grep -q "already broken" "$tmp/out" && bad "door locks (no key finding) called already broken" || ok

# reports
expect_rc 1 "$bin" risk analyze "$src/examples/risk-vending.yaml" --html "$tmp/r.html" \
  --md "$tmp/r.md" --json "$tmp/r.json" --seed 5 --year 2030
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['verdict']['secure_enough'] is False; assert d['analysis']['year']==2030; assert len(d['findings'])>20; assert d['portfolio']['measures']; assert d['duties']" "$tmp/r.json" && ok || bad "json report"
grep -q "^## Verdict: \*\*NOT secure enough\*\*" "$tmp/r.md" && ok || bad "md verdict"
grep -q "## Duties per role" "$tmp/r.md" && ok || bad "md duties"
for id in verdict risk-matrix cost-vs-budget secure-until cost-vs-residual links defence duties; do
  grep -q "id=\"$id\"" "$tmp/r.html" && ok || bad "html lacks #$id"
done
grep -qiE "https?://|<script" "$tmp/r.html" && bad "html must be self-contained" || ok
# same seed, same report; JSON to stdout
"$bin" risk analyze "$src/examples/risk-vending.yaml" --json - --seed 5 --year 2030 >"$tmp/again.json"
cmp -s "$tmp/r.json" "$tmp/again.json" && ok || bad "same seed must give the same JSON"

# key length sets the secure-until year: the vending fleet's 64-bit key falls
# under the fraudsters' 50 000 EUR in 2026 (2024 + 2 * (63 - log2(7e13 * 5e4))
# = 2026.8), so analysed for 2030 it is broken; the payment terminals' 2-key
# 3DES (80 bits) holds until 2068.
python3 - "$tmp/r.json" <<'PY' && ok || bad "secure-until of the 64-bit key"
import json, sys
d = json.load(open(sys.argv[1]))
f = [x for x in d["findings"] if x["vector"] == "offline_key_bruteforce"][0]
assert f["secure_until_year"] == 2026 and not f["secure_enough"], f
assert d["verdict"]["secure_until_limited_by_key_length"] in (True, False)
PY
"$bin" risk analyze "$src/examples/risk-payment-terminals.yaml" --json "$tmp/p.json" >/dev/null
python3 - "$tmp/p.json" <<'PY' && ok || bad "secure-until of the 3DES key"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verdict"]["secure_enough"] and d["verdict"]["secure_until_year"] == 2068, d["verdict"]
PY

# check: good and bad models; errors carry FILE:LINE:COLUMN and a hint
expect_rc 0 "$bin" risk check "$src/examples/risk-smart-meters.yaml"
printf 'system:\n  name: x\n  yeer: 2025\n' >"$tmp/bad.yaml"
expect_rc 3 "$bin" risk check "$tmp/bad.yaml"
grep -q "bad.yaml:3:3: unknown key 'yeer' (hint: did you mean 'year'?)" "$tmp/err" && ok || bad "located error"
expect_rc 3 "$bin" risk analyze "$tmp/bad.yaml"
expect_rc 3 "$bin" risk check "$tmp/does-not-exist.yaml"
printf '\x00\xff: [' >"$tmp/bin.yaml"
expect_rc 3 "$bin" risk check "$tmp/bin.yaml"

# usage errors
expect_rc 2 "$bin" risk analyze
expect_rc 2 "$bin" risk analyze "$src/examples/risk-vending.yaml" --seed x
expect_rc 2 "$bin" risk analyze "$src/examples/risk-vending.yaml" --year 10
expect_rc 2 "$bin" risk analyze "$src/examples/risk-vending.yaml" --bogus
expect_rc 2 "$bin" risk catalogue fish
expect_rc 2 "$bin" risk frobnicate

# help tells the truth: every option it lists is accepted
for c in analyze check catalogue; do
  expect_rc 0 "$bin" risk $c --help
  grep -q "usage: m2mguard risk $c" "$tmp/out" && ok || bad "$c --help"
done
"$bin" risk analyze --help | grep -q -- "--catalogue DIR" && ok || bad "help lists --catalogue"
expect_rc 0 "$bin" risk --help
grep -q "analyze" "$tmp/out" && ok || bad "risk --help lists analyze"

# issue 13: exact JSON money, the unclosable findings named, policy dates, in every format
expect_rc 1 "$bin" risk analyze "$src/examples/risk-smart-meters.yaml" --json "$tmp/sm.json" --md "$tmp/sm.md"
python3 - "$tmp/sm.json" <<'PY' && ok || bad "smart meters JSON: achievable/not_achievable/exact money"
import json, sys, re
text = open(sys.argv[1]).read()
d = json.loads(text)
v = d["verdict"]
assert v["achievable"] is False, v["achievable"]
gaps = v["not_achievable"]
assert len(gaps) == d["portfolio"]["unclosable_findings"] > 0
for g in gaps:
    assert g["margin_eur"] <= 0 and g["raise_cost_by_more_than_eur"] >= 0 and g["attacker"]
    assert g["margin_eur"] == g["cost_eur_with_all_measures"] - g["willingness_eur"]
# money is exact: below 2^53 no exponent notation (1 234 567 is 1234567, not 1.23457e+06);
# beyond (brute-force costs of 1e24 EUR) the shortest digits that read back the same
for x in re.findall(r'-?[0-9.]+e[+-][0-9]+', text):
    assert abs(float(x)) >= 2**53, "exponent below 2^53: " + x
for x in re.findall(r'"[a-z_]*eur[a-z_]*": (-?[0-9.]+)[,}]', text):
    assert float(x) == float(repr(float(x))), x
assert d["analysis"]["brute_force_case"] in ("expected", "worst")
PY
grep -q "NOT ACHIEVABLE WITH THE CATALOGUE" "$tmp/out" && ok || bad "text headline names what cannot be closed"
grep -q "not achievable with the catalogue" "$tmp/sm.md" && ok || bad "Markdown headline names what cannot be closed"
expect_rc 0 "$bin" risk analyze "$src/examples/risk-payment-terminals.yaml" --json "$tmp/pt.json" --html "$tmp/pt.html"
grep -q "disallowed by policy since 2016" "$tmp/out" && ok || bad "policy date in the text headline"
grep -q "Disallowed by policy since 2016" "$tmp/pt.html" && ok || bad "policy date in the HTML headline"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d["verdict"]; assert v["disallowed_by_policy_since"]==2016 and v["achievable"] is True' "$tmp/pt.json" \
  && ok || bad "policy date in JSON"

# catalogue
expect_rc 0 "$bin" risk catalogue vectors
n=$(grep -c "^  [a-z0-9_]* " "$tmp/out")
[ "$n" -ge 25 ] && ok || bad "fewer than 25 vectors ($n)"
grep -q "source:" "$tmp/out" && ok || bad "sources listed"
expect_rc 0 "$bin" risk catalogue attackers
grep -q "cyber_terrorism" "$tmp/out" && ok || bad "attackers listed"
expect_rc 0 "$bin" risk catalogue measures
expect_rc 0 "$bin" risk catalogue --catalogue "$src/data/risk" attackers
M2MGUARD_DATA_DIR=/nonexistent expect_rc 3 "$bin" risk catalogue

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
