// The console's browser test (tests/console/browser.sh starts the peers and
// sets the MG_* variables): headless Debian chromium driven by playwright-core.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const E = process.env;
const base = E.MG_URL, bin = E.MG_BIN, home = E.M2MGUARD_HOME, shots = E.MG_SHOTS, tmp = E.MG_TMP;
const t0 = Date.now();
let passed = 0;
function ok(msg) { passed++; console.log(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s): ${msg}`); }
function fail(msg) { throw new Error(msg); }
function mg(...args) {
  return execFileSync(bin, args, { encoding: 'utf8', env: { ...E, M2MGUARD_SMSC_PASSWORD: E.MG_SMSC_PASSWORD } });
}
function pw(user) { return fs.readFileSync(path.join(tmp, user + '.pw'), 'utf8').trim(); }
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// ---- key material: every device's SMS keys, as hex (both cases) and base64 ----
function secrets() {
  const out = [];
  const dir = path.join(home, 'devices');
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.prov')) continue;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const m = /^(kic|kid|key\w*)=([0-9a-fA-F]{16,})$/.exec(line.trim());
      if (!m) continue;
      const hex = m[2].toLowerCase();
      out.push(hex, hex.toUpperCase(), Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, ''),
        Buffer.from(hex, 'hex').toString('base64url').replace(/=+$/, ''));
    }
  }
  return out;
}

// ---- everything the browser received, to grep for key material ----
const bodies = [];
function record(page) {
  page.on('response', async (r) => {
    const ct = r.headers()['content-type'] || '';
    if (ct.startsWith('text/event-stream')) return; // streams: their events are in the DOM, grepped below
    try { bodies.push({ url: r.url(), text: (await r.body()).toString('latin1') }); } catch (e) { /* redirects */ }
  });
}
const problems = [];
function watch(page, who) {
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${who} ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who} ${page.url()}: script error ${e.message}`));
  page.on('dialog', (d) => d.accept());
  record(page);
}

async function login(ctx, user, shoot) {
  const page = await ctx.newPage();
  watch(page, user);
  await page.goto(base + '/');
  if (!page.url().endsWith('/login')) fail(`unauthenticated / went to ${page.url()}, not /login`);
  if (shoot) {
    for (const size of SIZES.slice().reverse()) {
      await page.setViewportSize(size);
      await a11y(page, `login at ${size.width}`);
      await page.screenshot({ path: path.join(shots, `login-${size.width}x${size.height}.png`) });
    }
  }
  if (shoot) { // a wrong password first: refused, and the page says so
    await page.getByLabel('Operator name').fill(user);
    await page.getByLabel('Password').fill('not-' + pw(user));
    await Promise.all([page.waitForURL(/\/login\?error=/, { timeout: 20000, waitUntil: 'commit' }), page.getByRole('button', { name: 'Sign in' }).click()]);
    await page.waitForSelector('#login-msg:not([hidden])');
  }
  await page.getByLabel('Operator name').fill(user);
  await page.getByLabel('Password').fill(pw(user));
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 20000, waitUntil: 'commit' }),
    page.getByRole('button', { name: 'Sign in' }).click()]).catch((e) => fail(`${user} did not get past the login page (${page.url()}): ${e.message.split('\n')[0]}`));
  await page.waitForFunction(() => { const w = document.getElementById('who'); return w && w.textContent.length > 1 && w.textContent !== '…'; });
  const who = await page.textContent('#who');
  if (!who.includes(user)) fail(`signed in as ${who}, not ${user}`);
  return page;
}

