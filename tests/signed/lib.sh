# Shared by the signed-command tests (tests/signed): a temporary directory,
# a SoftHSM2 token made here, processes stopped by their PID on exit.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
tmp=$(mktemp -d /tmp/mg-signed.XXXXXX)
pids=()
pass=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- logs (test failed) ---" >&2
    for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  fi
  [ -n "${MG_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); echo "ok ($SECONDS s): $*"; }
has() { # has NAME FILE REGEX (grep -E, no -q: no SIGPIPE)
  grep -E -- "$3" "$2" >/dev/null || fail "$1: no /$3/ in $(cat "$2")"
  ok "$1"
}
hasnt() {
  if grep -E -- "$3" "$2" >/dev/null; then fail "$1: /$3/ in $(cat "$2")"; fi
  ok "$1"
}
out=$tmp/out; err=$tmp/err
run() { # run WANT_RC cmd...: stdout in $out, stderr in $err
  local want=$1; shift
  set +e; "$bin" "$@" >"$out" 2>"$err"; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$err") $(cat "$out")"
}
wait_for() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

. "$(dirname "${BASH_SOURCE[0]}")/token.sh"
