#!/usr/bin/env python3
"""Flash and stack figures of one Cortex-M0+ probe build (tools/arm-size.sh).

usage: size.py LABEL MAP FLASH_GOAL STACK_GOAL COUNTED_DIR CI_DIR... [--callbacks]

  LABEL        name printed with the figures ("core", "device")
  MAP          the linker map of the probe (-Wl,-Map)
  COUNTED_DIR  objects under WORK/COUNTED_DIR/ are counted (flash) and their
               public functions are the stack entry points; DIR,DIR2,... also
               counts the flash of the objects under the other directories
               (what the first one links of them)
  CI_DIR       directories whose .ci call graphs (-fcallgraph-info=su) are joined
  --callbacks  indirect calls from the counted objects are the caller's
               callbacks (device.h): counted 0 and listed, not a failure

Flash = the sizes of the input sections .text*, .rodata*, .data* the linker
KEPT from the counted objects. Stack = the deepest public entry point's sum of
static frames along any call chain; crypto calls and newlib/libgcc leaves
count 0; recursion, indirect calls (except mg_wipe's memset and, with
--callbacks, the callbacks) or dynamic frames make the figure unknown (FAIL).
"""
import glob, os, re, sys

args = [a for a in sys.argv[1:] if a != '--callbacks']
callbacks_ok = '--callbacks' in sys.argv[1:]
label, map_path, flash_goal, stack_goal, counted_dirs = args[0], args[1], int(args[2]), int(args[3]), args[4]
counted_dirs = counted_dirs.split(',')
counted = counted_dirs[0]
ci_dirs = args[5:]
work = os.path.dirname(map_path)

# ---- flash: kept input sections of the counted objects, from the map -------
lines = open(map_path).read().split('\n')
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
    cd = next((d for d in counted_dirs if ('/%s/' % d) in obj), None)
    if cd is not None and obj.endswith('.o'):
        key = os.path.basename(obj) if cd == counted else cd + '/' + os.path.basename(obj)
        per_obj[key] = per_obj.get(key, 0) + size
    else:
        b = 'libgcc' if 'libgcc' in obj else 'newlib' if 'libc' in obj else \
            os.path.basename(os.path.dirname(obj)) + '/' + os.path.basename(obj) \
            if obj.endswith('.o') and '/core/' in obj else os.path.basename(obj)
        buckets[b] = buckets.get(b, 0) + size
flash = sum(per_obj.values())
print('%s objects (kept .text+.rodata+.data):' % label,
      ', '.join('%s %d' % kv for kv in sorted(per_obj.items())))
print('not counted:', ', '.join('%s %d' % kv for kv in sorted(buckets.items())))

# ---- stack: call graph ------------------------------------------------------
nodes, edges, counted_nodes = {}, {}, set()
node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
for d in ci_dirs:
    for ci in glob.glob(os.path.join(work, d, '*.ci')):
        for l in open(ci):
            m = node_re.search(l)
            if m:
                t, lab = m.group(1), m.group(2)
                fm = re.search(r'\\n(\d+) bytes \((\w+)', lab)
                if fm:
                    nodes[t] = (int(fm.group(1)), fm.group(2))
                    if d == counted:
                        counted_nodes.add(t)
                else:
                    nodes.setdefault(t, None)  # external: defined elsewhere or not ours
                continue
            m = edge_re.search(l)
            if m:
                edges.setdefault(m.group(1), set()).add(m.group(2))
# mg_wipe() calls memset through a volatile pointer (so that the wipe is not
# optimised away); its target is memset, a library leaf.
known_indirect = {'mg_wipe'}
crypto = {'mg_crypto_cbc', 'mg_crypto_mac', 'mg_crypto_random', 'mg_alg_block',
          'mg_key_init', 'mg_key_clear', 'mg_crypto_backend', 'mg_crypto_sha256',
          'mg_crypto_verify', 'mg_crypto_sign', 'mg_crypto_public_key'}
leaves, problems, callbacks = set(), [], set()
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
        elif g == '__indirect_call' and callbacks_ok and f in counted_nodes:
            callbacks.add(f.split(':')[-1])
            continue
        d = depth(g)
        if d[0] > best[0] or (d[0] == best[0] and len(d[1]) > len(best[1])):
            best = d
    onstack.discard(f)
    memo[f] = (size + best[0], ['%s %d' % (f.split(':')[-1], size)] + best[1])
    return memo[f]
public = sorted(t for t in counted_nodes if ':' not in t)
results = sorted(((depth(p), p) for p in public), key=lambda x: -x[0][0])
print('worst-case stack per public function of the %s (top 6):' % label)
for (d, chain), p in results[:6]:
    print('  %5d  %s' % (d, ' -> '.join(chain)))
print('library leaves counted as 0:', ', '.join(sorted(leaves)) or 'none')
if callbacks:
    print("callbacks (the caller's, counted 0) called from:", ', '.join(sorted(callbacks)))
stack = results[0][0][0] if results else 0

ok = True
print('%s flash: %d bytes (goal <= %d) %s' % (label, flash, flash_goal, 'PASS' if flash <= flash_goal else 'FAIL'))
ok &= flash <= flash_goal
if problems:
    print('%s stack: unknown (%s) FAIL' % (label, '; '.join(sorted(set(problems)))))
    ok = False
else:
    print('%s stack: %d bytes (goal <= %d) %s' % (label, stack, stack_goal, 'PASS' if stack <= stack_goal else 'FAIL'))
    ok &= stack <= stack_goal
sys.exit(0 if ok else 1)
