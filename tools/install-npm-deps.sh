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
    # Debian's nodejs comes without npm (a separate package); NodeSource's
    # nodejs brings its own npm and conflicts with Debian's.
    echo "npm-deps: npm not found; installing Debian's npm"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm || {
        echo "npm-deps: cannot install npm; install it and retry" >&2
        exit 1
    }
fi
echo "npm-deps: npm ci in tests/smsc"
npm ci --prefix "$dir" --no-audit --no-fund
touch "$stamp"
