# Shared by the signed-command tests (tests/signed): a temporary directory,
# a SoftHSM2 token made here, processes stopped by their PID on exit.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mg_test_prefix=mg-signed source "$src/tests/lib/harness.sh"
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

. "$(dirname "${BASH_SOURCE[0]}")/token.sh"