// ---- accessibility basics, computed in the page ----
async function a11y(page, label) {
  const r = await page.evaluate(() => {
    const bad = [];
    function name(el) {
      if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
      const lb = el.getAttribute('aria-labelledby');
      if (lb) return lb.split(/\s+/).map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
      if (el.labels && el.labels.length) return Array.from(el.labels).map((l) => l.textContent).join(' ').trim();
      if (el.tagName === 'BUTTON' || el.tagName === 'A') return el.textContent.trim();
      return el.getAttribute('title') || '';
    }
    for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
      if (el.type === 'hidden') continue;
      if (!name(el)) bad.push(`no accessible name: <${el.tagName.toLowerCase()} id=${el.id}>`);
    }
    for (const svg of document.querySelectorAll('svg')) if (!svg.querySelector('title')) bad.push('svg without <title>');
    for (const img of document.querySelectorAll('img')) if (!img.getAttribute('alt') && !img.getAttribute('title')) bad.push('img without alt');
    for (const f of document.querySelectorAll('iframe')) if (!f.getAttribute('title')) bad.push('iframe without title');
    for (const t of document.querySelectorAll('table')) if (!t.querySelector('th[scope]')) bad.push(`table ${t.id} without th scope`);
    // contrast (WCAG 2 relative luminance) of the text colours in use
    function rgb(s) { const m = /rgba?\(([^)]+)\)/.exec(s); if (!m) return null; const v = m[1].split(',').map(Number); return { r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1 }; }
    function lum(c) { return [c.r, c.g, c.b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0); }
    function bg(el) {
      for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
      return { r: 255, g: 255, b: 255, a: 1 };
    }
    const seen = {};
    let checked = 0, min = 21;
    const sel = 'body, h1, h2, h3, p, td, th, label, a, button, .badge, .muted, .who-name, dt, dd, li, figcaption, .live, option';
    for (const el of document.querySelectorAll(sel)) {
      if (!el.offsetParent && el.tagName !== 'BODY') continue; // not rendered
      if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const cs = getComputedStyle(el);
      if (parseFloat(cs.opacity) < 1) continue;
      const fg = rgb(cs.color), b = bg(el);
      const key = cs.color + '|' + JSON.stringify(b);
      if (seen[key]) continue;
      seen[key] = true;
      const l1 = lum(fg), l2 = lum(b);
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      checked++;
      min = Math.min(min, ratio);
      if (ratio < 4.5) bad.push(`contrast ${ratio.toFixed(2)} < 4.5: ${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${cs.color} on rgb(${b.r},${b.g},${b.b})`);
    }
    const overflow = document.documentElement.scrollWidth > window.innerWidth + 1;
    return { bad, checked, min, overflow, width: document.documentElement.scrollWidth };
  });
  if (r.bad.length) fail(`${label}: ${r.bad.join('; ')}`);
  if (r.overflow) fail(`${label}: the page is ${r.width} px wide at ${page.viewportSize().width} px (tables must scroll inside their box)`);
  return r;
}

// each page, its address and what shows that its data has arrived
const PAGES = [['fleet', '/', 'tr[data-device] >> nth=0', '#chart-events figcaption'],
  ['device', '/device?name=meter-1', '#dev-meta dt', '#dev-events tbody tr'],
  ['events', '/events', '#events tbody tr[data-id]', '#chart-events figcaption'],
  ['alerts', '/alerts?state=all', 'article[data-alert]', '#chart-alerts figcaption'],
  ['audit', '/audit', '#audit-summary .card', '#findings tbody tr'],
  ['risk', '/risk', '#verdict .v', 'iframe.report']];
const SIZES = [{ width: 1280, height: 800 }, { width: 390, height: 844 }];

// every page at the given sizes in a signed-in tab: screenshots, accessibility
async function tour(page, sizes) {
  const worst = [];
  for (const size of sizes) {
    await page.setViewportSize(size);
    for (const [name, url, ...ready] of PAGES) {
      const t0p = Date.now();
      await page.goto(base + url);
      for (const r of ready) await page.waitForSelector(r, { state: 'attached', timeout: 15000 });
      if (name === 'risk') await page.frameLocator('iframe.report').locator('h1').waitFor({ timeout: 15000 });
      console.error(`tour: ${name} at ${size.width}: loaded in ${Date.now() - t0p} ms`);
      const t = Date.now();
      const r = await a11y(page, `${name} at ${size.width}`);
      worst.push(r.min);
      await page.screenshot({ path: path.join(shots, `${name}-${size.width}x${size.height}.png`) });
      if (E.MG_SHOTS_FULL) await page.screenshot({ path: path.join(shots, `${name}-${size.width}-full.png`), fullPage: true });
      bodies.push({ url: 'DOM ' + url, text: await page.content() });
      console.error(`tour: ${name} at ${size.width}: checks and screenshot ${Date.now() - t} ms`);
    }
  }
  return Math.min(...worst);
}

