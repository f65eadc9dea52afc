#!/usr/bin/env python3
"""Flash and stack of the signed-command verify path WITH Mbed TLS (issue 12;
tools/arm-size.sh, third image). Report-only: no budget.

usage: size_mbedtls.py MAP ELF

MAP is the linker map of the probe; the objects sit beside it in WORK/device,
core, cose (m2mguard), crypto (src/crypto/mbedtls.c, the real backend) and
mbedtls (Mbed TLS 2.28.3, tools/arm/mbedtls_config.h), each with its .su/.ci.

Flash = the input sections .text*, .rodata*, .data* the linker KEPT from those
objects (the probe's main, newlib and libgcc are listed apart, not counted).
Stack = the largest sum of static frames (-fstack-usage) along any call chain
from mg_dev_signed_check (-fcallgraph-info=su graphs joined by name). The
indirect calls on the way are resolved where the target is known and listed:
  mbedtls_calloc/mbedtls_free -> buffer_alloc_calloc/buffer_alloc_free (the
      pointers mbedtls_memory_buffer_alloc_init installs);
  mbedtls_platform_zeroize, mg_wipe -> memset (volatile function pointer);
  ecp.c mbedtls_mpi_mul_mod -> grp->modp, NULL without MBEDTLS_ECP_NIST_OPTIM
      (never called: counted 0);
  bignum.c mpi_fill_random_internal -> f_rng: only reached through
      ecp_randomize_jac when an RNG is given; verification gives none
      (mbedtls_ecp_muladd passes NULL, MBEDTLS_ECP_NO_INTERNAL_RNG): 0.
A local function without a frame of its own (identical code folding made it
an alias, e.g. ecp.c mbedtls_mpi_shift_l_mod.part.0 = mbedtls_mpi_add_mod.part.0)
takes the node of the function at the same address in ELF (nm).
Any other indirect call stops the analysis there: the figure is then a lower
bound, and said so.
"""
import glob, os, re, sys

import subprocess
map_path, elf = sys.argv[1], sys.argv[2]
addr_of, names_at = {}, {}
for l in subprocess.run([os.environ.get('ARM_NM', 'arm-none-eabi-nm'), elf], capture_output=True,
                        text=True, check=True).stdout.splitlines():
    p = l.split()
    if len(p) == 3 and p[1] in 'tT':
        addr_of.setdefault(p[2], set()).add(p[0])
        names_at.setdefault(p[0], set()).add(p[2])
work = os.path.dirname(map_path)
groups = ['device', 'core', 'cose', 'crypto', 'mbedtls']

# ---- flash ----------------------------------------------------------------
lines = open(map_path).read().split('\n')
start = next(i for i, l in enumerate(lines) if l.startswith('Linker script and memory map'))
per_group, per_mbed, other, pending = {}, {}, {}, None
sec_re = re.compile(r'^ (\.(?:text|rodata|data)\S*)(?:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*))?$')
cont_re = re.compile(r'^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$')
for l in lines[start:]:
    m = sec_re.match(l)
    if m:
        if not m.group(2):
            pending = m.group(1)
            continue
        size, obj = int(m.group(3), 16), m.group(4)
    elif pending:
        c = cont_re.match(l)
        pending = None
        if not c:
            continue
        size, obj = int(c.group(2), 16), c.group(3)
    else:
        continue
    if size == 0:
        continue
    g = next((d for d in groups if ('/%s/' % d) in obj and obj.endswith('.o')), None)
    if g:
        per_group[g] = per_group.get(g, 0) + size
        if g == 'mbedtls':
            b = os.path.basename(obj)
            per_mbed[b] = per_mbed.get(b, 0) + size
    else:
        b = 'libgcc' if 'libgcc' in obj else 'newlib' if 'libc' in obj else os.path.basename(obj)
        other[b] = other.get(b, 0) + size
total = sum(per_group.values())
mbed = per_group.get('mbedtls', 0)
print('verify-path+mbedtls objects (kept .text+.rodata+.data):',
      ', '.join('%s %d' % (g, per_group.get(g, 0)) for g in groups))
print('  mbedtls/:', ', '.join('%s %d' % kv for kv in sorted(per_mbed.items(), key=lambda x: -x[1])))
print('  not counted:', ', '.join('%s %d' % kv for kv in sorted(other.items())))

