#!/usr/bin/env bash
# The manual page and the README name every command the tool's help lists.
set -euo pipefail
bin=$1
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
pass=0
man=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$src/man/m2mguard.1")
cmds() { "$bin" "$@" --help | awk '/^commands:/{f=1;next} f&&NF==0{exit} f{print $1}'; }
for c in $(cmds); do
  grep -q "^\.B m2mguard $c\b\|^\.B $c\b" <<<"$man" || { echo "FAIL: man page lacks '$c'"; exit 1; }
  grep -q "m2mguard $c" "$src/README.md" || { echo "FAIL: README lacks 'm2mguard $c'"; exit 1; }
  pass=$((pass + 1))
  if [ "$c" = sms ] || [ "$c" = risk ]; then
    for s in $(cmds "$c"); do
      grep -q "$c $s" <<<"$man" || { echo "FAIL: man page lacks '$c $s'"; exit 1; }
      grep -q "m2mguard $c $s" "$src/README.md" || { echo "FAIL: README lacks 'm2mguard $c $s'"; exit 1; }
      "$bin" $c $s --help >/dev/null || { echo "FAIL: '$c $s --help' failed"; exit 1; }
      pass=$((pass + 1))
    done
  fi
done
echo "cli docs: $pass passed, 0 failed"