// a viewer: no action buttons; the API refuses an action
async function viewer(browser) {
  const vctx = await browser.newContext({ viewport: SIZES[0], ignoreHTTPSErrors: true });
  const vp = await login(vctx, 'bob');
  await vp.goto(base + '/alerts?state=all');
  await vp.waitForSelector('article[data-alert]', { timeout: 20000 });
  const vb = await vp.$$('button[data-action]');
  if (vb.length) fail(`the viewer sees ${vb.length} action button(s) on the alerts page`);
  const st = await vp.evaluate(async () => {
    const me = await (await fetch('/api/me')).json();
    const r = await fetch('/api/device/quarantine', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf }, body: JSON.stringify({ name: 'lock-1' }) });
    return r.status;
  });
  if (st !== 403) fail(`the viewer's quarantine request: HTTP ${st}, not 403`);
  if (!/status: active/.test(mg('device', 'show', 'lock-1'))) fail('lock-1 changed by a viewer');
  ok('the viewer bob sees no action button on the alerts page and POST /api/device/quarantine answers 403');
  await vctx.close();
}

async function ready() { // browser.sh touches $MG_TMP/ready once the console answers
  for (let i = 0; i < 1200; i++) {
    if (fs.existsSync(path.join(tmp, 'ready'))) return;
    await sleep(50);
  }
  fail('the console did not come up within 60 s');
}

