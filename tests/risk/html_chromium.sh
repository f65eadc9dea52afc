#!/usr/bin/env bash
# The HTML report renders in headless Chromium without network: charts are
# present in the DOM, no console error, and one screenshot at 1280 px is taken
# and checked to be a non-blank PNG. The layout is measured in a 1280 px window
# for every example model (issue 13 item 9): no horizontal overflow of the page
# (document scrollWidth <= its clientWidth), every table and chart inside the
# window and no table scrolling inside itself; the secure-until chart's axis
# covers the year the headline names; the cost chart's axis brackets every
# amount drawn. $1 = m2mguard binary. Exit 77 (skip) without Chromium.
# MG_RISK_SCREENSHOT=file.png keeps the screenshot.
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
timeout 60 "$chrome" "${flags[@]}" --window-size=1280,1600 --hide-scrollbars \
  --screenshot="$tmp/report.png" "file://$tmp/report.html" >/dev/null 2>&1
if [ -s "$tmp/report.png" ]; then
  ok
  python3 - "$tmp/report.png" <<'PY' && ok || bad "screenshot is blank or not a 1280x1600 PNG"
import sys, struct, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 1600), (w, h)
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

# ---- layout at 1280 px, every example ------------------------------------------
# A script appended to a copy of the report measures the laid-out page and
# writes the figures into the DOM, which --dump-dom prints.
probe='<script>(function(){var d=document.documentElement,o={iw:innerWidth,cw:d.clientWidth,sw:d.scrollWidth,boxes:[]};
document.querySelectorAll("table,svg.chart").forEach(function(t){var r=t.getBoundingClientRect();
o.boxes.push({id:t.id,right:r.right,sw:t.scrollWidth,cw:t.clientWidth,tag:t.tagName});});
var v=document.getElementById("verdict");o.verdict=v?v.textContent:"";
var s=document.getElementById("secure-until");o.from=+s.getAttribute("data-axis-from");o.to=+s.getAttribute("data-axis-to");
var c=document.getElementById("cost-vs-budget");o.cmin=c.getAttribute("data-axis-min-eur");o.cmax=c.getAttribute("data-axis-max-eur");
o.heads=[].map.call(document.querySelectorAll("#findings th"),function(h){return h.textContent.replace(/\u00ad/g,"")});
var p=document.createElement("pre");p.id="layout-probe";p.textContent=JSON.stringify(o);document.body.appendChild(p);})();</script>'
for model in "$src"/examples/risk-*.yaml; do
  name=$(basename "$model" .yaml)
  "$bin" risk analyze "$model" --html "$tmp/$name.html" >/dev/null
  python3 - "$tmp/$name.html" "$tmp/$name.probe.html" "$probe" <<'PY'
import sys
s = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(s.replace("</body>", sys.argv[3] + "</body>"))
PY
  timeout 60 "$chrome" "${flags[@]}" --window-size=1280,1000 --dump-dom \
    "file://$tmp/$name.probe.html" >"$tmp/$name.dom" 2>/dev/null
  if python3 - "$tmp/$name.dom" "$name" <<'PY'
import html, json, re, sys
dom = open(sys.argv[1]).read()
m = re.search(r'<pre id="layout-probe">(.*?)</pre>', dom, re.S)
assert m, "no layout probe in the DOM"
o = json.loads(html.unescape(m.group(1)))
errs = []
assert o["iw"] == 1280, o["iw"]
if o["sw"] > o["cw"]:
    errs.append("page overflows horizontally: scrollWidth %d > %d" % (o["sw"], o["cw"]))
for b in o["boxes"]:
    if b["right"] > o["cw"] + 0.5:
        errs.append("%s#%s ends at %.0f px, past %d" % (b["tag"], b["id"], b["right"], o["cw"]))
    if b["tag"] == "TABLE" and b["sw"] > b["cw"] + 1:
        errs.append("table#%s scrolls inside itself (%d > %d)" % (b["id"], b["sw"], b["cw"]))
# the year the headline names ("secure until: 2031" / "already broken in 2025")
y = re.search(r"secure until: (?:already broken in )?(\d{4})", o["verdict"])
if y and not (o["from"] <= int(y.group(1)) <= o["to"]):
    errs.append("secure-until axis %g..%g misses the headline year %s" % (o["from"], o["to"], y.group(1)))
if not o["cmin"].startswith("1e") or not o["cmax"].startswith("1e"):
    errs.append("cost axis has no range")
for want in ("CEM: required to exploit", "CEM: TOE resistant to"):
    if want not in o["heads"]:
        errs.append("findings table lacks the column %r" % want)
for e in errs:
    print(sys.argv[2] + ": " + e)
sys.exit(1 if errs else 0)
PY
  then ok; else bad "$name: layout at 1280 px"; fi
  # every amount drawn on the cost chart lies within its axis
  python3 - "$tmp/$name.html" "$name" <<'PY' && ok || bad "$name: cost axis does not follow the data"
import re, sys
s = open(sys.argv[1]).read()
svg = s[s.index('id="cost-vs-budget"'):]
svg = svg[:svg.index("</svg>")]
lo, hi = (float(v) for v in re.search(r'data-axis-min-eur="([^"]+)" data-axis-max-eur="([^"]+)"', svg).groups())
def eur(t):
    return float(t.replace(" ", "").replace("EUR", ""))
amounts = [eur(a) for a in re.findall(r"(?:attack cost from|spends up to) (-?[\d .e+-]+) EUR</title>", svg)]
amounts = [a for a in amounts if a > 0]
assert amounts, "no amounts on the chart"
assert lo <= min(amounts) and max(amounts) <= hi, (lo, hi, min(amounts), max(amounts))
# the axis is tight: one decade less at either end would cut an amount off
assert min(amounts) < lo * 10 and max(amounts) > hi / 10, (lo, hi, min(amounts), max(amounts))
PY
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
