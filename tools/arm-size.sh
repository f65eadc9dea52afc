#!/bin/sh
# tools/arm-size.sh — flash and stack of the portable core, and of the device
# library (src/device), on a Cortex-M0+.
#
# Budgets, crypto excluded, stack <= 1024 octets:
#  - the whole public core (secured packets, TPDU codec, UDH, the secured-SMS
#    endpoint module sms.c, replay): flash <= 16384 octets;
#  - a device firmware's share: the device library with every part of the
#    core it links (its real cost on a device), signed-command verification
#    included since issue 12: flash <= 28672 octets, stack <= 1536 octets.
#  - the signed-command verify path (issue 12: src/core/cbor.c, cose.c; what
#    mg_cmd_verify links, probe tools/arm/main_cose.c): flash <= 8192 octets.
#  - the SUIT manifest processor (issue 14: src/core/suit.c with the cbor.c
#    it links; what mg_suit_check, mg_suit_applies and the image stream
#    link, probe tools/arm/main_suit.c): flash <= 8192, stack <= 1536 octets.
#    src/core/suit_build.c (the host's envelope builder) is not measured: a
#    device does not link it. The device library's share includes suit.o
#    since update.c (mg_upd_begin) takes envelopes.
# Report only, no budget (issue 12): the same verify path from
# mg_dev_signed_check WITH Mbed TLS 2.28.3's ECDSA and the real
# src/crypto/mbedtls.c: flash (total, Mbed TLS's share), stack down through
# mbedtls_ecdsa_verify, heap of the static buffer allocator (section at the
# end; SKIP without the source; caches under build/arm/).
# (Issue 2 set 6144 for the core. Until issue 9 the keep table below was
# dropped by --gc-sections, so the figure covered only what main.c calls:
# 4889 octets, not the whole core. Measured whole, the core is 8680 octets
# without sms.c and 12375 with it; the budget is raised, not the method
# bent. See docs/quality.md.)
# Exits non-zero on a FAIL or on any build error. Works in a temporary
# directory; writes nothing in the tree but the Mbed TLS cache build/arm/.
#
# Method
#  1. Every src/core/*.c is compiled with arm-none-eabi-gcc
#       -std=c11 -mcpu=cortex-m0plus -mthumb -Os -ffunction-sections
#       -fdata-sections -Wall -Wextra -Werror -fstack-usage -fcallgraph-info=su
#     and linked with -Wl,--gc-sections (newlib-nano, nosys) together with
#       tools/arm/main.c         calls pack/open/accept/rsp pack/rsp open and,
#                                when tpdu.h exists, the TPDU decode/encode;
#       keep.c (generated here)  takes the address of every other public
#                                function declared in include/m2mguard/
#                                {common,ota,tpdu,sms}.h; linked with -u mg_keep
#                                so that the whole public core survives
#                                --gc-sections, not only main's calls;
#       tools/arm/crypto_stub.c  the crypto interface (excluded: crypto is
#                                outside the budget).
#  2. Flash = the sizes of the input sections .text*, .rodata* and .data* that
#     the linker KEPT from the core objects, read from the linker map
#     (-Wl,-Map); main, keep, the stub, newlib and libgcc are listed apart and
#     not counted. The libgcc helpers the core pulls in (64-bit shifts,
#     division: Cortex-M0+ has no divider) are printed for information.
#  3. Stack = for every public function of the core, the largest sum of
#     static frame sizes (.su, -fstack-usage) along any call chain of the
#     call graph (-fcallgraph-info=su, one .ci per object, edges across
#     objects joined by name); the figure is the deepest public entry point.
#     Crypto calls count 0 (the stub is excluded); calls to newlib/libgcc
#     leaves (memcpy, memset, __aeabi_*) count 0 and are listed. Recursion,
#     indirect calls or dynamic/bounded (non-static) frames make the figure
#     unknown and the check FAIL (except mg_wipe's call of memset through a
#     volatile pointer, whose target is known).
#  4. src/crypto/mbedtls.c is compiled (not linked) for the same CPU with
#     -DMG_MBEDTLS_NO_ENTROPY against the host's Mbed TLS headers, reached
#     through a directory that holds only a symlink "mbedtls", so that no
#     host glibc header can be picked up: the backend source builds for the MCU.
set -eu

