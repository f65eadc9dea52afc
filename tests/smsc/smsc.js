#!/usr/bin/env node
// A small store-and-forward SMSC for the m2mguard tests, built on the npm
// package `smpp` 0.5.1 in server mode (smpp.createServer). See README.md.
//
//   node smsc.js [PORT]          (or env SMSC_PORT; 0 = any free port)
//
// Prints "listening PORT" on stdout when ready; logs to stderr.
// Environment:
//   SMSC_PASSWORD=pw        a bind must carry this password (else any)
//   SMSC_THROTTLE_EVERY=N   every Nth submit_sm is answered ESME_RTHROTTLED
//   SMSC_HOST=127.0.0.1     listen address (default 127.0.0.1)
//   SMSC_QUIET=1            log only binds, unbinds and errors
//   SMSC_SRC_PLUS=1         deliver numbers as "+digits" (default: digits, TON 1)
//   SMSC_DCS=0xF6           rewrite data_coding of delivered messages
//   SMSC_PAYLOAD=1          deliver user data in message_payload (0x0424)
//   SMSC_SAR=1              UDH concatenation IE of a part -> SAR TLVs on delivery
//   SMSC_LOOP_MT=1          attacker: each submit_sm also goes back to its submitter
//   SMSC_REFLECT=1          attacker: each submit_sm also goes, turned around, to the
//                           sender address the submit names
//   SMSC_SPOOF=1            attacker (or a lax aggregator): a deliver_sm carries the
//                           sender the submit claims, not the submitter's address
//   SMSC_REQUIRE_TXRX=1     bind_transceiver refused (ESME_RBINDFAIL)
//   SMSC_REQUIRE_TXRX=A,B   ... only for ESMEs binding with these address_ranges
//                           (the others, e.g. device agents, may bind as transceivers)
//   SMSC_CONTROL=1          the attacker's control channel (tests/redteam): a second
//                           listener on 127.0.0.1 (any free port, printed as
//                           "control PORT" on stdout); one command a line, one
//                           answer line ("ok ..." or "err ..."); see control() below
//   SMSC_SPREAD=1           several gateways (receivers) bound with one address: deliver_sm
//                           are spread round-robin over them (default: the newest bound
//                           session takes all); a sender's messages stay in order: while
//                           some of a sender's messages to the address are in flight on one
//                           session, its next ones go to that session too (or wait for room),
//                           as the counters "must be higher" require
//   SMSC_SPREAD=unordered   round-robin without that hold (messages may overtake each other)
//   SMSC_SUBMIT_LOG=FILE    one line per accepted submit_sm: "SESSION FROM TO ESM HEX"
'use strict';

const smpp = require('smpp');

// short_message must pass through byte-exact: the package's text filter on
// short_message (decode to a string / split off the UDH) is switched off for
// the two PDUs we route, so the field stays the raw octets of the wire.
delete smpp.commands.submit_sm.params.short_message.filter;
delete smpp.commands.deliver_sm.params.short_message.filter;
delete smpp.tlvs.message_payload.filter; // the same for message_payload

const host = process.env.SMSC_HOST || '127.0.0.1';
const port = Number(process.argv[2] || process.env.SMSC_PORT || 0);
const password = process.env.SMSC_PASSWORD;
const throttleEvery = Number(process.env.SMSC_THROTTLE_EVERY || 0);
const quiet = process.env.SMSC_QUIET === '1';
const WINDOW = 64; // deliver_sm in flight per ESME
const RETRY_MS = 1000; // after a temporary deliver_sm_resp error
const srcPlus = process.env.SMSC_SRC_PLUS === '1';
const dcsRewrite = process.env.SMSC_DCS !== undefined && process.env.SMSC_DCS !== ''
  ? Number(process.env.SMSC_DCS) : undefined;