(async () => {
  const launching = chromium.launch({ executablePath: E.MG_CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const browser = await launching;
  if (E.MG_BROWSER_ONLY !== 'pages') await ready();
  const t1 = Date.now();
  try {
    if (E.MG_BROWSER_ONLY === 'pages') { // screenshots and accessibility only (against any console)
      const ctx = await browser.newContext({ viewport: SIZES[0], ignoreHTTPSErrors: true });
      const c = await tour(await login(ctx, 'alice', true), SIZES);
      if (problems.length) fail('CSP violations or script errors:\n  ' + problems.join('\n  '));
      ok(`pages: lowest text contrast ${c.toFixed(2)}:1`);
      return;
    }
    const ctx = await browser.newContext({ viewport: SIZES[0], ignoreHTTPSErrors: true });
    const page = await login(ctx, 'alice', true);
    ok('a wrong password is refused (the login page says so); alice signed in through the login form (CSRF field from the server)');

    // 1. a device appears when it is added
    await page.waitForSelector('tr[data-device="meter-1"]');
    let t = Date.now();
    mg('device', 'add', 'meter-2', '--msisdn', '+4915100000303', '--class', 'meter');
    await page.waitForSelector('tr[data-device="meter-2"]', { timeout: 15000 });
    ok(`meter-2 added with m2mguard device add appeared on the fleet page after ${Date.now() - t} ms`);

    // 2. a forged SMS (checksum under guessed keys, meter-1's number) arrives live
    await page.goto(base + '/events');
    await page.waitForSelector('#live.on', { timeout: 15000 }).catch(() => {});
    const forged = mg('sms', 'pack', '--spi', '1600', '--kic', '12', '--kid', '12', '--tar', '4d4700',
      '--cntr', '0000000101', '--kic-key', '00112233445566778899aabbccddeeff',
      '--kid-key', '00112233445566778899aabbccddeeff', '756e6c6f636b').trim();
    t = Date.now();
    mg('agent', 'inject', '--smsc', E.MG_SMSC, '--from', '+4915100000301', '--to', E.MG_GATEWAY_NUMBER, '027000' + forged);
    await page.waitForSelector('#events tbody tr.fresh[data-kind="auth_fail"]', { timeout: 20000 });
    ok(`the forged SMS's auth_fail event arrived live (server-sent events) ${Date.now() - t} ms after its injection`);

    // 3. from the alert, quarantine meter-1
    await page.goto(base + '/alerts');
    const q = 'article[data-rule="forged_for_device"] button[data-action="quarantine"]';
    await page.waitForSelector(q, { timeout: 20000 });
    await page.screenshot({ path: path.join(shots, 'alerts-before-quarantine-1280x800.png') });
    await page.click(q);
    await page.waitForSelector('#toast.show', { timeout: 10000 });
    const toast = await page.textContent('#toast');
    if (/fail/i.test(toast)) fail('quarantine: ' + toast);
    const show = mg('device', 'show', 'meter-1');
    if (!/status: quarantined/.test(show)) fail('meter-1 not quarantined: ' + show);
    // the device page now offers to activate it again (an operator may)
    await page.goto(base + '/device?name=meter-1');
    await page.waitForSelector('#dev-actions button[data-action="activate"]', { timeout: 15000 });
    const evs = mg('events', '--json');
    if (!/"kind":"console_quarantine"[^\n]*alice|alice[^\n]*"kind":"console_quarantine"/.test(evs)) fail('no console_quarantine event naming alice');
    ok(`quarantined meter-1 from the alert ("${toast.trim()}"); event console_quarantine by alice; the device page now offers Activate`);

    // 4. the gateway refuses meter-1's next valid message
    await sleep(1300); // the gateway re-reads a device's status every second
    await page.goto(base + '/events?kind=quarantined');
    await page.waitForSelector('#live.on', { timeout: 15000 }).catch(() => {});
    const agent = spawn(bin, ['agent', 'run', '--prov', path.join(home, 'devices', 'meter-1.prov'), '--smsc', E.MG_SMSC,
      '--count', '1', '--telemetry', 'after-quarantine', '--output', path.join(tmp, 'meter-1.jsonl')],
    { env: { ...E, M2MGUARD_SMSC_PASSWORD: E.MG_SMSC_PASSWORD }, stdio: ['ignore', fs.openSync(path.join(tmp, 'agent.log'), 'a'), fs.openSync(path.join(tmp, 'agent.log'), 'a')] });
    try {
      await page.waitForSelector('#events tbody tr[data-kind="quarantined"]', { timeout: 20000 });
    } finally { agent.kill(); }
    const row = await page.textContent('#events tbody tr[data-kind="quarantined"]');
    if (!row.includes('meter-1')) fail('the quarantined event is not meter-1\'s: ' + row);
    ok('the gateway refused meter-1\'s next valid message: event quarantined, shown live');

    // 5. every page at 1280x800 and 390x844: screenshots, accessibility basics
    //    (one tab after the other: tabs at once were slower, the server answers in turn)
    const c = await tour(page, SIZES);
    ok(`every page at 1280x800 and 390x844: inputs named, SVG titled, tables with th scope, no horizontal overflow, lowest text contrast ${c.toFixed(2)}:1`);
    await ctx.close();
    await viewer(browser);

    if (problems.length) fail('CSP violations or script errors:\n  ' + problems.join('\n  '));
    ok('no CSP violation and no script error on any page');

    // 7. no key material in anything the browser received
    const keys = secrets();
    if (keys.length < 12) fail(`only ${keys.length} key strings found in the .prov files`);
    let n = 0, bytes = 0;
    for (const b of bodies) {
      n++;
      bytes += b.text.length;
      for (const k of keys) if (b.text.includes(k)) fail(`key material in ${b.url}`);
    }
    ok(`no key material (${keys.length / 4} device keys, hex and base64) in ${n} responses and pages (${bytes} bytes)`);
    console.log(`browser: ${passed} passed, 0 failed (${((Date.now() - t1) / 1000).toFixed(1)} s after the console came up)`);
  } finally {
    // a graceful close takes seconds on a loaded machine: at most 2 s, then
    // playwright kills the browser it launched when this process exits
    await Promise.race([browser.close(), sleep(2000)]);
  }
})().then(() => process.exit(0), (e) => { console.error('FAIL: ' + e.message); process.exit(1); });
