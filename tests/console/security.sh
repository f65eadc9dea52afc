#!/usr/bin/env bash
# The web console's security (issue 16 item 3, docs/console.md "Security model"):
# a real working directory (m2mguard init, device add), accounts made with
# `m2mguard console user`, the console on a free port, curl as the client.
#   every POST refuses a missing or wrong CSRF token (403); roles (viewer cannot
#   act, operator cannot rotate/revoke); login rate limit (429 + Retry-After);
#   unknown user and wrong password answer alike; security headers on every
#   answer; cookie flags; 401/303 without a session; SSE delivers a new event;
#   no key material in any answer; oversized bodies refused (413); TLS < 1.2
#   refused; logout ends the session; the user CLI (0600, Argon2id).
# usage: security.sh path/to/m2mguard
bin=$(realpath "$1")
mg_test_prefix=mg-console source "$(dirname "$0")/../lib/harness.sh"
cd "$tmp"
export M2MGUARD_HOME="$tmp/w"

"$bin" init "$M2MGUARD_HOME" > init.log
"$bin" device add meter-1 --msisdn +491510000001 --class meter > dev.log
"$bin" device add meter-2 --msisdn +491510000002 --class meter >> dev.log
# the keys the answers must never contain
kic=$(sed -n 's/^kic=//p' "$M2MGUARD_HOME/devices/meter-1.prov")
kid=$(sed -n 's/^kid=//p' "$M2MGUARD_HOME/devices/meter-1.prov")
[ ${#kic} -ge 32 ] && [ ${#kid} -ge 32 ] || fail "no keys in the provisioning file"
master=$(tr -d '[:space:]' < "$M2MGUARD_HOME/master.key")
# the test's accounts use OWASP's minimum cost (the floor) to keep the test short
printf 'console_argon2_t=2\nconsole_argon2_m_kib=19456\nconsole_ping_s=2\nconsole_login_failures=3\n' >> "$M2MGUARD_HOME/m2mguard.conf"

# ---- the user command ----------------------------------------------------------------
# three at once: the users file's lock keeps every account
printf 'viewer-pass-1\n' | "$bin" console user add vera --role viewer > users1.log &
u1=$!
printf 'operator-pass-1\n' | "$bin" console user add olga --role operator > users2.log &
u2=$!
printf 'security-pass-1\n' | "$bin" console user add sam --role security > users3.log &
u3=$!
wait $u1 && wait $u2 && wait $u3 || fail "console user add"
users="$M2MGUARD_HOME/console/users"
[ "$(stat -c %a "$users")" = 600 ] || fail "users file mode $(stat -c %a "$users")"
[ "$(stat -c %a "$M2MGUARD_HOME/console")" = 700 ] || fail "console directory not 0700"
[ "$(grep -c ':\$argon2id\$v=19\$m=19456,t=2,p=1\$' "$users")" = 3 ] || fail "not three Argon2id hashes"
! grep -q 'pass-1' "$users" || fail "a password in the users file"
printf 'short\n' | "$bin" console user add tom --role viewer > short.log 2>&1 && fail "a 5-octet password accepted"
printf 'operator-pass-2\n' | "$bin" console user add olga --role viewer > dup.log 2>&1 && fail "a second olga"
"$bin" console user add tom --role admin < /dev/null > badrole.log 2>&1 && fail "role admin accepted"
printf 'pw-in-a-file-1\n' > pw.txt && chmod 600 pw.txt
"$bin" console user add tmp2 --role viewer --password-file pw.txt >> users.log
chmod 644 pw.txt
"$bin" console user passwd tmp2 --password-file pw.txt > pw644.log 2>&1 && fail "a 0644 password file accepted"
"$bin" console user list > list.txt
[ "$(sort list.txt | cut -f1,2 | tr '\t\n' ': ')" = "olga:operator sam:security tmp2:viewer vera:viewer " ] \
  || fail "user list: $(cat list.txt)"
"$bin" console user del tmp2 >> users.log
"$bin" console user del tmp2 > del2.log 2>&1 && fail "a second del"
[ "$("$bin" console user list | wc -l)" = 3 ] || fail "user del"
"$bin" console user --help | grep -q 'never an argument' || fail "--help"
ok "console user: 0600 file, Argon2id hashes, concurrent adds kept, passwords from stdin or a 0600 file, roles checked"

# ---- start the console ---------------------------------------------------------------------
"$bin" console run --listen 127.0.0.1:0 > console.log 2> console.err &
pids+=($!)
wait_for 20 grep -q 'listening on https://' console.log || fail "the console did not start"
port=$(sed -n 's/.*listening on https:\/\/127.0.0.1:\([0-9]*\).*/\1/p' console.log)
base="https://127.0.0.1:$port"
[ "$(stat -c %a "$M2MGUARD_HOME/console/tls.key")" = 600 ] || fail "tls.key not 0600"
C=(curl -sk --max-time 20)

# TLS 1.2+ only
"${C[@]}" --tlsv1.0 --tls-max 1.1 -o /dev/null "$base/login" && fail "TLS 1.1 accepted"
"${C[@]}" --tlsv1.2 --tls-max 1.2 -o /dev/null "$base/login" || fail "TLS 1.2 refused"
"${C[@]}" --tlsv1.3 -o /dev/null "$base/login" || fail "TLS 1.3 refused"
ok "TLS 1.2 and 1.3 accepted, 1.0/1.1 refused"

# every answer carries the security headers
check_headers() { # FILE (headers of one answer)
  local h=$1
  grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'" "$h" \
    || fail "CSP missing in $(head -1 "$h")"
  grep -qi '^X-Frame-Options: DENY' "$h" || fail "X-Frame-Options in $h"
  grep -qi '^X-Content-Type-Options: nosniff' "$h" || fail "nosniff in $h"
  grep -qi '^Referrer-Policy: no-referrer' "$h" || fail "Referrer-Policy in $h"
  grep -qi '^Strict-Transport-Security: max-age=31536000' "$h" || fail "HSTS in $h"
}
# one curl for many requests (one TLS connection): batch ARGS... where each
# request's options end with its URL and requests are separated by --next
paths=(/ /login /device?name=meter-1 /events /api/me /api/fleet /static/app.js /static/app.css /static/nope /nope)
args=()
n=0
for path in "${paths[@]}"; do
  n=$((n + 1))
  [ $n -gt 1 ] && args+=(--next)
  args+=(-sk -D "h$n.txt" -o "b$n.txt" "$base$path")
done
curl --max-time 20 "${args[@]}"
for i in $(seq 1 $n); do check_headers "h$i.txt"; done
status() { "${C[@]}" -o /dev/null -w '%{http_code}' "$@"; }
grep -q '^HTTP/1.1 303' h1.txt || fail "/ without a session"
grep -qi '^Location: /login' h1.txt || fail "/ does not send to /login"
grep -q '^HTTP/1.1 401' h6.txt || fail "/api/fleet without a session"
grep -q '"error"' b6.txt || fail "401 without a JSON error"
grep -q '^HTTP/1.1 200' h7.txt || fail "static file"
grep -q '^HTTP/1.1 404' h9.txt || fail "a missing static file"
grep -qi '^Cache-Control: no-cache' h7.txt || fail "static files: Cache-Control no-cache"
grep -qi '^Content-Type: text/javascript' h7.txt || fail "app.js Content-Type"
grep -qi '^Cache-Control: no-store' h2.txt || fail "pages: Cache-Control no-store"
[ "$(status -X PUT "$base/api/me")" = 405 ] || fail "PUT"
ok "security headers on every answer; 303 to /login for pages, 401 for /api without a session"

# ---- login -------------------------------------------------------------------------------------
# login JAR USER PASSWORD: prints "CODE LOCATION"
login() {
  local jar=$1 page tok
  page=$("${C[@]}" -c "$jar" -b "$jar" "$base/login")
  tok=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
  [ -n "$tok" ] || fail "no CSRF token in the login page"
  "${C[@]}" -c "$jar" -b "$jar" -D "$jar.h" -o "$jar.body" -w '%{http_code} %{redirect_url}' \
    --data-urlencode "csrf=$tok" --data-urlencode "user=$2" --data-urlencode "password=$3" "$base/login"
}
r=$(login v.jar vera viewer-pass-1); [ "${r%% *}" = 303 ] && [ "${r#* }" = "$base/" ] || fail "vera: $r"
grep -i '^Set-Cookie: mg_session=' v.jar.h > cookie.txt || fail "no session cookie"
grep -qE '^Set-Cookie: mg_session=[A-Za-z0-9_-]{43}; Path=/; Secure; HttpOnly; SameSite=Strict' cookie.txt \
  || fail "cookie flags: $(cat cookie.txt)"
check_headers v.jar.h
r=$(login o.jar olga operator-pass-1); [ "${r%% *}" = 303 ] || fail "olga: $r"
r=$(login s.jar sam security-pass-1); [ "${r%% *}" = 303 ] || fail "sam: $r"
# the login form without its token, or with a wrong one: 403
"${C[@]}" -c x.jar -b x.jar -o /dev/null "$base/login"
[ "$(status -b x.jar --data 'user=sam&password=security-pass-1' "$base/login")" = 403 ] || fail "login without CSRF"
[ "$(status -b x.jar --data 'csrf=AAAA&user=sam&password=security-pass-1' "$base/login")" = 403 ] || fail "login with a wrong CSRF"
ok "login: session cookie 256-bit base64url, Secure, HttpOnly, SameSite=Strict; login form CSRF"

csrf_of() { "${C[@]}" -b "$1" "$base/api/me" | jq -r .csrf; }
vt=$(csrf_of v.jar); ot=$(csrf_of o.jar); st=$(csrf_of s.jar)
[ "$("${C[@]}" -b o.jar "$base/api/me" | jq -r '.role + " " + (.can.quarantine|tostring) + " " + (.can.rotate|tostring)')" = "operator true false" ] \
  || fail "/api/me of olga"
[ "$vt" != "$ot" ] && [ ${#st} = 43 ] || fail "CSRF tokens"

# an alert to act on (the detector's table, written as the detector would)
now=$(date +%s)
sqlite3 -cmd '.timeout 5000' "$M2MGUARD_HOME/m2mguard.db" \
  "INSERT INTO alerts(rule, scope, device_id, severity, auth, first_evidence, detected_ms, summary, updated) VALUES ('checksum_burst', 'device', 1, 'high', 1, $now, ${now}000, 'test alert', $now)"

# ---- CSRF on every POST ---------------------------------------------------------------------------
posts=(/api/alerts/ack /api/alerts/close /api/device/quarantine /api/device/activate /api/device/rotate /api/device/revoke /logout)
# codes ARGS...: the status codes of a batch of requests, space-separated
codes() { curl --max-time 30 "$@" | tr '\n' ' '; }
args=()
want=""
for p in "${posts[@]}"; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-sk -o /dev/null -w '%{http_code}\n' -b s.jar -H 'Content-Type: application/json' --data '{"id":1,"name":"meter-1"}' "$base$p")
  args+=(--next -sk -o /dev/null -w '%{http_code}\n' -b s.jar -H "X-CSRF-Token: $ot" -H 'Content-Type: application/json' --data '{"id":1,"name":"meter-1"}' "$base$p")
  args+=(--next -sk -o /dev/null -w '%{http_code}\n' -b s.jar -H 'Content-Type: application/x-www-form-urlencoded' --data "csrf=x$st" "$base$p")
  want="${want}403 403 403 "
done
got=$(codes "${args[@]}")
[ "$got" = "$want" ] || fail "CSRF refusals: got $got"
[ "$("${C[@]}" -b s.jar "$base/api/me" | jq -r .user)" = sam ] || fail "sam's session ended by a refused logout"
ok "CSRF: every POST refuses a missing, foreign or wrong token (403)"

# ---- roles -------------------------------------------------------------------------------------------
act() { # JAR TOKEN PATH BODY -> code, body in act.json
  "${C[@]}" -b "$1" -H "X-CSRF-Token: $2" -H 'Content-Type: application/json' --data "$4" \
    -o act.json -w '%{http_code}' "$base$3"
}
args=()
for p in /api/alerts/ack /api/alerts/close /api/device/quarantine /api/device/activate /api/device/rotate /api/device/revoke; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-sk -o /dev/null -w '%{http_code}\n' -b v.jar -H "X-CSRF-Token: $vt" -H 'Content-Type: application/json' --data '{"id":1,"name":"meter-1"}' "$base$p")
done
got=$(codes "${args[@]}")
[ "$got" = "403 403 403 403 403 403 " ] || fail "viewer actions: $got"
[ "$(act o.jar "$ot" /api/device/rotate '{"name":"meter-1"}')" = 403 ] || fail "operator may rotate"
grep -q 'role security required' act.json || fail "rotate refusal: $(cat act.json)"
[ "$(act o.jar "$ot" /api/device/revoke '{"name":"meter-1"}')" = 403 ] || fail "operator may revoke"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT status FROM devices WHERE name='meter-1'")" = 0 ] || fail "a refused action acted"
ok "roles: a viewer cannot act, an operator cannot rotate or revoke (403)"

# the live stream, opened before the actions: it must deliver their events
"${C[@]}" -N --max-time 30 -b o.jar -D sse.h "$base/api/events/stream?kind=console_quarantine" > sse.txt 2>/dev/null &
sse_pid=$!
pids+=($sse_pid)
wait_for 10 grep -q ': open' sse.txt || fail "the event stream did not open"

[ "$(act o.jar "$ot" /api/device/quarantine '{"name":"meter-1","alert":1}')" = 200 ] || fail "quarantine: $(cat act.json)"
[ "$(jq -r .done act.json)" = "quarantined meter-1 (alert 1)" ] || fail "quarantine answer $(cat act.json)"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT status FROM devices WHERE name='meter-1'")" = 1 ] || fail "not quarantined"
ev=$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT bearer||'|'||source||'|'||reason FROM events WHERE kind='console_quarantine'")
[ "$ev" = "console|olga|by olga: quarantined meter-1 (alert 1)" ] || fail "quarantine event: $ev"
wait_for 10 grep -q '"kind":"console_quarantine"' sse.txt || fail "SSE did not deliver the event: $(cat sse.txt)"
grep -q '^event: event' sse.txt && grep -qE '^id: [0-9]+' sse.txt || fail "SSE framing: $(cat sse.txt)"
grep -qi '^Content-Type: text/event-stream' sse.h || fail "SSE Content-Type"
check_headers sse.h
wait_for 8 grep -q '^: ping' sse.txt || fail "no ping comment"
kill "$sse_pid" 2>/dev/null || true
# Last-Event-ID: the stream starts after it (the two device_add events, ids 2 and 3)
"${C[@]}" -N --max-time 2 -b o.jar -H 'Last-Event-ID: 1' "$base/api/events/stream?kind=device_add" > sse2.txt 2>/dev/null || true
[ "$(grep '^id: ' sse2.txt | tr '\n' ' ')" = "id: 2 id: 3 " ] || fail "Last-Event-ID: $(cat sse2.txt)"
ok "SSE: a new event delivered (id/event/data), pings, headers, Last-Event-ID"

