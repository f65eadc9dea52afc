#!/usr/bin/env bash
# The HTML report renders in headless Chromium without network: charts are
# present in the DOM, no console error, and one screenshot is taken and checked
# to be a non-blank PNG. $1 = m2mguard binary. Exit 77 (skip) without Chromium.
set -u
bin=$1
src=${MG_SOURCE_DIR:?}
export M2MGUARD_DATA_DIR=${M2MGUARD_DATA_DIR:-$src/data/risk}
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then echo "chromium not installed: skipped"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
"$bin" risk analyze "$src/examples/risk-door-locks-sms.yaml" --html "$tmp/report.html" >/dev/null
[ -s "$tmp/report.html" ] && ok || bad "no report"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --disable-dev-shm-usage --user-data-dir="$tmp/profile")
timeout 60 "$chrome" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom \
  "file://$tmp/report.html" >"$tmp/dom.html" 2>"$tmp/console.log"
for id in verdict risk-matrix cost-vs-budget secure-until cost-vs-residual; do
  grep -q "id=\"$id\"" "$tmp/dom.html" && ok || bad "rendered DOM lacks #$id"
done
n=$(grep -o "<svg" "$tmp/dom.html" | wc -l)
[ "$n" -ge 4 ] && ok || bad "expected 4 SVG charts, got $n"
grep -q "<rect" "$tmp/dom.html" && ok || bad "bar chart has no bars"
grep -q "<polyline" "$tmp/dom.html" && ok || bad "curve missing"
if grep -E "CONSOLE\(|Uncaught|console.error" "$tmp/console.log" | grep -v "dbus" >/dev/null; then
  bad "console errors:"; grep -E "CONSOLE\(|Uncaught" "$tmp/console.log" | head
else ok; fi
timeout 60 "$chrome" "${flags[@]}" --window-size=1200,1600 --hide-scrollbars \
  --screenshot="$tmp/report.png" "file://$tmp/report.html" >/dev/null 2>&1
if [ -s "$tmp/report.png" ]; then
  ok
  python3 - "$tmp/report.png" <<'PY' && ok || bad "screenshot is blank or not a 1200x1600 PNG"
import sys, struct, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1200, 1600), (w, h)
# decompress and count distinct row bytes: a blank page is one colour
idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
raw = zlib.decompress(idat)
assert len(set(raw[: 400000])) > 8, "blank"
PY
  [ -n "${MG_RISK_SCREENSHOT:-}" ] && cp "$tmp/report.png" "$MG_RISK_SCREENSHOT"
else
  bad "no screenshot"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