const usePayload = process.env.SMSC_PAYLOAD === '1';
const useSar = process.env.SMSC_SAR === '1';
let loopMt = process.env.SMSC_LOOP_MT === '1';
let reflect = process.env.SMSC_REFLECT === '1';
let spoofSrc = process.env.SMSC_SPOOF === '1';
const controlOn = process.env.SMSC_CONTROL === '1';
const requireTxRxEnv = process.env.SMSC_REQUIRE_TXRX || '';
const requireTxRxFor = requireTxRxEnv === '1' ? null
  : new Set(requireTxRxEnv.split(',').filter((a) => a !== '').map(norm));
const spread = process.env.SMSC_SPREAD === '1' || process.env.SMSC_SPREAD === 'unordered';
const spreadOrdered = process.env.SMSC_SPREAD === '1';
const submitLog = process.env.SMSC_SUBMIT_LOG
  ? require('fs').openSync(process.env.SMSC_SUBMIT_LOG, 'a', 0o600) : undefined;
const requireTxRx = (key) => requireTxRxEnv !== '' && (requireTxRxFor === null || requireTxRxFor.has(key));
if (dcsRewrite !== undefined && !(Number.isInteger(dcsRewrite) && dcsRewrite >= 0 && dcsRewrite <= 255)) {
  process.stderr.write(`smsc: SMSC_DCS must be 0..255, not ${process.env.SMSC_DCS}\n`);
  process.exit(2);
}

// Routing key of a number: an international number (TON 1, or any number
// written with '+') is its digits without '+', so "+4917..." and "4917..."
// with TON 1 reach the same ESME, as on a real SMSC. Anything else (national,
// alphanumeric) is kept as written.
function norm(addr) {
  const a = String(addr || '');
  return /^\+?[0-9]+$/.test(a) ? a.replace(/^\+/, '') : a;
}
// How a number leaves the SMSC in a deliver_sm: TON 1/NPI 1 digits (with '+'
// when SMSC_SRC_PLUS=1); other addresses as they are, TON 5 if not digits.
function outAddr(key) {
  if (/^[0-9]+$/.test(key)) return { addr: (srcPlus ? '+' : '') + key, ton: 1, npi: 1 };
  return { addr: key, ton: 5, npi: 0 };
}

const registry = new Map(); // address_range -> [session], newest last
const queues = new Map(); // address -> [msg] waiting for that ESME
let nextMessageId = 1;
let submits = 0;
let sessionIds = 0;

function log(...args) {
  process.stderr.write(`smsc: ${args.join(' ')}\n`);
}
function debug(...args) {
  if (!quiet) log(...args);
}