[ "$(act o.jar "$ot" /api/device/activate '{"name":"meter-1"}')" = 200 ] || fail "activate: $(cat act.json)"
[ "$(act o.jar "$ot" /api/alerts/ack '{"id":1,"note":"looking"}')" = 200 ] || fail "ack: $(cat act.json)"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT state||'|'||note FROM alerts WHERE id=1")" = "1|acknowledged by olga: looking" ] \
  || fail "ack not stored"
[ "$(act o.jar "$ot" /api/alerts/ack '{"id":1}')" = 409 ] || fail "a second ack"
[ "$(act s.jar "$st" /api/device/rotate '{"name":"meter-1"}')" = 200 ] || fail "rotate: $(cat act.json)"
grep -q 'key rotation of meter-1 queued' act.json || fail "rotate answer $(cat act.json)"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM events WHERE kind='console_rotate' AND source='sam'")" = 1 ] || fail "rotate event"
[ "$(act s.jar "$st" /api/device/revoke '{"name":"meter-2"}')" = 200 ] || fail "revoke: $(cat act.json)"
[ "$(act o.jar "$ot" /api/alerts/close '{"id":1}')" = 200 ] || fail "close: $(cat act.json)"
[ "$(act o.jar "$ot" /api/device/quarantine '{"name":"nope"}')" = 404 ] || fail "unknown device"
[ "$(act o.jar "$ot" /api/device/quarantine '{"name":')" = 400 ] || fail "bad JSON"
ok "actions: quarantine, activate, ack, close (operator), rotate, revoke (security), each one event"

