#!/usr/bin/env node
// Mixed-flood injector of the availability measurement (issue 11 item 3:
// tests/gateway/flood_mix.sh, bench/bench_flood.sh): an SMPP client (npm
// `smpp` 0.5.1) that binds once to the test SMSC (tests/smsc/smsc.js with
// SMSC_SPOOF=1, which passes the claimed sender through) and submits, paced
// against the clock, legitimate secured SMS of registered devices and forged
// SMS at FACTOR times their rate:
//   legitimate  the lines of --legit FILE, in file order: "MSISDN UD_HEX" (a real
//               secured packet of that device, UDH 02 70 00 included; each
//               device's lines in counter order)
//   forged      in turn: (1) a random unknown number (--unknown-base digits + 7
//               random digits) carrying a command-packet-shaped SMS; (2) a
//               registered device's number with one of its genuine packets whose
//               last octet is flipped (checksum fails); (3) a replay: a genuine
//               packet of that device sent at least 1 s earlier, sent again
//               (replays start once there is one; until then (1) is sent).
// Options: --port P (required), --password PW ($SMSC_PASSWORD), --to GW
// (required), --legit FILE (required), --rate R legitimate SMS per second in all
// (default 20), --factor F forged per legitimate (default 10), --window W
// outstanding submit_sm at most (256), --max-seconds S (300), --unknown-base D
// (49169), --bind-as ADDR (4999000001).
// Prints one JSON line: legit and forged counts (by kind), acked, refused,
// seconds, achieved rates. Exit: 0 all submitted and acknowledged, 1 not, 2 usage.
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const smpp = require('smpp');

delete smpp.commands.submit_sm.params.short_message.filter; // raw octets, as smsc.js

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!k.startsWith('--') || i + 1 >= process.argv.length) usage(`bad argument ${k}`);
  args[k.slice(2)] = process.argv[i + 1];
}
function usage(msg) {
  process.stderr.write(`flood_mix: ${msg}\n`);
  process.exit(2);
}
const num = (k, d, min, max) => {
  const v = args[k] === undefined ? d : Number(args[k]);
  if (!Number.isFinite(v) || v < min || v > max) usage(`--${k} must be ${min}..${max}`);
  return v;
};
const port = num('port', 0, 1, 65535);
const rate = num('rate', 20, 0.1, 100000);
const factor = num('factor', 10, 0, 1000);
const windowMax = num('window', 256, 1, 4096);
const maxSeconds = num('max-seconds', 300, 1, 3600);
const password = args.password || process.env.SMSC_PASSWORD || '';
const unknownBase = args['unknown-base'] || '49169';
if (!/^[0-9]{1,8}$/.test(unknownBase)) usage('--unknown-base takes 1..8 digits');
if (!args.to || !/^\+?[0-9]{3,15}$/.test(args.to)) usage('--to is required (a number)');
if (!args.legit) usage('--legit FILE is required');

// At most 1 000 000 lines of at most 2 x 160 hex digits: bounded input.
const legit = [];
for (const line of fs.readFileSync(args.legit, 'utf8').split('\n')) {
  if (line.trim() === '') continue;
  const m = /^(\+?[0-9]{3,15}) ([0-9a-fA-F]{2,320})$/.exec(line.trim());
  if (!m || m[2].length % 2 !== 0) usage(`--legit: bad line '${line.slice(0, 80)}'`);
  if (legit.length >= 1000000) usage('--legit: more than 1 000 000 lines');
  legit.push({ from: m[1].replace(/^\+/, ''), ud: Buffer.from(m[2], 'hex') });
}
if (legit.length === 0) usage('--legit: no lines');
const legitTotal = legit.length;
const forgedTotal = Math.round(legitTotal * factor);

const to = args.to.replace(/^\+/, '');
const counts = { legit: 0, unknown: 0, wrong_mac: 0, replay: 0 };
const sentAt = []; // index -> ms when the legitimate line i was submitted
let nextLegit = 0, nextForged = 0, acked = 0, refused = 0, inflight = 0, finished = false;
const t0 = process.hrtime.bigint();
const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;

