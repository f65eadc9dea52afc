#!/usr/bin/env bash
# Builds the Debian packages (debian/, docs/packaging.md) from a copy of the
# source tree in a temporary directory, so that nothing is written into the
# tree or beside it (dpkg-buildpackage writes ../*.deb); the .deb, .buildinfo
# and .changes files go to OUTDIR.
#   tests/pkg/build-deb.sh OUTDIR [JOBS]        (make deb: OUTDIR build/deb)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-deb.sh OUTDIR [JOBS]}
jobs=${2:-2}
for tool in dpkg-buildpackage dh; do
  command -v "$tool" > /dev/null || { echo "build-deb: $tool missing (apt-get install debhelper dpkg-dev)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/m2mguard-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree=$work/m2mguard-$version
mkdir "$tree"
# the files of the tree as it is (tracked and new, not ignored: no build/),
# without the test peer's node_modules link
if git -C "$src" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do
       case $f in tests/smsc/node_modules*|build/*) continue ;; esac
       [ -f "$f" ] && printf '%s\0' "$f"
     done | tar -c --null -T - -f -) | tar -x -C "$tree"
else
  tar -C "$src" --exclude=./build --exclude=./tests/smsc/node_modules --exclude=./.git -cf - . | tar -x -C "$tree"
fi
start=$(date +%s)
(cd "$tree" && DEB_BUILD_OPTIONS="parallel=$jobs nocheck ${DEB_BUILD_OPTIONS:-}" \
   dpkg-buildpackage -b -us -uc > "$work/build.log" 2>&1) || { tail -n 60 "$work/build.log" >&2; exit 1; }
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
cp "$work/build.log" "$out/build.log"
echo "build-deb: $(cd "$out" && ls ./*.deb | tr '\n' ' ')in $(( $(date +%s) - start )) s -> $out"