FLASH_GOAL=16384
STACK_GOAL=1024
# The device library (issue 9): its own objects and the core objects it links
# (what a device firmware pays); crypto excluded.
# Issue 12: the device library verifies signed commands itself (COSE_Sign1
# and COSE_Sign), so its share now includes the verify path (cbor.o, cose.o:
# 3624 octets / 1016 octets of stack measured alone) and the trust code of
# device.c. Measured: flash 24867 (was 14498), stack 1488 (was 848):
# mg_dev_receive 160 -> on_command 200 -> signed_check 112 ->
# mg_cmd_verify_multi's chain 1016 (mg_cose_sign_parse 200, verify_sign_cmd
# 184, mg_cbor_skip 256). The budgets are raised to 28672 / 1536, not the
# method bent; see the report of issue 12.
# Issue 14: the device library takes SUIT updates (update.c: mg_upd_*, kept
# since then with every mg_dev_* function; the manifest processor suit.o it
# links) and answers tamper. Measured: flash 33639 (was 25188: suit.o 6385,
# update.o 2970, cose.o shares less), stack 1488 unchanged (mg_upd_begin's
# chain is 1416). The flash budget is raised to 36864, the method unchanged.
# Updates over secured SMS (mg_dev_cfg.upd; probe main_device.c passes an
# updater): flash 34518, stack 1496 (mg_dev_resume -> run_update ->
# mg_upd_begin: the update is taken up by mg_dev_resume, because inside
# mg_dev_receive -> on_command -> run_pending the chain was 1976).
DEV_FLASH_GOAL=36864
DEV_STACK_GOAL=1536
# The signed-command verify path (issue 12), crypto excluded.
COSE_FLASH_GOAL=8192
COSE_STACK_GOAL=1024
# The SUIT manifest processor (issue 14), crypto excluded.
SUIT_FLASH_GOAL=8192
SUIT_STACK_GOAL=1536
CC=${ARM_CC:-arm-none-eabi-gcc}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
command -v "$CC" >/dev/null 2>&1 || { echo "arm-size: $CC not found (Debian gcc-arm-none-eabi)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "arm-size: python3 not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mg-arm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/core" "$work/probe" "$work/inc"

CFLAGS="-std=c11 -mcpu=cortex-m0plus -mthumb -Os -ffunction-sections -fdata-sections
        -Wall -Wextra -Werror -Wconversion -Wno-sign-conversion -fstack-usage"
mkdir -p "$work/cose" "$work/suit" "$work/host"
# shellcheck disable=SC2086
for f in "$src"/src/core/*.c; do
    b=$(basename "$f" .c)
    # the signed-command verify path (issue 12) has its own probe, at the end
    # the SUIT manifest processor (issue 14) too; its host-side builder nowhere
    case $b in cbor | cose) d=cose ;; suit) d=suit ;; suit_build) d=host ;; *) d=core ;; esac
    $CC $CFLAGS -fcallgraph-info=su -I"$src/include" -I"$src/src/core" -c "$f" \
        -o "$work/$d/$b.o" || { echo "arm-size: build error in $f" >&2; exit 1; }
done

# keep.c: the address of every public function of the core headers.
headers=""
for h in common ota tpdu sms; do
    [ -f "$src/include/m2mguard/$h.h" ] && headers="$headers $src/include/m2mguard/$h.h"
done
python3 - "$work/probe/keep.c" $headers <<'EOF'
import re, sys
out, hdrs = sys.argv[1], sys.argv[2:]
names = []
for h in hdrs:
    text = open(h).read()
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = re.sub(r'static\s+inline[^{;]*\{[^}]*\}', '', text)  # inline helpers
    for m in re.finditer(r'\b(mg_[a-z0-9_]+)\s*\([^;{)]*(\([^)]*\)[^;{)]*)*\)\s*;', text):
        if m.group(1) not in names:
            names.append(m.group(1))
with open(out, 'w') as f:
    for h in hdrs:
        f.write('#include "m2mguard/%s"\n' % h.rsplit('/', 1)[1])
    f.write('typedef void (*mg_fn)(void);\n')
    f.write('mg_fn const volatile mg_keep[] = {\n')
    for n in names:
        f.write('    (mg_fn)%s,\n' % n)
    f.write('};\n')
print('keep.c: %d public functions' % len(names), file=sys.stderr)
EOF

# shellcheck disable=SC2086
for f in "$here/arm/main.c" "$here/arm/crypto_stub.c" "$work/probe/keep.c"; do
    b=$(basename "$f" .c)
    $CC $CFLAGS -I"$src/include" -c "$f" -o "$work/probe/$b.o" ||
        { echo "arm-size: build error in $f" >&2; exit 1; }
done
# shellcheck disable=SC2086
# -u mg_keep: the keep table is a root of --gc-sections (unreferenced, it
# would be dropped with everything only it refers to)
$CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-u,mg_keep -Wl,-Map="$work/probe.map" \
    --specs=nano.specs --specs=nosys.specs -o "$work/probe.elf" \
    "$work"/core/*.o "$work"/probe/*.o || { echo "arm-size: link error" >&2; exit 1; }

# The MCU build of the Mbed TLS backend (compile only).
ln -s /usr/include/mbedtls "$work/inc/mbedtls"
$CC $CFLAGS -DMG_MBEDTLS_NO_ENTROPY -I"$src/include" -I"$src/src/crypto" -I"$work/inc" \
    -c "$src/src/crypto/mbedtls.c" -o "$work/mbedtls.o" ||
    { echo "arm-size: src/crypto/mbedtls.c does not compile for Cortex-M0+" >&2; exit 1; }
mbed=$(arm-none-eabi-size "$work/mbedtls.o" | awk 'NR==2 {print $1 + $2}')
echo "src/crypto/mbedtls.c compiles for Cortex-M0+ (-DMG_MBEDTLS_NO_ENTROPY): $mbed octets of glue, excluded"

# Figures of the core (method above; tools/arm/size.py).
rc=0
python3 "$here/arm/size.py" core "$work/probe.map" "$FLASH_GOAL" "$STACK_GOAL" core core || rc=1

# ---- the device library (src/device, include/m2mguard/device.h) -------------
# Same method, in a second probe: src/device/*.c with the same flags, linked
# with the core objects, tools/arm/main_device.c (calls init/receive/
# telemetry/resume with callback stubs), keep_device.c (every public function
# of device.h, kept with -u mg_keep_device) and the crypto stub. Flash counts
# the device objects and the core objects the device library links (listed as
# core/...): a device firmware's real share; stack follows calls into the core. The
# callbacks (persist, send, execute, event, now_ms) are the application's:
# counted 0 and listed.
echo
mkdir -p "$work/device" "$work/probe_dev"
# shellcheck disable=SC2086
for f in "$src"/src/device/*.c; do
    b=$(basename "$f" .c)
    $CC $CFLAGS -fcallgraph-info=su -I"$src/include" -I"$src/src/core" -c "$f" \
        -o "$work/device/$b.o" || { echo "arm-size: build error in $f" >&2; exit 1; }
done
python3 - "$work/probe_dev/keep_device.c" "$src/include/m2mguard/device.h" <<'EOF'
import re, sys
out, h = sys.argv[1], sys.argv[2]
text = re.sub(r'/\*.*?\*/', '', open(h).read(), flags=re.S)
names = []
for m in re.finditer(r'\b(mg_(?:dev|upd)_[a-z0-9_]+)\s*\([^;{)]*(\([^)]*\)[^;{)]*)*\)\s*;', text):
    if m.group(1) not in names:
        names.append(m.group(1))
with open(out, 'w') as f:
    f.write('#include "m2mguard/device.h"\ntypedef void (*mg_fn)(void);\n')
    f.write('mg_fn const volatile mg_keep_device[] = {\n')
    for n in names:
        f.write('    (mg_fn)%s,\n' % n)
    f.write('};\n')
print('keep_device.c: %d public functions' % len(names), file=sys.stderr)
EOF
# shellcheck disable=SC2086
for f in "$here/arm/main_device.c" "$here/arm/crypto_stub.c" "$here/arm/crypto_stub_suit.c" \
    "$work/probe_dev/keep_device.c"; do
    b=$(basename "$f" .c)
    $CC $CFLAGS -I"$src/include" -c "$f" -o "$work/probe_dev/$b.o" ||
        { echo "arm-size: build error in $f" >&2; exit 1; }
done
# shellcheck disable=SC2086
$CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-u,mg_keep_device -Wl,-Map="$work/probe_dev.map" \
    --specs=nano.specs --specs=nosys.specs -o "$work/probe_dev.elf" \
    "$work"/device/*.o "$work"/core/*.o "$work"/cose/*.o "$work"/suit/*.o "$work"/probe_dev/*.o ||
    { echo "arm-size: device probe link error" >&2; exit 1; }
# Since issue 12 the device library verifies signed commands itself
# (mg_dev_signed_check -> mg_cmd_verify[_multi]): its share includes the
# cbor/cose objects it links (crypto still excluded).
python3 "$here/arm/size.py" device "$work/probe_dev.map" "$DEV_FLASH_GOAL" "$DEV_STACK_GOAL" \
    device,core,cose,suit core cose suit device --callbacks || rc=1

# ---- the signed-command verify path (issue 12: cbor.c, cose.c) -------------
# Same method: tools/arm/main_cose.c calls mg_cmd_verify only; flash counts
# what that keeps of cbor.o/cose.o and of the core objects it links; stack is
# the deepest public function of cbor.c/cose.c (mg_cmd_verify's chain among
# them). Crypto (SHA-256, ECDSA/EdDSA verify) excluded, as above.
if [ -f "$work/cose/cose.o" ]; then
    echo
    mkdir -p "$work/probe_cose"
    # shellcheck disable=SC2086
    for f in "$here/arm/main_cose.c" "$here/arm/crypto_stub.c"; do
        $CC $CFLAGS -I"$src/include" -c "$f" -o "$work/probe_cose/$(basename "$f" .c).o" ||
            { echo "arm-size: build error in $f" >&2; exit 1; }
    done
    $CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-Map="$work/probe_cose.map" \
        --specs=nano.specs --specs=nosys.specs -o "$work/probe_cose.elf" \
        "$work"/cose/*.o "$work"/core/*.o "$work"/probe_cose/*.o ||
        { echo "arm-size: verify-path probe link error" >&2; exit 1; }
    python3 "$here/arm/size.py" cose-verify "$work/probe_cose.map" "$COSE_FLASH_GOAL" \
        "$COSE_STACK_GOAL" cose,core cose core || rc=1
fi

# ---- the SUIT manifest processor (issue 14: suit.c, with cbor.c) ------------
# Same method: tools/arm/main_suit.c calls mg_suit_check, mg_suit_applies and
# mg_suit_img_begin/update/finish; flash counts what that keeps of suit.o and
# of the cbor/core objects it links; stack is the deepest public function of
# suit.c (mg_suit_check's chain). Crypto (SHA-256, ECDSA/EdDSA verify) is
# stubbed and excluded, as above.
if [ -f "$work/suit/suit.o" ]; then
    echo
    mkdir -p "$work/probe_suit"
    # shellcheck disable=SC2086
    for f in "$here/arm/main_suit.c" "$here/arm/crypto_stub.c" "$here/arm/crypto_stub_suit.c"; do
        $CC $CFLAGS -I"$src/include" -c "$f" -o "$work/probe_suit/$(basename "$f" .c).o" ||
            { echo "arm-size: build error in $f" >&2; exit 1; }
    done
    $CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-Map="$work/probe_suit.map" \
        --specs=nano.specs --specs=nosys.specs -o "$work/probe_suit.elf" \
        "$work"/suit/*.o "$work"/cose/*.o "$work"/core/*.o "$work"/probe_suit/*.o ||
        { echo "arm-size: SUIT probe link error" >&2; exit 1; }
    python3 "$here/arm/size.py" suit "$work/probe_suit.map" "$SUIT_FLASH_GOAL" \
        "$SUIT_STACK_GOAL" suit,cose,core suit cose core || rc=1
fi

# ---- the verify path WITH Mbed TLS's ECDSA (issue 12), report only ----------
# A third image: tools/arm/main_signed.c calls mg_dev_signed_check, linked
# with the device/core/cose objects above, the REAL src/crypto/mbedtls.c
# (instead of the stub) and Mbed TLS 2.28.3 (Debian 12's source package,
# fetched and SHA-256-checked by tools/arm/mbedtls-fetch.sh) built for the same
# CPU with tools/arm/mbedtls_config.h (ECDSA verify on P-256, SHA-256, static
# buffer allocator; no entropy, no DRBG, no filesystem). Figures (method:
# tools/arm/size_mbedtls.py): flash total and Mbed TLS's share; the worst
# stack from mg_dev_signed_check down through mbedtls_ecdsa_verify; and the
# heap the buffer allocator needs, measured on the host by
# tools/arm/mbedtls_heap.c (same config, 32-bit limbs). No budget. The
# unpacked source, the MCU objects and the host programs are cached under
# build/arm/ (the only thing this script writes in the tree). Without the
# source (no network), a SKIP line and no failure.
echo
mb_cache="$src/build/arm"
if ! mbsrc=$("$here/arm/mbedtls-fetch.sh" "$mb_cache" 2>"$work/fetch.err"); then
    echo "SKIP verify-path+mbedtls: Mbed TLS 2.28.3 source unavailable: $(tail -n 1 "$work/fetch.err")"
    exit $rc
fi
MBFLAGS="-std=c99 -mcpu=cortex-m0plus -mthumb -Os -ffunction-sections -fdata-sections -fstack-usage
         -fcallgraph-info=su"
MBLIB="bignum ecp ecp_curves ecdsa sha256 asn1parse asn1write platform platform_util
       memory_buffer_alloc constant_time"
key=$( (echo "$MBFLAGS $MBLIB"; $CC --version | head -n 1; cat "$here/arm/mbedtls_config.h" \
        "$here/arm/mbedtls_heap.c" "$src/src/crypto/mbedtls.c") | sha256sum | cut -c1-16)
obj="$mb_cache/obj-$key"
if [ ! -f "$obj/.done" ]; then
    rm -rf "$obj" && mkdir -p "$obj"
    for f in $MBLIB; do
        # shellcheck disable=SC2086
        $CC $MBFLAGS -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"' -I"$here/arm" -I"$mbsrc/include" -c "$mbsrc/library/$f.c" -o "$obj/$f.o" ||
            { echo "arm-size: Mbed TLS build error in $f.c" >&2; exit 1; }
    done
    touch "$obj/.done"
fi
mkdir -p "$work/mbedtls" "$work/crypto" "$work/probe_signed"
cp "$obj"/*.o "$obj"/*.su "$obj"/*.ci "$work/mbedtls/"
# shellcheck disable=SC2086
$CC $CFLAGS -fcallgraph-info=su -DMG_MBEDTLS_NO_ENTROPY -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"' \
    -I"$here/arm" -I"$mbsrc/include" -I"$src/include" -I"$src/src/crypto" \
    -c "$src/src/crypto/mbedtls.c" -o "$work/crypto/mbedtls.o" ||
    { echo "arm-size: src/crypto/mbedtls.c does not build against Mbed TLS $mbsrc" >&2; exit 1; }
# shellcheck disable=SC2086
$CC $CFLAGS -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"' -I"$here/arm" -I"$mbsrc/include" \
    -I"$src/include" -c "$here/arm/main_signed.c" -o "$work/probe_signed/main_signed.o" ||
    { echo "arm-size: build error in tools/arm/main_signed.c" >&2; exit 1; }
$CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-Map="$work/probe_signed.map" \
    --specs=nano.specs --specs=nosys.specs -o "$work/probe_signed.elf" \
    "$work"/device/*.o "$work"/core/*.o "$work"/cose/*.o "$work"/crypto/mbedtls.o \
    "$work"/mbedtls/*.o "$work"/probe_signed/*.o ||
    { echo "arm-size: verify-path+mbedtls link error" >&2; exit 1; }
ARM_NM=${CC%gcc}nm python3 "$here/arm/size_mbedtls.py" "$work/probe_signed.map" "$work/probe_signed.elf" ||
    { echo "arm-size: size_mbedtls.py failed" >&2; exit 1; }

# Heap: the same verify on the host (tools/arm/mbedtls_heap.c), 32-bit limbs
# as on the MCU. max_get (MBEDTLS_MEMORY_DEBUG) gives the peak of the octets
# handed out and of the live blocks; the smallest static buffer that still
# verifies is found by bisection (plain build, as on the MCU). The host's
# block header is 8 words of 8 octets where the MCU's is 8 words of 4: the
# MCU buffer is the host's minimum less 32 octets per block (peak blocks + 1).
HOSTCC=${HOST_CC:-cc}
heap="$mb_cache/heap-$key"
if command -v "$HOSTCC" >/dev/null 2>&1 && [ ! -f "$heap/.done" ]; then
    rm -rf "$heap" && mkdir -p "$heap"
    hsrc=""
    for f in $MBLIB; do hsrc="$hsrc $mbsrc/library/$f.c"; done
    for dbg in 0 1; do
        d=""
        [ $dbg = 1 ] && d="-DMG_MBEDTLS_HEAP_DEBUG"
        # shellcheck disable=SC2086
        "$HOSTCC" -std=c11 -O2 -w -ffunction-sections -fdata-sections -Wl,--gc-sections $d \
            -DMBEDTLS_HAVE_INT32 -DMG_MBEDTLS_NO_ENTROPY -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"' \
            -I"$here/arm" -I"$mbsrc/include" -I"$src/include" -I"$src/src/crypto" \
            -o "$heap/heap$dbg" "$here/arm/mbedtls_heap.c" "$src/src/crypto/mbedtls.c" \
            "$src/src/core/util.c" $hsrc || { rm -rf "$heap"; break; }
    done
    [ -d "$heap" ] && touch "$heap/.done"
fi
if [ -f "$heap/.done" ] && max=$("$heap/heap1" max); then
    lo=0 hi=65536
    "$heap/heap0" try $hi || { echo "verify-path+mbedtls heap: verify fails on the host" >&2; exit 1; }
    while [ $((hi - lo)) -gt 1 ]; do
        mid=$(((lo + hi) / 2))
        if "$heap/heap0" try $mid; then hi=$mid; else lo=$mid; fi
    done
    blocks=${max##* }
    echo "verify-path+mbedtls heap (host, tools/arm/mbedtls_heap.c, one good + one forged ES256 verify):" \
        "$max; smallest buffer $hi octets with 64-bit headers"
    echo "verify-path+mbedtls heap: MBEDTLS_MEMORY_BUFFER_ALLOC_C buffer ~$((hi - (blocks + 1) * 32))" \
        "octets on the Cortex-M0+ (32-octet headers; estimate from the host run, report only)"
else
    echo "verify-path+mbedtls heap: not measured (no host C compiler $HOSTCC or host build error)"
fi
exit $rc
