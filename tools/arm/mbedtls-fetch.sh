#!/bin/sh
# tools/arm/mbedtls-fetch.sh DIR — Debian 12's source of Mbed TLS 2.28.3,
# unpacked once under DIR (cached: build/arm/ from tools/arm-size.sh).
# Prints the source directory on stdout; exits 1 (with the reason on stderr)
# when the source cannot be fetched or does not match: the caller SKIPs.
#
# The tarball comes from deb.debian.org through apt-get source with a private
# source list (no change to the system's apt configuration); its SHA-256 is
# checked against the Checksums-Sha256 line of the signed .dsc. Set
# MBEDTLS_TARBALL=/path/mbedtls_2.28.3.orig.tar.gz to use a local copy (same
# SHA-256 check). Nothing of Mbed TLS is written into the source tree.
set -eu
VER=2.28.3
SHA256=3b4953aa55a681e084d31892d9904cc5328d6b4958ea57b90ae4b4f94ae69a8d
dir=${1:?usage: mbedtls-fetch.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
out="$dir/mbedtls-$VER"
if [ -f "$out/.unpacked" ]; then
    echo "$out"
    exit 0
fi
tgz="$dir/mbedtls_$VER.orig.tar.gz"
if [ ! -f "$tgz" ]; then
    if [ -n "${MBEDTLS_TARBALL:-}" ]; then
        cp "$MBEDTLS_TARBALL" "$tgz.part" && mv "$tgz.part" "$tgz"
    else
        command -v apt-get >/dev/null 2>&1 || { echo "mbedtls-fetch: no apt-get" >&2; exit 1; }
        L="$dir/apt"
        mkdir -p "$L/lists/partial" "$L/cache/archives/partial"
        echo "deb-src http://deb.debian.org/debian bookworm main" >"$L/src.list"
        set -- -o Dir::Etc::sourcelist="$L/src.list" -o Dir::Etc::sourceparts=/dev/null \
            -o Dir::State::Lists="$L/lists" -o Dir::Cache="$L/cache"
        apt-get "$@" update >"$L/log" 2>&1 || { echo "mbedtls-fetch: apt-get update failed (see $L/log)" >&2; exit 1; }
        (cd "$L" && apt-get "$@" source --download-only "mbedtls=$VER-1") >>"$L/log" 2>&1 ||
            { echo "mbedtls-fetch: apt-get source mbedtls=$VER-1 failed (see $L/log)" >&2; exit 1; }
        # the .dsc's Checksums-Sha256 line must name the pinned hash
        grep -q "^ $SHA256 [0-9]* mbedtls_$VER.orig.tar.gz\$" "$L/mbedtls_$VER-1.dsc" ||
            { echo "mbedtls-fetch: the .dsc does not list the pinned SHA-256" >&2; exit 1; }
        mv "$L/mbedtls_$VER.orig.tar.gz" "$tgz"
        rm -rf "$L" # the package lists: no longer needed
    fi
fi
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    echo "mbedtls-fetch: SHA-256 mismatch of $tgz ($got)" >&2
    rm -f "$tgz"
    exit 1
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
tar xzf "$tgz" -C "$out.tmp" --strip-components=1 || { echo "mbedtls-fetch: unpack failed" >&2; exit 1; }
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/.unpacked"
echo "$out"