// Back into the queue before the first message of the same sender submitted
// after it (message ids increase with the submission), else after its last.
const idOrder = (a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
function enqueueInOrder(msg) {
  if (!queues.has(msg.to)) queues.set(msg.to, []);
  const q = queues.get(msg.to);
  let at = q.length;
  for (let i = 0; i < q.length; i++) {
    if (q[i].from !== msg.from) continue;
    if (idOrder(q[i].id, msg.id) > 0) { at = i; break; }
    at = i + 1;
  }
  q.splice(at, 0, msg);
}

function enqueue(msg, front) {
  if (!queues.has(msg.to)) queues.set(msg.to, []);
  if (front) queues.get(msg.to).unshift(msg);
  else queues.get(msg.to).push(msg);
}

// Sends what is queued for addr to the ESME bound with it, window permitting.
// The newest session bound with addr that can still take a PDU.
function bound(addr) {
  const list = registry.get(addr) || [];
  for (let i = list.length - 1; i >= 0; i--) {
    if (!list[i].unbinding && list[i].socket.writable) return list[i];
  }
  return undefined;
}

// SMSC_SPREAD: per (address, sender) the session its messages in flight are on and
// how many; the round-robin position per address.
const senderBusy = new Map();
const rrNext = new Map();
const senderKey = (msg) => `${msg.to}|${msg.from}`;
function busyAdd(msg, d, session) {
  const k = senderKey(msg);
  const b = senderBusy.get(k) || { n: 0, session };
  b.n += d;
  if (b.n > 0) senderBusy.set(k, b);
  else senderBusy.delete(k);
}

// SMSC_SPREAD: each queued message to the next bound session (round-robin) with
// room in its window; a sender with a message in flight waits (ordered mode).
function pumpSpread(addr) {
  const q = queues.get(addr);
  const list = (registry.get(addr) || []).filter((x) => !x.unbinding && x.socket.writable);
  if (!q || list.length === 0) return;
  queues.delete(addr);
  let rr = rrNext.get(addr) || 0;
  const keep = [];
  const held = new Set(); // senders with a message kept in this round: the rest of theirs wait
  let i = 0;
  for (; i < q.length; i++) {
    const msg = q[i];
    const key = senderKey(msg);
    if (spreadOrdered && held.has(key)) { keep.push(msg); continue; }
    const busy = spreadOrdered ? senderBusy.get(key) : undefined;
    let s;
    if (busy) { // after the sender's messages in flight, on the same session
      if (!(list.includes(busy.session) && busy.session.inflight.size < WINDOW &&
            deliver(busy.session, msg, false))) {
        keep.push(msg);
        held.add(key);
      }
      continue;
    }
    for (let k = 0; k < list.length && !s; k++) {
      const c = list[(rr + k) % list.length];
      if (c.inflight.size < WINDOW) { s = c; rr = (rr + k + 1) % list.length; }
    }
    if (!s) break; // every window full
    if (!deliver(s, msg, false)) { // the session is closing: kept in its place
      keep.push(msg);
      held.add(key);
    }
  }
  rrNext.set(addr, rr);
  const rest = keep.concat(q.slice(i), queues.get(addr) || []);
  if (rest.length > 0) queues.set(addr, rest);
  else queues.delete(addr);
}

function pump(addr) {
  if (spread) { pumpSpread(addr); return; }
  const session = bound(addr);
  const q = queues.get(addr);
  if (!session || !q) return;
  while (q.length > 0 && session.inflight.size < WINDOW) {
    if (!deliver(session, q.shift())) break;
  }
  if (q.length === 0) queues.delete(addr);
}

function route(msg) {
  if (controlOn && !tap(msg)) return;
  enqueue(msg, false);
  pump(msg.to);
}

// requeue false (SMSC_SPREAD): on failure the caller keeps msg in its place.
function deliver(session, msg, requeue = true) {
  const src = outAddr(msg.from);
  const dst = outAddr(msg.to);
  let esm = msg.esm_class;
  let ud = msg.short_message;
  let sar;
  if (useSar && !msg.receipt && (esm & 0x40)) [ud, esm, sar] = udhToSar(ud, esm);
  const fields = {
    service_type: '',
    source_addr_ton: src.ton,
    source_addr_npi: src.npi,
    source_addr: src.addr,
    dest_addr_ton: dst.ton,
    dest_addr_npi: dst.npi,
    destination_addr: dst.addr,
    esm_class: esm,
    protocol_id: msg.protocol_id,
    priority_flag: 0,
    registered_delivery: 0,
    data_coding: dcsRewrite !== undefined && !msg.receipt ? dcsRewrite : msg.data_coding,
    short_message: usePayload || ud.length > 254 ? Buffer.alloc(0) : ud,
  };
  // message_payload when asked, or when the user data cannot fit short_message
  if (usePayload || ud.length > 254) fields.message_payload = ud;
  if (sar) Object.assign(fields, sar);
  if (msg.receipt) {
    fields.receipted_message_id = msg.receipt.id;
    fields.message_state = msg.receipt.state;
  }
  const pdu = new smpp.PDU('deliver_sm', fields);
  const ok = session.send(pdu, (resp) => {
    const was = session.inflight.delete(pdu.sequence_number);
    const st = resp.command_status;
    const temporary = st !== 0 && (st === smpp.ESME_RX_T_APPN || st === smpp.ESME_RTHROTTLED ||
                                   st === smpp.ESME_RMSGQFUL);
    if (temporary && spreadOrdered) {
      // the sender stays held (busy) until the message is back at the head of its queue
      debug(`deliver ${msg.id} to ${msg.to}: temporary error 0x${st.toString(16)}, retry in order`);
      setTimeout(() => {
        if (was) busyAdd(msg, -1, session);
        enqueueInOrder(msg);
        pump(msg.to);
      }, RETRY_MS);
      pump(msg.to);
      return;
    }
    if (was) busyAdd(msg, -1, session);
    if (st === 0 && resp.command === 'deliver_sm_resp') {
      debug(`delivered ${msg.id} ${msg.from} -> ${msg.to} (${msg.short_message.length} octets)`);
      if (msg.registered_delivery & 1) route(receiptFor(msg, 2, 'DELIVRD'));
    } else if (st === smpp.ESME_RX_T_APPN || st === smpp.ESME_RTHROTTLED ||
               st === smpp.ESME_RMSGQFUL) {
      debug(`deliver ${msg.id} to ${msg.to}: temporary error 0x${st.toString(16)}, retry`);
      setTimeout(() => route(msg), RETRY_MS);
    } else {
      log(`deliver ${msg.id} to ${msg.to}: refused 0x${st.toString(16)} (${resp.command})`);
      if (msg.registered_delivery & 1) route(receiptFor(msg, 5, 'UNDELIV'));
    }
    pump(msg.to);
  });
  if (ok) {
    session.inflight.set(pdu.sequence_number, msg);
    busyAdd(msg, 1, session);
  } else if (requeue) enqueue(msg, true); // the socket is closing: 'close' sends it elsewhere
  return ok;
}

// SMSC_SAR: a concatenation IE (00: 8-bit reference, 08: 16-bit; TS 23.040
// §9.2.3.24.1/.8) in the UDH becomes the SAR TLVs (SMPP 3.4 §5.3.2.22-24);
// the UDH keeps its other IEs, and goes (UDHI cleared) when none is left.
function udhToSar(ud, esm) {
  if (ud.length < 1 || ud[0] + 1 > ud.length) return [ud, esm, undefined];
  const udhl = ud[0];
  const keep = [];
  let sar;
  for (let i = 1; i < 1 + udhl;) {
    if (i + 2 > 1 + udhl) return [ud, esm, undefined]; // malformed: untouched
    const iei = ud[i], len = ud[i + 1];
    if (i + 2 + len > 1 + udhl) return [ud, esm, undefined];
    const v = ud.subarray(i + 2, i + 2 + len);
    if (iei === 0x00 && len === 3 && !sar) {
      sar = { sar_msg_ref_num: v[0], sar_total_segments: v[1], sar_segment_seqnum: v[2] };
    } else if (iei === 0x08 && len === 4 && !sar) {
      sar = { sar_msg_ref_num: (v[0] << 8) | v[1], sar_total_segments: v[2], sar_segment_seqnum: v[3] };
    } else {
      keep.push(ud.subarray(i, i + 2 + len));
    }
    i += 2 + len;
  }
  if (!sar) return [ud, esm, undefined];
  const rest = ud.subarray(1 + udhl);
  if (keep.length === 0) return [Buffer.from(rest), esm & ~0x40, sar];
  const ies = Buffer.concat(keep);
  return [Buffer.concat([Buffer.from([ies.length]), ies, rest]), esm, sar];
}

function yymmddhhmm(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

// SMSC delivery receipt (SMPP 3.4 §5.2.12 esm_class 0x04, Appendix B text,
// §5.3.2.12 receipted_message_id, §5.3.2.35 message_state).
function receiptFor(msg, state, stat) {
  const now = yymmddhhmm(new Date());
  const text = `id:${msg.id} sub:001 dlvrd:${state === 2 ? '001' : '000'} ` +
    `submit date:${msg.submitted} done date:${now} stat:${stat} err:000 Text:`;
  return {
    id: `r${msg.id}`,
    from: msg.to,
    to: msg.from,
    esm_class: 0x04, protocol_id: 0, data_coding: 0,
    short_message: Buffer.from(text, 'ascii'),
    registered_delivery: 0,
    receipt: { id: msg.id, state },
  };
}

function onSession(session) {
  const sid = ++sessionIds;
  session.inflight = new Map();
  session.socket.setNoDelay(true);
  let addr = null; // routing key of the bound address_range
  let mode = null; // 'trx', 'tx' or 'rx'
  debug(`session ${sid}: connected from ${session.socket.remoteAddress}:${session.socket.remotePort}`);

  const onBind = (cmd, m) => (pdu) => {
    if (addr !== null) {
      session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
      return;
    }
    if (m === 'trx' && requireTxRx(norm(pdu.address_range))) {
      log(`session ${sid}: bind_transceiver refused (SMSC_REQUIRE_TXRX)`);
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    if (password !== undefined && pdu.password !== password) {
      log(`session ${sid}: bind refused for "${pdu.system_id}": wrong password`);
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    addr = norm(pdu.address_range);
    mode = m;
    session.mode = m;
    if (m !== 'tx') { // receivers and transceivers get deliver_sm
      const old = bound(addr);
      if (!registry.has(addr)) registry.set(addr, []);
      registry.get(addr).push(session);
      if (old) debug(`session ${sid}: newest of several receivers for ${addr}`);
    }
    log(`session ${sid}: bound "${pdu.system_id}" (${cmd}), address ${addr}`);
    session.send(pdu.response({ system_id: 'm2mguard-smsc' }));
    if (m !== 'tx') pump(addr);
  };
  session.on('bind_transceiver', onBind('bind_transceiver', 'trx'));
  session.on('bind_transmitter', onBind('bind_transmitter', 'tx'));
  session.on('bind_receiver', onBind('bind_receiver', 'rx'));

  session.on('submit_sm', (pdu) => {
    if (addr === null || mode === 'rx') {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    submits++;
    if (throttleEvery > 0 && submits % throttleEvery === 0) {
      debug(`submit #${submits} from ${addr}: throttled`);
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    if (!pdu.destination_addr) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      return;
    }
    const sm = pdu.short_message && pdu.short_message.length ? pdu.short_message : undefined;
    const mp = pdu.message_payload && pdu.message_payload.length ? pdu.message_payload : undefined;
    if (sm && mp) { // SMPP 3.4 §5.3.2.32: one or the other
      session.send(pdu.response({ command_status: smpp.ESME_RINVOPTPARAMVAL || 0xC4 }));
      return;
    }
    const id = (nextMessageId++).toString(16).toUpperCase().padStart(8, '0');
    session.send(pdu.response({ message_id: id }));
    if (submitLog !== undefined) {
      require('fs').writeSync(submitLog, `${sid} ${addr} ${norm(pdu.destination_addr)} ${pdu.esm_class} ` +
        `${Buffer.from(sm || mp).toString('hex')}\n`);
    }
    const msg = {
      id,
      from: spoofSrc && pdu.source_addr ? norm(pdu.source_addr) : addr,
      to: norm(pdu.destination_addr),
      esm_class: pdu.esm_class, protocol_id: pdu.protocol_id, data_coding: pdu.data_coding,
      short_message: Buffer.from(sm || mp || Buffer.alloc(0)),
      registered_delivery: pdu.registered_delivery,
      submitted: yymmddhhmm(new Date()),
    };
    route(msg);
    const turned = { ...msg, registered_delivery: 0, from: msg.to };
    if (loopMt) {
      // Reflection attacker #1: the message comes straight back to the very
      // session that submitted it, as if the destination had sent it.
      turned.id = `L${id}`;
      turned.to = addr;
      if (mode === 'tx') route(turned); // a transmitter cannot receive: by address
      else {
        const m2 = { ...turned };
        if (!deliver(session, m2)) debug(`loop ${id}: session gone`);
      }
      debug(`loop-mt ${id}: ${turned.from} -> ${turned.to} (submitting session)`);
    }
    if (reflect) {
      // Reflection attacker #2: turned around and routed to the sender the
      // submit names in source_addr (the bound address when it names none).
      const claimed = norm(pdu.source_addr) || addr;
      route({ ...turned, id: `R${id}`, to: claimed });
      debug(`reflect ${id}: ${turned.from} -> ${claimed}`);
    }
  });

  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    log(`session ${sid}: unbind from ${addr}`);
    session.unbinding = true;
    session.send(pdu.response(), () => session.close());
  });
  session.on('unknown', (pdu) => {
    log(`session ${sid}: unknown command_id 0x${pdu.command_id.toString(16)}`);
    session.send(pdu.response());
  });
  session.on('generic_nack', (pdu) => {
    log(`session ${sid}: generic_nack 0x${pdu.command_status.toString(16)} seq ${pdu.sequence_number}`);
  });
  session.on('error', (e) => {
    log(`session ${sid}: error: ${e.message}`);
    session.destroy();
  });
  session.on('close', () => {
    log(`session ${sid}: closed (${addr === null ? 'not bound' : addr})`);
    if (addr !== null && registry.has(addr)) {
      const list = registry.get(addr).filter((x) => x !== session);
      if (list.length > 0) registry.set(addr, list);
      else registry.delete(addr);
    }
    // Store and forward: what was in flight goes back to the head of its queue
    // (and to an older session still bound with the address, if any).
    const back = [...session.inflight.values()].reverse();
    session.inflight.clear();
    for (const msg of back) busyAdd(msg, -1, session);
    for (const msg of back) enqueue(msg, true);
    if (addr !== null) pump(addr);
  });
}

// ---- SMSC_CONTROL=1: the attacker's control channel (tests/redteam) ----------------
// The SMSC is the man in the middle every SMS crosses; a test tells it what to
// do to the traffic. Every routed message (not receipts) is kept in a bounded
// capture ring so that it can be replayed. Commands (one a line; numbers as
// written in the routing keys, '+' optional; '*' matches any address):
//   last FROM TO              -> "ok ID HEX": the newest captured message FROM -> TO
//   replay ID [FROM TO]       route the captured message again (as FROM -> TO when
//                             given: a reflection); -> "ok NEWID"
//   inject FROM TO HEX [ESM [PID [DCS]]]  a deliver_sm FROM -> TO with these octets
//                             (defaults 0x40, 0x00, 0x04: a UDH, 8-bit data)
//   flip FROM TO N            flip the lowest bit of the last octet of the next N
//                             messages FROM -> TO (a bit error, or an attacker)
//   drop FROM TO N            the next N messages FROM -> TO are accepted and lost
//                             (N 0: stop); no delivery receipt
//   flood MODE FROM TO HEX COUNT RATE  COUNT deliveries at RATE per second, answered
//                             "ok flooded COUNT in MS ms" when all are routed; MODE:
//                             same (copies), spoof (FROM is a prefix of <= 8 digits
//                             + a 7-digit index), randmac (the last 8 octets random:
//                             online MAC guessing), concat (HEX is a first part with
//                             IE 00; each copy gets IE 08 and its own reference)
//   set loop|reflect|spoof on|off   the modes SMSC_LOOP_MT/REFLECT/SPOOF at run time
//   stats                     -> "ok routed=N captured=N dropped=N flipped=N queued=N"
const CAPTURE_MAX = 4096;
const capture = new Map(); // id -> msg, oldest first
const rules = []; // {kind:'flip'|'drop', from, to, n}
let routed = 0, dropped = 0, flipped = 0, ctlIds = 0;

function addrMatch(pat, a) { return pat === '*' || norm(pat) === a; }
// Applies the drop/flip rules to a message about to be routed and captures it;
// false: the message is lost.
function tap(msg) {
  if (msg.receipt) return true;
  routed++;
  for (const r of rules) {
    if (r.n <= 0 || !addrMatch(r.from, msg.from) || !addrMatch(r.to, msg.to)) continue;
    r.n--;
    if (r.kind === 'drop') {
      dropped++;
      debug(`control: dropped ${msg.id} ${msg.from} -> ${msg.to}`);
      return false;
    }
    if (msg.short_message.length > 0) {
      msg.short_message = Buffer.from(msg.short_message);
      msg.short_message[msg.short_message.length - 1] ^= 0x01;
      flipped++;
    }
  }
  capture.set(msg.id, msg);
  if (capture.size > CAPTURE_MAX) capture.delete(capture.keys().next().value);
  return true;
}

function ctlMsg(from, to, ud, esm, pid, dcs) {
  return {
    id: `C${++ctlIds}`, from: norm(from), to: norm(to), esm_class: esm, protocol_id: pid,
    data_coding: dcs, short_message: ud, registered_delivery: 0,
    submitted: yymmddhhmm(new Date()),
  };
}
const hexOk = (h) => typeof h === 'string' && h.length > 0 && h.length <= 2 * 16384 &&
  /^([0-9a-fA-F]{2})+$/.test(h);
const byteOf = (s, d) => {
  if (s === undefined) return d;
  const v = Number(s);
  return Number.isInteger(v) && v >= 0 && v <= 255 ? v : NaN;
};

// The first part HEX (IE 00) as copy `ref` with IE 08 (TS 23.040 9.2.3.24.8).
function concatCopy(p, ref) {
  const udhl = p[0];
  if (p.length < 1 + udhl) return undefined;
  const ies = [];
  let total = 0;
  for (let i = 1; i < 1 + udhl;) {
    if (i + 2 > 1 + udhl || i + 2 + p[i + 1] > 1 + udhl) return undefined;
    if (p[i] === 0x00 && p[i + 1] === 3 && total === 0) total = p[i + 3];
    else ies.push(p.subarray(i, i + 2 + p[i + 1]));
    i += 2 + p[i + 1];
  }
  if (total < 2) return undefined;
  const udh = Buffer.concat([Buffer.from([0x08, 0x04, (ref >> 8) & 0xff, ref & 0xff, total, 1]), ...ies]);
  return Buffer.concat([Buffer.from([udh.length]), udh, p.subarray(1 + udhl)]);
}

function flood(w, reply) {
  const [mode, from, to, hex, countS, rateS] = w;
  const count = Number(countS), rate = Number(rateS);
  if (!['same', 'spoof', 'randmac', 'concat'].includes(mode) || !from || !to || !hexOk(hex) ||
      !Number.isInteger(count) || count < 1 || count > 1000000 ||
      !Number.isInteger(rate) || rate < 1 || rate > 100000) {
    reply('err usage: flood same|spoof|randmac|concat FROM TO HEX COUNT(1..1e6) RATE(1..1e5)');
    return;
  }
  if (mode === 'spoof' && !/^\+?[0-9]{1,8}$/.test(from)) { reply('err spoof: FROM is 1..8 digits'); return; }
  const base = Buffer.from(hex, 'hex');
  if (mode === 'randmac' && base.length < 9) { reply('err randmac: HEX shorter than 9 octets'); return; }
  if (mode === 'concat' && concatCopy(base, 0) === undefined) { reply('err concat: no first part with IE 00'); return; }
  const t0 = Date.now();
  let sent = 0;
  const tick = () => {
    const due = Math.min(count, Math.ceil(((Date.now() - t0) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      let ud = base, src = from;
      if (mode === 'spoof') src = norm(from) + String(sent).padStart(7, '0');
      else if (mode === 'randmac') {
        ud = Buffer.from(base);
        require('crypto').randomBytes(8).copy(ud, ud.length - 8);
      } else if (mode === 'concat') ud = concatCopy(base, sent & 0xffff);
      route(ctlMsg(src, to, ud, 0x40, 0, 0x04));
    }
    if (sent >= count) reply(`ok flooded ${count} in ${Date.now() - t0} ms`);
    else setTimeout(tick, 5);
  };
  tick();
}

function control(line, reply) {
  const w = line.trim().split(/\s+/);
  const cmd = w.shift();
  if (cmd === 'last' && w.length === 2) {
    const [f, t] = w;
    const all = [...capture.values()];
    for (let i = all.length - 1; i >= 0; i--) {
      if (addrMatch(f, all[i].from) && addrMatch(t, all[i].to)) {
        reply(`ok ${all[i].id} ${all[i].short_message.toString('hex')}`);
        return;
      }
    }
    reply('err nothing captured');
  } else if (cmd === 'replay' && (w.length === 1 || w.length === 3)) {
    const m = capture.get(w[0]);
    if (!m) { reply(`err no captured message ${w[0]}`); return; }
    const c = { ...m, id: `P${++ctlIds}`, registered_delivery: 0, short_message: Buffer.from(m.short_message) };
    if (w.length === 3) { c.from = norm(w[1]); c.to = norm(w[2]); }
    route(c);
    reply(`ok ${c.id}`);
  } else if (cmd === 'inject' && w.length >= 3 && w.length <= 6) {
    const esm = byteOf(w[3], 0x40), pid = byteOf(w[4], 0), dcs = byteOf(w[5], 0x04);
    if (!hexOk(w[2]) || Number.isNaN(esm + pid + dcs)) { reply('err usage: inject FROM TO HEX [ESM [PID [DCS]]]'); return; }
    const m = ctlMsg(w[0], w[1], Buffer.from(w[2], 'hex'), esm, pid, dcs);
    route(m);
    reply(`ok ${m.id}`);
  } else if ((cmd === 'flip' || cmd === 'drop') && w.length === 3) {
    const n = Number(w[2]);
    if (!Number.isInteger(n) || n < 0) { reply('err N'); return; }
    for (const r of rules) if (r.kind === cmd && r.from === w[0] && r.to === w[1]) r.n = 0;
    if (n > 0) rules.push({ kind: cmd, from: w[0], to: w[1], n });
    while (rules.length > 64 && rules[0].n <= 0) rules.shift();
    reply('ok');
  } else if (cmd === 'flood' && w.length === 6) {
    flood(w, reply);
  } else if (cmd === 'set' && w.length === 2 && (w[1] === 'on' || w[1] === 'off')) {
    const on = w[1] === 'on';
    if (w[0] === 'loop') loopMt = on;
    else if (w[0] === 'reflect') reflect = on;
    else if (w[0] === 'spoof') spoofSrc = on;
    else { reply('err set loop|reflect|spoof on|off'); return; }
    log(`control: ${w[0]} ${w[1]}`);
    reply('ok');
  } else if (cmd === 'stats' && w.length === 0) {
    let queued = 0;
    for (const q of queues.values()) queued += q.length;
    reply(`ok routed=${routed} captured=${capture.size} dropped=${dropped} flipped=${flipped} queued=${queued}`);
  } else {
    reply(`err unknown command: ${line.slice(0, 80)}`);
  }
}

if (controlOn) {
  const ctl = require('net').createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      if (buf.length > 65536) { sock.destroy(); return; } // a line is bounded
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        try {
          control(line, (r) => { if (sock.writable) sock.write(r + '\n'); });
        } catch (e) {
          sock.write(`err ${e.message}\n`);
        }
      }
    });
    sock.on('error', () => sock.destroy());
  });
  ctl.listen(0, '127.0.0.1', () => {
    process.stdout.write(`control ${ctl.address().port}\n`);
    log(`control channel on 127.0.0.1:${ctl.address().port}`);
  });
}

const server = smpp.createServer(onSession);
server.on('error', (e) => {
  log(`server error: ${e.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
  log(`listening on ${host}:${server.address().port}` +
      (password !== undefined ? ', password required' : '') +
      (throttleEvery ? `, throttling every ${throttleEvery}th submit_sm` : ''));
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    process.exit(0);
  });
}
