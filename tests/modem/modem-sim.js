#!/usr/bin/env node
// A simulated GSM modem in PDU mode (3GPP TS 27.007 / TS 27.005) on a tty,
// whose "network" is the test SMSC (tests/smsc/smsc.js) reached over SMPP
// with the npm package `smpp` 0.5.1. It stands in for real hardware in the
// tests of the AT-modem bearer (src/cli/modem.c); see README.md.
//
//   node modem-sim.js --tty PATH --smsc HOST:PORT --msisdn +E164 [--password P] [--noise]
//
// AT side: AT, ATE0/ATE1 (echo is ON at start, as on real modems), AT+CMEE=n,
// AT+CMGF=0 (PDU mode only; =1 gives +CMS ERROR: 303), AT+CNMI=..., AT+CSMS?,
// AT+CMGS=<n> -> "\r\n> ", then the PDU hex up to Ctrl-Z (ESC cancels) ->
// submit_sm -> "+CMGS: <mr>" "OK", or "+CMS ERROR: 500" (SMSC refused),
// "+CMS ERROR: 304" (bad PDU). Other commands: ERROR.
// Network side: bound as transceiver with address_range = --msisdn; each
// deliver_sm becomes an SMS-DELIVER written as "+CMT: ,<len>\r\n<hex>" once
// AT+CNMI is set (queued while a PDU is being typed in, as modems do).
// --noise: after AT+CNMI, emits lines a bearer must ignore (a >512-octet
// line, broken +CMT headers and PDUs, RING) before anything else.
// Prints "ready" on stdout when bound and the tty is open; logs to stderr.
'use strict';

const fs = require('fs');
const path = require('path');
const tty = require('tty');
const smpp = require(path.join(__dirname, '..', 'smsc', 'node_modules', 'smpp'));

// short_message must stay the raw octets (as in smsc.js).
delete smpp.commands.submit_sm.params.short_message.filter;
delete smpp.commands.deliver_sm.params.short_message.filter;

function log(...a) { process.stderr.write(`modem-sim ${opt.msisdn || ''}: ${a.join(' ')}\n`); }
function die(msg) { log(msg); process.exit(1); }

const opt = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--noise') opt.noise = true;
  else if (['--tty', '--smsc', '--msisdn', '--password'].includes(a) && i + 1 < process.argv.length)
    opt[a.slice(2)] = process.argv[++i];
  else die(`usage: node modem-sim.js --tty PATH --smsc HOST:PORT --msisdn +E164 [--password P] [--noise] (bad "${a}")`);
}
if (!opt.tty || !opt.smsc || !opt.msisdn) die('--tty, --smsc and --msisdn are required');
const hp = /^(.+):(\d+)$/.exec(opt.smsc);
if (!hp) die('--smsc takes HOST:PORT');

// ---- TS 23.040 encoding and decoding (the small part a modem needs) -------

