# The harness every shell test shares: strict mode, a temporary directory,
# processes started by the test and stopped by their PID on exit, the logs of
# a failed test, and small helpers. Source it with the temporary directory's
# prefix:   mg_test_prefix=mg-gwtest source "$src/tests/lib/harness.sh"
# MG_KEEP=1 keeps the directory; MG_LOG_TAIL sets the log lines shown (30).
set -euo pipefail
tmp=$(mktemp -d "/tmp/${mg_test_prefix:-mg-test}.XXXXXX")
pids=()
pass=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- logs (test failed) ---" >&2
    for f in "$tmp"/*.log; do
      [ -f "$f" ] && { echo "== $f" >&2; tail -n "${MG_LOG_TAIL:-30}" "$f" >&2; }
    done
  fi
  [ -n "${MG_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); echo "ok ($SECONDS s): $*"; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
