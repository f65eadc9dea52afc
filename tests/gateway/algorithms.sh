#!/usr/bin/env bash
# Issue 9, defect 5: every algorithm the CLI accepts works end to end through the
# real SMSC: telemetry up, a concatenated command (~200 characters) down executed
# once with its PoR, a key rotation (binary key delivery, switch-over on the PoR),
# then telemetry and a command under key version 2.
source "$(dirname "$0")/lib.sh"

new_workdir
start_smsc
algs="aes aes192 aes256 3des2 3des3"
i=0
for alg in $algs; do
  i=$((i + 1))
  "$bin" device add "dev-$alg" --msisdn "+49151000003$(printf %02d $i)" --alg "$alg" > /dev/null \
    || fail "device add --alg $alg"
done
start_gateway
wait_for 20 grep -q smpp_bound "$tmp/gateway.log" || fail "gateway did not bind"
ok "gateway bound; devices added with --alg $algs"

cmd=$(printf 'config %s' "$(printf 'param%02d=0.5;' $(seq 1 16))")   # 199 characters
[ ${#cmd} -ge 190 ] && [ ${#cmd} -le 255 ] || fail "command length ${#cmd}"

# round_trip DEV CMD: done por_ok, executed exactly once more than before.
round_trip() {
  local dev=$1 c=$2 out id before
  before=$(grep -cF "\"command\":\"$c\"" "$tmp/$dev.jsonl" 2>/dev/null || true)
  out=$("$bin" send --wait 20 "$dev" "$c") || fail "$dev: send: $out"
  id=$(cmd_id "$out")
  grep -q "^command $id: done por_ok" <<<"$out" || fail "$dev: not done por_ok: $out"
  sleep 0.3
  [ "$(grep -cF "\"command\":\"$c\"" "$tmp/$dev.jsonl")" -eq $((before + 1)) ] || fail "$dev: '$c' not executed once"
}
# telemetry_ok DEV TEXT: one inbox line of DEV with "TEXT seq=..."
telemetry_ok() {
  wait_for 20 grep -qF "\"text\":\"$2 seq=" "$M2MGUARD_HOME/inbox.jsonl" || fail "$1: telemetry '$2' not accepted"
  [ "$(grep -F "\"device\":\"$1\"" "$M2MGUARD_HOME/inbox.jsonl" | grep -cF "\"text\":\"$2 seq=")" -eq 1 ] \
    || fail "$1: telemetry '$2' not exactly once"
}

for alg in $algs; do
  dev=dev-$alg
  start_agent "$dev" --count 1 --telemetry "v1-$alg"; a=$agent_pid
  telemetry_ok "$dev" "v1-$alg"
  round_trip "$dev" "$cmd"
  parts=$("$bin" events --json | grep '"kind":"cmd_sent"' | grep "\"device\":\"$dev\"" | tail -n1 | sed -n 's/.* in \([0-9]*\) SMS.*/\1/p')
  [ "${parts:-0}" -ge 2 ] || fail "$dev: the long command was not concatenated (${parts:-?} SMS)"
  ok "$alg: telemetry accepted, a ${#cmd}-character command in $parts SMS executed once, por_ok"

  out=$("$bin" key rotate --wait 20 "$dev") || fail "$dev: key rotate: $out"
  grep -q "^command [0-9]*: done" <<<"$out" || fail "$dev: rotation not done: $out"
  "$bin" device show "$dev" | grep -q "key_version: 2" || fail "$dev: key version 2 not active"
  grep -q '"command":"key-rotate","version":2,"ok":true' "$tmp/$dev.jsonl" || fail "$dev: the device did not switch to version 2"
  ok "$alg: key rotate --wait done, version 2 active on both sides"

  stop_pid "$a"
  start_agent "$dev" --count 1 --telemetry "v2-$alg"; a=$agent_pid
  telemetry_ok "$dev" "v2-$alg"
  round_trip "$dev" "after-rotation $alg"
  round_trip "$dev" "$cmd"
  stop_pid "$a"
  ok "$alg: telemetry and commands (short, concatenated) under key version 2"
done

echo "gateway algorithms: $pass passed, 0 failed"