const SEMI = '0123456789*#abc';
function addrDecode(b, i) { // -> {str, ton, next}
  const len = b[i], toa = b[i + 1], n = (len + 1) >> 1;
  if (len > 20 || i + 2 + n > b.length) throw new Error('address');
  const ton = (toa >> 4) & 7;
  if (ton === 5) throw new Error('alphanumeric destination');
  let s = '';
  for (let k = 0; k < len; k++) {
    const v = (b[i + 2 + (k >> 1)] >> ((k & 1) * 4)) & 15;
    if (v === 15) throw new Error('filler in address');
    s += SEMI[v];
  }
  return { str: (ton === 1 ? '+' : '') + s, ton, npi: toa & 15, next: i + 2 + n };
}
function addrEncode(s, ton) {
  const intl = s.startsWith('+') || ton === 1;
  const d = s.replace(/^\+/, '');
  if (d.length === 0 || d.length > 20 || !/^[0-9*#abc]+$/.test(d)) throw new Error(`address "${s}"`);
  const out = [d.length, intl ? 0x91 : 0x81];
  for (let k = 0; k < d.length; k += 2) {
    const lo = SEMI.indexOf(d[k]), hi = k + 1 < d.length ? SEMI.indexOf(d[k + 1]) : 15;
    out.push(lo | (hi << 4));
  }
  return out;
}
// TS 23.038 §4: does TP-UDL count septets?
function dcsSeptets(dcs) {
  const g = dcs >> 4;
  if (g <= 7) return (dcs & 0x20) === 0 && ((dcs >> 2) & 3) !== 1 && ((dcs >> 2) & 3) !== 2;
  if (g === 0xf) return (dcs & 4) === 0;
  return g !== 0xe; // 0xE: UCS2; reserved groups count as GSM 7-bit
}
function unpack7(b, n) {
  const out = Buffer.alloc(n);
  for (let k = 0; k < n; k++) {
    const bit = k * 7, o = bit >> 3, sh = bit & 7;
    out[k] = ((b[o] >> sh) | (sh > 1 ? (b[o + 1] << (8 - sh)) : 0)) & 0x7f;
  }
  return out;
}
function pack7(s) {
  const out = Buffer.alloc(Math.ceil(s.length * 7 / 8));
  for (let k = 0; k < s.length; k++) {
    const bit = k * 7, o = bit >> 3, sh = bit & 7, v = s[k] & 0x7f;
    out[o] |= (v << sh) & 0xff;
    if (sh > 1) out[o + 1] |= v >> (8 - sh);
  }
  return out;
}

// SMS-SUBMIT (§9.2.2.2) -> fields; throws on anything malformed.
function decodeSubmit(b) {
  let i = 0;
  const fo = b[i++];
  if ((fo & 3) !== 1) throw new Error('not an SMS-SUBMIT');
  const vpf = (fo >> 3) & 3, udhi = (fo & 0x40) !== 0;
  const mr = b[i++];
  const da = addrDecode(b, i);
  i = da.next;
  const pid = b[i++], dcs = b[i++];
  i += [0, 7, 1, 7][vpf];
  const udl = b[i++];
  if (udl === undefined) throw new Error('truncated');
  const sept = dcsSeptets(dcs);
  const octets = sept ? Math.ceil(udl * 7 / 8) : udl;
  if (octets > 140 || i + octets !== b.length) throw new Error('UDL disagrees with the length');
  const ud = b.subarray(i);
  return { mr, da, pid, dcs, udhi, ud, udl, sept };
}

function scts(d) {
  const sw = (n) => { const t = String(n).padStart(2, '0'); return parseInt(t[1] + t[0], 16); };
  return [d.getUTCFullYear() % 100, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(),
    d.getUTCMinutes(), d.getUTCSeconds(), 0].map(sw);
}

// deliver_sm -> SMS-DELIVER TPDU (§9.2.2.1).
function encodeDeliver(pdu) {
  const udhi = (pdu.esm_class & 0x40) !== 0;
  const sm = Buffer.from(pdu.short_message || Buffer.alloc(0));
  let dcs, ud, udl;
  const dc = pdu.data_coding & 0xff;
  if (dc === 0x00 || dc === 0x01 || dc === 0x03) { // SMSC default / IA5 / Latin-1 text
    if (udhi) throw new Error('7-bit text with a UDH is not simulated');
    dcs = 0x00; ud = pack7(sm); udl = sm.length;
    if (udl > 160) throw new Error('text too long');
  } else {
    dcs = dc === 0x02 ? 0x04 : dc;
    if (dcsSeptets(dcs)) throw new Error(`data_coding 0x${dc.toString(16)} not simulated`);
    ud = sm; udl = sm.length;
  }
  if (ud.length > 140) throw new Error('UD longer than 140 octets');
  const fo = 0x04 | (udhi ? 0x40 : 0); // SMS-DELIVER, TP-MMS: no more messages
  return Buffer.from([fo, ...addrEncode(pdu.source_addr || '', pdu.source_addr_ton),
    pdu.protocol_id & 0xff, dcs, ...scts(new Date()), udl, ...ud]);
}

// ---- the tty ---------------------------------------------------------------

let fd;
try { fd = fs.openSync(opt.tty, 'r+'); } catch (e) { die(`cannot open ${opt.tty}: ${e.message}`); }
if (!tty.isatty(fd)) die(`${opt.tty} is not a terminal`);
const rx = new tty.ReadStream(fd);
const tx = new tty.WriteStream(fd);
rx.on('error', (e) => die(`tty: ${e.message}`));
tx.on('error', (e) => die(`tty: ${e.message}`));

let echo = true, cmgf = 0, cnmi = false;
let mode = 'cmd'; // 'cmd' | 'pdu' (typing in after the prompt) | 'busy' (submit_sm in flight)
let cmd = Buffer.alloc(0), pduHex = '', pduLen = 0, mr = 0;
const pendingCmt = []; // TPDUs waiting to be shown as +CMT
const MAX_PENDING = 100;

function put(s) { tx.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s); }
function result(s) { put(`\r\n${s}\r\n`); }

function flushCmt() {
  if (!cnmi || mode === 'pdu') return;
  while (pendingCmt.length > 0) {
    const t = pendingCmt.shift();
    if (mode === 'busy') log('+CMT written while AT+CMGS waits for its result');
    put(`\r\n+CMT: ,${t.length}\r\n00${t.toString('hex').toUpperCase()}\r\n`);
  }
}

function noise() {
  put(`\r\n${'X'.repeat(600)}\r\n`);                 // longer than 512 octets
  put('\r\n+CMT: ,99\r\nZZZZ\r\n');                   // PDU line not hex
  put('\r\n+CMT: ,5\r\n000411\r\n');                  // length disagrees, bad TPDU
  put('\r\n+CMT: "a,b",12\r\n0001000A812143658709000000\r\n'); // an SMS-SUBMIT, not a DELIVER
  put('\r\n+CMT: garbage\r\n');                       // unparseable header
  put('\r\nRING\r\n\r\n+CMTI: "SM",3\r\n');
}

function command(line) {
  const s = line.trim().toUpperCase();
  if (s === '') return;
  if (echo) put(`${line}\r`);
  let m;
  if (s === 'AT') result('OK');
  else if ((m = /^ATE([01])$/.exec(s))) { echo = m[1] === '1'; result('OK'); }
  else if (/^AT\+CMEE=[012]$/.test(s)) result('OK');
  else if ((m = /^AT\+CMGF=([01])$/.exec(s))) {
    if (m[1] === '1') result('+CMS ERROR: 303'); // text mode: operation not supported here
    else { cmgf = 0; result('OK'); }
  } else if (/^AT\+CNMI=/.test(s)) {
    cnmi = true;
    result('OK');
    if (opt.noise) noise();
    flushCmt();
  } else if (s === 'AT+CSMS?') { put('\r\n+CSMS: 0,1,1,1\r\n'); result('OK'); }
  else if ((m = /^AT\+CMGS=(\d{1,3})$/.exec(s))) {
    pduLen = Number(m[1]);
    if (cmgf !== 0 || pduLen < 7 || pduLen > 164) { result('+CMS ERROR: 304'); return; }
    mode = 'pdu';
    pduHex = '';
    put('\r\n> ');
  } else result('ERROR');
}

function submit() {
  let b, sub;
  try {
    if (!/^([0-9A-Fa-f]{2})+$/.test(pduHex)) throw new Error('not hex');
    b = Buffer.from(pduHex, 'hex');
    const sl = b[0];
    if (sl > 11 || 1 + sl >= b.length) throw new Error('SMSC part');
    const tpdu = b.subarray(1 + sl);
    if (tpdu.length !== pduLen) throw new Error(`AT+CMGS=${pduLen} but the TPDU has ${tpdu.length} octets`);
    sub = decodeSubmit(tpdu);
  } catch (e) {
    log(`bad PDU: ${e.message}`);
    mode = 'cmd';
    result('+CMS ERROR: 304');
    flushCmt();
    return;
  }
  mode = 'busy';
  const msgRef = mr;
  mr = (mr + 1) & 0xff;
  const fields = {
    source_addr_ton: 1, source_addr_npi: 1, source_addr: opt.msisdn,
    dest_addr_ton: sub.da.ton, dest_addr_npi: sub.da.npi, destination_addr: sub.da.str,
    esm_class: sub.udhi ? 0x40 : 0, protocol_id: sub.pid, data_coding: sub.dcs,
    registered_delivery: 0,
    short_message: sub.sept ? unpack7(sub.ud, sub.udl) : Buffer.from(sub.ud),
  };
  if (sub.sept && sub.udhi) fields.short_message = Buffer.from(sub.ud); // not simulated exactly
  session.submit_sm(fields, (resp) => {
    if (resp.command_status === 0) {
      log(`submitted to ${sub.da.str} (${sub.ud.length} octets), mr ${msgRef}`);
      flushCmt(); // unsolicited codes may come before the final result
      put(`\r\n+CMGS: ${msgRef}\r\n`);
      result('OK');
    } else {
      log(`submit_sm refused 0x${resp.command_status.toString(16)}`);
      result('+CMS ERROR: 500');
    }
    mode = 'cmd';
    flushCmt();
    drain();
  });
}

function drain() {
  while (mode === 'cmd' && cmd.length > 0) {
    let k = cmd.findIndex((c) => c === 0x0d || c === 0x0a);
    if (k < 0) {
      if (cmd.length > 1024) cmd = Buffer.alloc(0);
      return;
    }
    const line = cmd.subarray(0, k).toString('latin1').replace(/[\x00-\x1f]/g, '');
    cmd = cmd.subarray(k + 1);
    command(line);
    while (mode === 'pdu' && cmd.length > 0) {
      const c = cmd[0];
      cmd = cmd.subarray(1);
      pduByte(c);
    }
  }
}

function pduByte(c) {
  if (c === 0x1a) submit();
  else if (c === 0x1b) { mode = 'cmd'; result('OK'); flushCmt(); }
  else if (c !== 0x0d && c !== 0x0a && pduHex.length < 2 * 200) pduHex += String.fromCharCode(c);
}

rx.on('data', (d) => {
  for (const c of d) {
    if (mode === 'pdu') pduByte(c);
    else cmd = Buffer.concat([cmd, Buffer.from([c])]);
  }
  drain();
});

// ---- the network (SMSC over SMPP) -----------------------------------------

const session = smpp.connect({ url: `smpp://${hp[1]}:${hp[2]}`, auto_enquire_link_period: 10000 });
session.on('connect', () => {
  session.bind_transceiver({
    system_id: 'modem-sim', password: opt.password || '', address_range: opt.msisdn,
  }, (pdu) => {
    if (pdu.command_status !== 0) die(`bind refused 0x${pdu.command_status.toString(16)}`);
    log(`bound to ${opt.smsc} as ${opt.msisdn}, tty ${opt.tty}`);
    process.stdout.write('ready\n');
  });
});
session.on('deliver_sm', (pdu) => {
  let t;
  try { t = encodeDeliver(pdu); } catch (e) {
    log(`deliver_sm from ${pdu.source_addr} refused: ${e.message}`);
    session.send(pdu.response({ command_status: smpp.ESME_RX_P_APPN }));
    return;
  }
  if (pendingCmt.length >= MAX_PENDING) {
    session.send(pdu.response({ command_status: smpp.ESME_RMSGQFUL }));
    return;
  }
  pendingCmt.push(t);
  session.send(pdu.response());
  flushCmt();
});
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('error', (e) => die(`SMSC: ${e.message}`));
session.on('close', () => die('SMSC connection closed'));

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { log(`${sig}: stopping`); process.exit(0); });
