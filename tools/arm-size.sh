#!/bin/sh
# tools/arm-size.sh — flash and stack of the portable core on a Cortex-M0+.
#
# Budget (issue 2): secured packets + TPDU + replay, crypto excluded:
# flash <= 6144 octets, stack <= 1024 octets. Exits non-zero on a FAIL or on
# any build error. Works in a temporary directory; writes nothing in the tree.
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
#                                {common,ota,tpdu}.h, so the whole public core
#                                survives --gc-sections, not only main's calls;
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

FLASH_GOAL=6144
STACK_GOAL=1024
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
# shellcheck disable=SC2086
for f in "$src"/src/core/*.c; do
    b=$(basename "$f" .c)
    $CC $CFLAGS -fcallgraph-info=su -I"$src/include" -I"$src/src/core" -c "$f" \
        -o "$work/core/$b.o" || { echo "arm-size: build error in $f" >&2; exit 1; }
done

# keep.c: the address of every public function of the core headers.
headers=""
for h in common ota tpdu; do
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
$CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -Wl,-Map="$work/probe.map" \
    --specs=nano.specs --specs=nosys.specs -o "$work/probe.elf" \
    "$work"/core/*.o "$work"/probe/*.o || { echo "arm-size: link error" >&2; exit 1; }

# The MCU build of the Mbed TLS backend (compile only).
ln -s /usr/include/mbedtls "$work/inc/mbedtls"
$CC $CFLAGS -DMG_MBEDTLS_NO_ENTROPY -I"$src/include" -I"$src/src/crypto" -I"$work/inc" \
    -c "$src/src/crypto/mbedtls.c" -o "$work/mbedtls.o" ||
    { echo "arm-size: src/crypto/mbedtls.c does not compile for Cortex-M0+" >&2; exit 1; }
mbed=$(arm-none-eabi-size "$work/mbedtls.o" | awk 'NR==2 {print $1 + $2}')
echo "src/crypto/mbedtls.c compiles for Cortex-M0+ (-DMG_MBEDTLS_NO_ENTROPY): $mbed octets of glue, excluded"

python3 - "$work" "$FLASH_GOAL" "$STACK_GOAL" <<'EOF'
import glob, os, re, sys
work, flash_goal, stack_goal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

# ---- flash: kept input sections of the core objects, from the map --------
lines = open(os.path.join(work, 'probe.map')).read().split('\n')
start = next(i for i, l in enumerate(lines) if l.startswith('Linker script and memory map'))
per_obj, buckets, pending = {}, {}, None
sec_re = re.compile(r'^ (\.(?:text|rodata|data)\S*)(?:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*))?$')
cont_re = re.compile(r'^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$')
for l in lines[start:]:
    m = sec_re.match(l)
    if m:
        if m.group(2):
            rec = (m.group(1), int(m.group(3), 16), m.group(4))
        else:
            pending = m.group(1)
            continue
    elif pending:
        c = cont_re.match(l)
        pending_name, pending = pending, None
        if not c:
            continue
        rec = (pending_name, int(c.group(2), 16), c.group(3))
    else:
        continue
    name, size, obj = rec
    if size == 0:
        continue
    if '/core/' in obj and obj.endswith('.o'):
        key = os.path.basename(obj)
        per_obj[key] = per_obj.get(key, 0) + size
    else:
        b = 'libgcc' if 'libgcc' in obj else 'newlib' if 'libc' in obj else os.path.basename(obj)
        buckets[b] = buckets.get(b, 0) + size
flash = sum(per_obj.values())
print('core objects (kept .text+.rodata+.data):',
      ', '.join('%s %d' % kv for kv in sorted(per_obj.items())))
print('not counted:', ', '.join('%s %d' % kv for kv in sorted(buckets.items())))

# ---- stack: call graph of the core ----------------------------------------
nodes, edges = {}, {}
node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
for ci in glob.glob(os.path.join(work, 'core', '*.ci')):
    for l in open(ci):
        m = node_re.search(l)
        if m:
            t, label = m.group(1), m.group(2)
            fm = re.search(r'\\n(\d+) bytes \((\w+)', label)
            if fm:
                nodes[t] = (int(fm.group(1)), fm.group(2))
            else:
                nodes.setdefault(t, None)  # external: defined elsewhere or not ours
            continue
        m = edge_re.search(l)
        if m:
            edges.setdefault(m.group(1), set()).add(m.group(2))
# The only indirect call the core may make: mg_wipe() calls memset through a
# volatile pointer (so that the wipe is not optimised away); its target is
# memset, a library leaf. Any other indirect call makes the figure unknown.
known_indirect = {'mg_wipe'}
crypto = {'mg_crypto_cbc', 'mg_crypto_mac', 'mg_crypto_random', 'mg_alg_block',
          'mg_key_init', 'mg_key_clear', 'mg_crypto_backend'}
leaves, problems = set(), []
memo, onstack = {}, set()
def depth(f):
    if f in memo:
        return memo[f]
    if f in onstack:
        problems.append('recursion through ' + f)
        return (0, [])
    info = nodes.get(f)
    if info is None:
        if f in crypto:
            return (0, [f + ' (crypto, excluded)'])
        if '__indirect_call' in f:
            problems.append('indirect call')
        leaves.add(f)
        return (0, [f + ' (library leaf, 0)'])
    size, kind = info
    if kind != 'static':
        problems.append('%s frame is %s' % (f, kind))
    onstack.add(f)
    best = (0, [])
    for g in edges.get(f, ()):
        if g == '__indirect_call' and f in known_indirect:
            g = 'memset'
        d = depth(g)
        if d[0] > best[0] or (d[0] == best[0] and len(d[1]) > len(best[1])):
            best = d
    onstack.discard(f)
    memo[f] = (size + best[0], ['%s %d' % (f.split(':')[-1], size)] + best[1])
    return memo[f]
public = sorted(t for t in nodes if ':' not in t and nodes[t] is not None)
results = sorted(((depth(p), p) for p in public), key=lambda x: -x[0][0])
print('worst-case stack per public function (top 6):')
for (d, chain), p in results[:6]:
    print('  %5d  %s' % (d, ' -> '.join(chain)))
print('library leaves counted as 0:', ', '.join(sorted(leaves)) or 'none')
stack = results[0][0][0] if results else 0

ok = True
print('flash: %d bytes (goal <= %d) %s' % (flash, flash_goal, 'PASS' if flash <= flash_goal else 'FAIL'))
ok &= flash <= flash_goal
if problems:
    print('stack: unknown (%s) FAIL' % '; '.join(sorted(set(problems))))
    ok = False
else:
    print('stack: %d bytes (goal <= %d) %s' % (stack, stack_goal, 'PASS' if stack <= stack_goal else 'FAIL'))
    ok &= stack <= stack_goal
sys.exit(0 if ok else 1)
EOF