# ---- bodies ----------------------------------------------------------------------------------------------
head -c 9000 /dev/zero | tr '\0' 'a' > big.txt
[ "$(status -b o.jar -H "X-CSRF-Token: $ot" -H 'Content-Type: application/json' --data-binary @big.txt "$base/api/device/quarantine")" = 413 ] \
  || fail "a 9000-octet body accepted"
[ "$(status -b o.jar -H "X-CSRF-Token: $ot" -H 'Transfer-Encoding: chunked' --data-binary @big.txt "$base/api/device/quarantine")" = 413 ] \
  || fail "a 9000-octet chunked body accepted"
ok "request bodies over 8 KiB refused (413), announced or chunked"

# ---- no key material in any answer -------------------------------------------------------------------------
args=()
for p in /api/me /api/fleet "/api/device?name=meter-1" "/api/device?name=meter-2" /api/events "/api/events?after=0&limit=1000" \
         "/api/alerts?state=all" /api/audit /api/stats /api/risk /risk/report / /login; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-sk -b s.jar -D - "$base$p")
done
curl --max-time 60 "${args[@]}" > all.txt
grep -q '"findings"' all.txt && grep -q '"verdict"' all.txt && grep -q '"events_per_kind"' all.txt \
  || fail "not every answer read"
grep -qi "$kic" all.txt && fail "KIc in an answer"
grep -qi "$kid" all.txt && fail "KID in an answer"
grep -qi "$master" all.txt && fail "the master key in an answer"
grep -qiE '"(kic|kid)"' all.txt && fail "a kic/kid field"
[ "$("${C[@]}" -b s.jar "$base/api/device?name=meter-1" | jq -r '.keys | map(.state) | join(",")')" = "active,pending" ] \
  || fail "keys of meter-1 after the rotation"