# ---- stack ----------------------------------------------------------------
nodes, edges = {}, {}
node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
for d in groups:
    for ci in glob.glob(os.path.join(work, d, '*.ci')):
        for l in open(ci):
            m = node_re.search(l)
            if m:
                fm = re.search(r'\\n(\d+) bytes \((\w+)', m.group(2))
                if fm:
                    nodes[m.group(1)] = (int(fm.group(1)), fm.group(2))
                else:
                    nodes.setdefault(m.group(1), None)
                continue
            m = edge_re.search(l)
            if m:
                edges.setdefault(m.group(1), set()).add(m.group(2))
def short(t):
    return t.split(':')[-1]
def find(name):
    return next((t for t in nodes if nodes[t] and short(t) == name), name)
resolve = {'mbedtls_calloc': [find('buffer_alloc_calloc')],
           'mbedtls_free': [find('buffer_alloc_free')],
           'mbedtls_platform_zeroize': ['memset'], 'mg_wipe': ['memset'],
           'mbedtls_mpi_mul_mod': [], 'mpi_fill_random_internal': []}
def alias(f):
    # f: 'path:name' with no node; the node of a function at the same address
    path, name = f.rsplit(':', 1)
    for a in addr_of.get(name, ()):
        for other in names_at.get(a, ()):
            t = path + ':' + other
            if other != name and nodes.get(t):
                return t
    return None
resolved, unresolved, problems, leaves, aliases = set(), set(), [], set(), set()
memo, onstack = {}, set()
def depth(f):
    if f in memo:
        return memo[f]
    if f in onstack:
        problems.append('recursion through ' + short(f))
        return (0, [])
    info = nodes.get(f)
    if info is None and ':' in f:
        a = alias(f)
        if a is None:
            problems.append('no frame for ' + short(f))
            return (0, [])
        aliases.add('%s = %s' % (short(f), short(a)))
        r = depth(a)
        return (r[0], [short(f) + '=' + r[1][0]] + r[1][1:])
    if info is None:
        leaves.add(f)
        return (0, [])
    size, kind = info
    if kind != 'static':
        problems.append('%s frame is %s' % (short(f), kind))
    onstack.add(f)
    best = (0, [])
    targets = set(edges.get(f, ()))
    if '__indirect_call' in targets:
        targets.discard('__indirect_call')
        if short(f) in resolve:
            resolved.add(short(f))
            targets |= set(resolve[short(f)])
        else:
            unresolved.add(short(f))
    for g in targets:
        d = depth(g)
        if d[0] > best[0]:
            best = d
    onstack.discard(f)
    memo[f] = (size + best[0], ['%s %d' % (short(f), size)] + best[1])
    return memo[f]
top = depth('mg_dev_signed_check')
print('worst-case stack from mg_dev_signed_check: %d bytes' % top[0])
print('  ' + ' -> '.join(top[1]))
for f in ('mg_crypto_verify', 'mbedtls_ecdsa_verify'):
    d = depth(find(f))
    print('  of which %s: %d (%s)' % (f, d[0], ' -> '.join(d[1][:4]) + (' ...' if len(d[1]) > 4 else '')))
print('  library leaves counted 0:', ', '.join(sorted(short(x) for x in leaves)) or 'none')
if aliases:
    print('  folded functions (same address):', ', '.join(sorted(aliases)))
print('  indirect calls resolved: mbedtls_calloc/mbedtls_free -> buffer_alloc_calloc/free, '
      'mbedtls_platform_zeroize/mg_wipe -> memset, ecp.c mbedtls_mpi_mul_mod -> grp->modp '
      '(NULL without ECP_NIST_OPTIM, 0), mpi_fill_random_internal -> f_rng (none when verifying, 0)' if resolved else '  no indirect calls on the path')
bound = ''
if unresolved:
    bound = ' (LOWER BOUND: indirect calls not followed in %s)' % ', '.join(sorted(unresolved))
    print('  function pointers stop the analysis in: ' + ', '.join(sorted(unresolved)))
if problems:
    bound += ' (UNKNOWN: %s)' % '; '.join(sorted(set(problems)))
print('verify-path+mbedtls flash: %d bytes, of which Mbed TLS %d, src/crypto/mbedtls.c %d '
      '(report only)' % (total, mbed, per_group.get('crypto', 0)))
print('verify-path+mbedtls stack: %d bytes from mg_dev_signed_check%s (report only)' % (top[0], bound))
