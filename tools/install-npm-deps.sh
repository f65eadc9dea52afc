#!/bin/sh
# tools/install-npm-deps.sh: installs the SMSC test peer's npm packages
# (tests/smsc: the npm package `smpp`, pinned by tests/smsc/package-lock.json)
# with `npm ci`, but only when tests/smsc/node_modules is missing or older
# than the lock file. Node.js comes from tools/debian-packages.txt; npm is
# part of the NodeSource nodejs package, or Debian's separate `npm` package.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$src/tests/smsc
lock=$dir/package-lock.json
mods=$dir/node_modules
stamp=$mods/.package-lock.json # written by npm ci
if [ -f "$stamp" ] && [ ! "$lock" -nt "$stamp" ]; then
    echo "npm-deps: tests/smsc/node_modules up to date"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "npm-deps: npm not found; install it (e.g. apt-get install npm) and retry" >&2
    exit 1
fi
echo "npm-deps: npm ci in tests/smsc"
npm ci --prefix "$dir" --no-audit --no-fund
touch "$stamp"