[ "$("${C[@]}" -b s.jar "$base/api/fleet" | jq -r '.total')" = 2 ] || fail "/api/fleet total"
"${C[@]}" -b s.jar "$base/api/alerts?state=all" | jq -e '.alerts[0].state == "closed" and .alerts[0].device == "meter-1"' > /dev/null \
  || fail "/api/alerts"
"${C[@]}" -b s.jar "$base/api/audit" | jq -e '.findings | length > 0' > /dev/null || fail "/api/audit"
"${C[@]}" -b s.jar -D rr.h -o rr.html "$base/risk/report"
grep -qi "^Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'" rr.h || fail "risk report CSP"
! grep -qi '<script' rr.html || fail "a script in the risk report"
ok "no key material (KIc, KID, master key) in any answer; reads consistent"

# ---- login failures --------------------------------------------------------------------------------------------
t0=$(date +%s%N); r1=$(login u.jar nobody-here wrong-password-1); t1=$(date +%s%N)
r2=$(login u2.jar olga wrong-password-1); t2=$(date +%s%N)
[ "$r1" = "$r2" ] || fail "unknown user ($r1) and wrong password ($r2) differ"
cmp -s u.jar.body u2.jar.body || fail "unknown user and wrong password: different bodies"
[ "${r1%% *}" = 303 ] || fail "a failed login: $r1"
echo "  unknown user $(( (t1 - t0) / 1000000 )) ms, wrong password $(( (t2 - t1) / 1000000 )) ms"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM events WHERE kind='console_login_failed' AND bearer='console' AND source='127.0.0.1' AND auth=0")" = 2 ] \
  || fail "login failures are not events"
