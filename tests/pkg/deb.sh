#!/usr/bin/env bash
# pkg_deb (issue 15 item 6, docs/packaging.md): builds the Debian packages from
# a copy of the tree (tests/pkg/build-deb.sh, tests and benchmarks off),
# unpacks them into a scratch root with dpkg -x, checks what each holds (the
# command, man pages, units, the library with its SONAME, headers, .pc, the
# plugin), runs the unpacked `m2mguard version`, compiles the packaged example
# against the scratch root through pkg-config (shared, then the static
# library) and runs it, and runs lintian: no error or warning.
set -euo pipefail
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mg_test_prefix=mg-pkgtest source "$src/tests/lib/harness.sh"
for tool in dpkg-buildpackage dh lintian pkg-config cc; do
  command -v "$tool" > /dev/null || fail "$tool is missing (tools/debian-packages.txt: debhelper, lintian)"
done
out=$tmp/out root=$tmp/root
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg --print-architecture)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)

t0=$SECONDS
DEB_BUILD_OPTIONS=noddebs "$src/tests/pkg/build-deb.sh" "$out" 2 > "$tmp/build-deb.log" 2>&1 || { cat "$tmp/build-deb.log" >&2; fail "package build failed"; }
for p in m2mguard libm2mguard0 libm2mguard-dev m2mguard-mosquitto; do
  [ -f "$out/${p}_${version}_$arch.deb" ] || fail "no package $p ($(ls "$out"))"
done
ok "4 packages built in $((SECONDS - t0)) s: m2mguard libm2mguard0 libm2mguard-dev m2mguard-mosquitto $version"

mkdir "$root"
for d in "$out"/*.deb; do
  case $d in *-dbgsym_*) continue ;; esac
  dpkg -x "$d" "$root"
done
lib=$root/usr/lib/$ma
[ -x "$root/usr/bin/m2mguard" ] || fail "no /usr/bin/m2mguard"
for f in "$src"/man/*.1; do
  [ -f "$root/usr/share/man/man1/$(basename "$f").gz" ] || fail "man page $(basename "$f") not packaged"
done
for u in gateway detect est console; do
  [ -f "$root/lib/systemd/system/m2mguard-$u.service" ] || [ -f "$root/usr/lib/systemd/system/m2mguard-$u.service" ] ||
    fail "unit m2mguard-$u.service not packaged"
done
[ -f "$root/usr/lib/sysusers.d/m2mguard.conf" ] || fail "no sysusers.d file"
[ -f "$root/usr/lib/tmpfiles.d/m2mguard.conf" ] || fail "no tmpfiles.d file"
[ -d "$root/usr/share/m2mguard/risk" ] || fail "no risk catalogues"
[ -f "$root/usr/lib/m2mguard/m2mguard_mosquitto.so" ] || fail "no broker plugin"
soname=$(objdump -p "$lib/libm2mguard.so.0" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libm2mguard.so.0 ] || fail "SONAME '$soname', want libm2mguard.so.0"
[ -L "$lib/libm2mguard.so" ] && [ -f "$lib/libm2mguard.a" ] && [ -f "$lib/pkgconfig/m2mguard.pc" ] ||
  fail "libm2mguard-dev lacks the .so link, the .a or m2mguard.pc"
[ -f "$root/usr/include/m2mguard/sms.h" ] && [ ! -e "$root/usr/include/m2mguard/risk.h" ] || fail "headers"
ok "contents: command, $(ls "$src"/man/*.1 | wc -l) man pages, 4 units, sysusers/tmpfiles, plugin, libm2mguard.so.0 (SONAME), .a, headers, .pc"

# the units: systemd-analyze verify, and the exposure score of each (docs/packaging.md)
if command -v systemd-analyze > /dev/null; then
  mkdir "$tmp/units"
  scores=""
  for u in gateway detect est console; do
    f=$root/lib/systemd/system/m2mguard-$u.service
    [ -f "$f" ] || f=$root/usr/lib/systemd/system/m2mguard-$u.service
    sed "s|/usr/bin/m2mguard|$root/usr/bin/m2mguard|" "$f" > "$tmp/units/m2mguard-$u.service"
    systemd-analyze verify --man=no "$tmp/units/m2mguard-$u.service" > "$tmp/verify.log" 2>&1 ||
      { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify m2mguard-$u.service"; }
    score=$(systemd-analyze security --offline=yes "$tmp/units/m2mguard-$u.service" 2>/dev/null |
            sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
      fail "m2mguard-$u.service: exposure '$score', want <= 2.0"
    scores="$scores $u=$score"
  done
  ok "units verified (systemd-analyze verify); exposure (systemd-analyze security):$scores"
fi

ver=$(LD_LIBRARY_PATH=$lib "$root/usr/bin/m2mguard" version)
case $ver in "m2mguard ${version%%-*} "*) ;; *) fail "unpacked m2mguard version says '$ver', package $version" ;; esac
ok "the unpacked command runs: $ver"

# the packaged example, through pkg-config against the scratch root
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$lib/pkgconfig:/usr/lib/$ma/pkgconfig:/usr/share/pkgconfig
[ "$(pkg-config --modversion m2mguard)" = "${version%%-*}" ] || fail "pkg-config --modversion m2mguard"
ex=$root/usr/share/doc/libm2mguard-dev/examples/secured_sms.c
[ -f "$ex" ] || { [ -f "$ex.gz" ] && gzip -dc "$ex.gz" > "$tmp/secured_sms.c" && ex=$tmp/secured_sms.c; } || fail "no example"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -std=c11 "$ex" $(pkg-config --cflags --libs m2mguard) -o "$tmp/ex_shared" ||
  fail "the example does not build with pkg-config --cflags --libs m2mguard"
ldd_out=$(LD_LIBRARY_PATH=$lib ldd "$tmp/ex_shared")
grep -F "$lib/libm2mguard.so.0" <<<"$ldd_out" > /dev/null || fail "the example does not use the unpacked library: $ldd_out"
run=$(LD_LIBRARY_PATH=$lib "$tmp/ex_shared") || fail "the example failed: $run"
grep -q "device refused the replay" <<<"$run" || fail "example output: $run"
# shellcheck disable=SC2046
cc -std=c11 "$ex" $(pkg-config --cflags m2mguard) -L"$lib" -Wl,-Bstatic -lm2mguard -Wl,-Bdynamic \
  $(pkg-config --static --libs-only-l m2mguard | sed 's/-lm2mguard\b//') -o "$tmp/ex_static" ||
  fail "the example does not link the static library"
"$tmp/ex_static" > /dev/null || fail "the statically linked example failed"
ok "the packaged example builds through pkg-config against the scratch root (shared and static) and runs"

lintian --fail-on error,warning --tag-display-limit 0 "$out"/*.changes > "$tmp/lintian.log" 2>&1 ||
  { cat "$tmp/lintian.log" >&2; fail "lintian: errors or warnings"; }
ok "lintian: no error, no warning"
echo "pkg deb: $pass passed, 0 failed"