function pdu(from, ud) {
  return {
    source_addr_ton: 1, source_addr_npi: 1, source_addr: from,
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: to,
    esm_class: 0x40, protocol_id: 0, data_coding: 0x04, short_message: ud,
  };
}

function forged(i) {
  const now = ms();
  const kind = i % 3;
  if (kind === 1) {
    // a registered number, one of its genuine packets with the last octet flipped
    const l = legit[crypto.randomInt(legitTotal)];
    const ud = Buffer.from(l.ud);
    ud[ud.length - 1] ^= 0x5a;
    counts.wrong_mac++;
    return pdu(l.from, ud);
  }
  if (kind === 2) {
    // a replay of a genuine packet submitted at least 1 s ago
    let hi = nextLegit;
    while (hi > 0 && now - sentAt[hi - 1] < 1000) hi--;
    if (hi > 0) {
      const l = legit[crypto.randomInt(hi)];
      counts.replay++;
      return pdu(l.from, l.ud);
    }
  }
  counts.unknown++;
  const from = unknownBase + String(crypto.randomInt(10000000)).padStart(7, '0');
  // a command-packet-shaped SMS: UDH 02 70 00 and a short body
  return pdu(from, Buffer.from('027000000d0d16001212' + '4d4700' + '0000000001', 'hex'));
}

function finish(code) {
  if (finished) return;
  finished = true;
  const s = ms() / 1000;
  process.stdout.write(JSON.stringify({
    legit_submitted: counts.legit, forged_submitted: nextForged,
    forged_unknown: counts.unknown, forged_wrong_mac: counts.wrong_mac, forged_replay: counts.replay,
    acked, refused, seconds: Number(s.toFixed(3)),
    legit_per_s: Number((counts.legit / s).toFixed(1)), forged_per_s: Number((nextForged / s).toFixed(1)),
  }) + '\n');
  try { session.close(); } catch (e) { /* closing anyway */ }
  process.exit(code);
}
const timer = setTimeout(() => {
  process.stderr.write(`flood_mix: time limit of ${maxSeconds} s reached\n`);
  finish(1);
}, maxSeconds * 1000);
timer.unref();

function submit(p) {
  inflight++;
  session.submit_sm(p, (resp) => {
    inflight--;
    if (resp.command_status === 0) acked++;
    else refused++;
    if (acked + refused === legitTotal + forgedTotal) finish(refused === 0 ? 0 : 1);
  });
}

// Paced against the clock: by time t, rate*t legitimate and factor times as
// many forged ones are due; each tick sends what is due (window permitting),
// a legitimate one first when both are due.
function pump() {
  const t = ms() / 1000;
  const dueLegit = Math.min(legitTotal, Math.floor(t * rate) + 1);
  const dueForged = Math.min(forgedTotal, Math.floor(t * rate * factor));
  while (!finished && inflight < windowMax && (nextLegit < dueLegit || nextForged < dueForged)) {
    if (nextLegit < dueLegit &&
        (nextForged >= dueForged || nextLegit * factor <= nextForged)) {
      const l = legit[nextLegit];
      sentAt[nextLegit] = ms();
      nextLegit++;
      counts.legit++;
      submit(pdu(l.from, l.ud));
    } else {
      submit(forged(nextForged++));
    }
  }
}

const session = smpp.connect({ host: '127.0.0.1', port }, () => {
  session.bind_transceiver({ system_id: 'floodmix', password, address_range: args['bind-as'] || '4999000001' }, (r) => {
    if (r.command_status !== 0) {
      process.stderr.write(`flood_mix: bind refused 0x${r.command_status.toString(16)}\n`);
      finish(1);
      return;
    }
    const iv = setInterval(() => {
      if (nextLegit >= legitTotal && nextForged >= forgedTotal) clearInterval(iv);
      else pump();
    }, 5);
  });
});
session.on('deliver_sm', (p) => session.send(p.response())); // nothing is expected
session.on('error', (e) => {
  process.stderr.write(`flood_mix: ${e.message}\n`);
  finish(1);
});
session.on('close', () => finish(acked + refused === legitTotal + forgedTotal && refused === 0 ? 0 : 1));