r=$(login u.jar olga "wrong-3-password"); [ "${r%% *}" = 303 ] || fail "failure 3: $r"
r=$(login u.jar olga operator-pass-1)
[ "${r%% *}" = 429 ] || fail "the attempt after 3 failures (console_login_failures=3) was not refused: $r"
grep -qi '^Retry-After: [0-9]' u.jar.h || fail "429 without Retry-After"
[ "$(sqlite3 "$M2MGUARD_HOME/m2mguard.db" "SELECT count(*) FROM events WHERE kind='console_login' AND source='127.0.0.1'")" = 3 ] \
  || fail "login events"
r=$(login u.jar sam security-pass-1)
[ "${r%% *}" = 429 ] || fail "the address is not limited: $r"
ok "login failures: unknown user and wrong password alike, events, 429 + Retry-After (per account and address)"

# ---- logout ----------------------------------------------------------------------------------------------------
[ "$(status -b o.jar -H "X-CSRF-Token: $ot" -X POST "$base/logout")" = 303 ] || fail "logout"
[ "$(status -b o.jar "$base/api/me")" = 401 ] || fail "the session lives on after logout"
# a removed account loses its sessions at once
"$bin" console user del vera > /dev/null
[ "$(status -b v.jar "$base/api/me")" = 401 ] || fail "vera's session survived her removal"
[ "$(status -b s.jar "$base/api/me")" = 200 ] || fail "sam's session ended"
ok "logout and account removal end sessions"
echo "PASS: $pass checks ($SECONDS s)"
