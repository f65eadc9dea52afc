#!/usr/bin/env node
// Flood injector of the m2mguard memory test (tests/gateway/flood.sh): an SMPP
// client (npm `smpp` 0.5.1) that binds once to the test SMSC on 127.0.0.1 and
// submits, as fast as a window of outstanding submit_sm allows, bounded in count
// and time:
//   --spoof N --to GW                N SMS from N distinct sender numbers
//                                    (--spoof-base digits, + a 7-digit index); needs
//                                    an SMSC that passes the claimed sender through
//                                    (smsc.js SMSC_SPOOF=1)
//   --parts M --from DEV --part HEX  M never-completed first parts of concatenated
//                                    packets from DEV: HEX is a genuine first part
//                                    (UDH with IE 00); each copy gets IE 08 with its
//                                    own 16-bit reference (TS 23.040 9.2.3.24.8)
// Options: --port P (required), --password PW ($SMSC_PASSWORD), --window W (256),
// --max-seconds S (120), --bind-as ADDR (4999000000: the flooder's own number). Prints one JSON line: submitted, acked, refused, seconds.
// Exit: 0 all submitted and answered, 1 not (time limit, refusals), 2 usage.
'use strict';

const smpp = require('smpp');

delete smpp.commands.submit_sm.params.short_message.filter; // raw octets, as smsc.js

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!k.startsWith('--') || i + 1 >= process.argv.length) usage(`bad argument ${k}`);
  args[k.slice(2)] = process.argv[i + 1];
}
function usage(msg) {
  process.stderr.write(`flood: ${msg}\n`);
  process.exit(2);
}
const int = (k, d, max) => {
  const v = args[k] === undefined ? d : Number(args[k]);
  if (!Number.isInteger(v) || v < 0 || v > max) usage(`--${k} must be 0..${max}`);
  return v;
};
const port = int('port', -1, 65535);
if (port <= 0) usage('--port is required');
const spoof = int('spoof', 0, 1000000);
const parts = int('parts', 0, 65536);
const windowMax = int('window', 256, 4096);
const maxSeconds = int('max-seconds', 120, 3600);
function total0() { return spoof + parts; }
const spoofBase = args['spoof-base'] || '49160';
const password = args.password || process.env.SMSC_PASSWORD || '';
if (!/^[0-9]{1,8}$/.test(spoofBase)) usage('--spoof-base takes 1..8 digits');
if (total0() > 0 && !args.to) usage('--to is required');
if (parts > 0 && (!args.from || !args.part || !/^([0-9a-fA-F]{2})+$/.test(args.part))) {
  usage('--parts needs --from and --part HEX');
}

// The first part with its IE 00 (8-bit reference) replaced by IE 08 (16-bit).
let partHead, partRest, partTotal = 0;
if (parts > 0) {
  const p = Buffer.from(args.part, 'hex');
  const udhl = p[0];
  if (p.length < 1 + udhl) usage('--part: UDH longer than the part');
  const ies = [];
  let found = false;
  for (let i = 1; i < 1 + udhl;) {
    if (i + 2 > 1 + udhl || i + 2 + p[i + 1] > 1 + udhl) usage('--part: malformed UDH');
    if (p[i] === 0x00 && p[i + 1] === 3 && !found) {
      found = true;
      partTotal = p[i + 3];
    } else ies.push(p.subarray(i, i + 2 + p[i + 1]));
    i += 2 + p[i + 1];
  }
  if (!found) usage('--part: no concatenation IE 00 in its UDH');
  if (partTotal < 2) usage('--part: not the first of several parts');
  partHead = { total: partTotal, ies: Buffer.concat(ies) };
  partRest = p.subarray(1 + udhl);
}
function partOf(ref) {
  const ie = Buffer.from([0x08, 0x04, ref >> 8, ref & 0xff, partHead.total, 1]);
  const udh = Buffer.concat([ie, partHead.ies]);
  return Buffer.concat([Buffer.from([udh.length]), udh, partRest]);
}

const total = spoof + parts;
let next = 0, acked = 0, refused = 0, inflight = 0, finished = false;
const t0 = process.hrtime.bigint();
const seconds = () => Number(process.hrtime.bigint() - t0) / 1e9;

function finish(code) {
  if (finished) return;
  finished = true;
  const s = seconds();
  process.stdout.write(JSON.stringify({ submitted: next, acked, refused, seconds: Number(s.toFixed(3)) }) + '\n');
  try { session.close(); } catch (e) { /* closing anyway */ }
  process.exit(code);
}
const timer = setTimeout(() => {
  process.stderr.write(`flood: time limit of ${maxSeconds} s reached\n`);
  finish(1);
}, maxSeconds * 1000);
timer.unref();

// The first parts go first, then the spoofed senders.
function pduOf(i) {
  if (i < parts) {
    return {
      source_addr_ton: 1, source_addr_npi: 1, source_addr: args.from.replace(/^\+/, ''),
      dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: (args.to || '').replace(/^\+/, ''),
      esm_class: 0x40, protocol_id: 0, data_coding: 0x04,
      short_message: partOf(i & 0xffff),
    };
  }
  return {
    source_addr_ton: 1, source_addr_npi: 1,
    source_addr: spoofBase + String(i - parts).padStart(7, '0'),
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: args.to.replace(/^\+/, ''),
    esm_class: 0x40, protocol_id: 0, data_coding: 0x04,
    // a command-packet-shaped SMS: UDH 02 70 00 and a short body
    short_message: Buffer.from('027000000d0d16001212' + '4d4700' + '0000000001', 'hex'),
  };
}

function pump() {
  while (!finished && inflight < windowMax && next < total) {
    const i = next++;
    inflight++;
    session.submit_sm(pduOf(i), (resp) => {
      inflight--;
      if (resp.command_status === 0) acked++;
      else refused++;
      if (acked + refused === total) finish(refused === 0 ? 0 : 1);
      else pump();
    });
  }
}

const session = smpp.connect({ host: '127.0.0.1', port }, () => {
  session.bind_transceiver({ system_id: 'flood', password, address_range: args['bind-as'] || '4999000000' }, (pdu) => {
    if (pdu.command_status !== 0) {
      process.stderr.write(`flood: bind refused 0x${pdu.command_status.toString(16)}\n`);
      finish(1);
      return;
    }
    if (total === 0) finish(0);
    pump();
  });
});
session.on('deliver_sm', (pdu) => session.send(pdu.response())); // nothing is expected
session.on('error', (e) => {
  process.stderr.write(`flood: ${e.message}\n`);
  finish(1);
});
session.on('close', () => finish(acked + refused === total && refused === 0 ? 0 : 1));
