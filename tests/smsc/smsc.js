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
'use strict';

const smpp = require('smpp');

// short_message must pass through byte-exact: the package's text filter on
// short_message (decode to a string / split off the UDH) is switched off for
// the two PDUs we route, so the field stays the raw octets of the wire.
delete smpp.commands.submit_sm.params.short_message.filter;
delete smpp.commands.deliver_sm.params.short_message.filter;

const host = process.env.SMSC_HOST || '127.0.0.1';
const port = Number(process.argv[2] || process.env.SMSC_PORT || 0);
const password = process.env.SMSC_PASSWORD;
const throttleEvery = Number(process.env.SMSC_THROTTLE_EVERY || 0);
const quiet = process.env.SMSC_QUIET === '1';
const WINDOW = 64; // deliver_sm in flight per ESME
const RETRY_MS = 1000; // after a temporary deliver_sm_resp error

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

function pump(addr) {
  const session = bound(addr);
  const q = queues.get(addr);
  if (!session || !q) return;
  while (q.length > 0 && session.inflight.size < WINDOW) {
    if (!deliver(session, q.shift())) break;
  }
  if (q.length === 0) queues.delete(addr);
}

function route(msg) {
  enqueue(msg, false);
  pump(msg.to);
}

function deliver(session, msg) {
  const fields = {
    service_type: '',
    source_addr_ton: msg.src_ton,
    source_addr_npi: msg.src_npi,
    source_addr: msg.from,
    dest_addr_ton: msg.dst_ton,
    dest_addr_npi: msg.dst_npi,
    destination_addr: msg.to,
    esm_class: msg.esm_class,
    protocol_id: msg.protocol_id,
    priority_flag: 0,
    registered_delivery: 0,
    data_coding: msg.data_coding,
    short_message: msg.short_message,
  };
  if (msg.receipt) {
    fields.receipted_message_id = msg.receipt.id;
    fields.message_state = msg.receipt.state;
  }
  const pdu = new smpp.PDU('deliver_sm', fields);
  const ok = session.send(pdu, (resp) => {
    session.inflight.delete(pdu.sequence_number);
    const st = resp.command_status;
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
  if (ok) session.inflight.set(pdu.sequence_number, msg);
  else enqueue(msg, true); // the socket is closing: 'close' sends it elsewhere
  return ok;
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
    from: msg.to, src_ton: msg.dst_ton, src_npi: msg.dst_npi,
    to: msg.from, dst_ton: msg.src_ton, dst_npi: msg.src_npi,
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
  let addr = null;
  debug(`session ${sid}: connected from ${session.socket.remoteAddress}:${session.socket.remotePort}`);

  session.on('bind_transceiver', (pdu) => {
    if (addr !== null) {
      session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
      return;
    }
    if (password !== undefined && pdu.password !== password) {
      log(`session ${sid}: bind refused for "${pdu.system_id}": wrong password`);
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    addr = pdu.address_range || '';
    const old = bound(addr);
    if (!registry.has(addr)) registry.set(addr, []);
    registry.get(addr).push(session);
    log(`session ${sid}: bound "${pdu.system_id}" as transceiver, address ${addr}` +
        (old ? ' (newest of several with this address)' : ''));
    session.send(pdu.response({ system_id: 'm2mguard-smsc' }));
    pump(addr);
  });
  for (const cmd of ['bind_transmitter', 'bind_receiver']) {
    session.on(cmd, (pdu) => {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
    });
  }

  session.on('submit_sm', (pdu) => {
    if (addr === null) {
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
    const id = (nextMessageId++).toString(16).toUpperCase().padStart(8, '0');
    session.send(pdu.response({ message_id: id }));
    route({
      id,
      from: addr, src_ton: pdu.source_addr_ton, src_npi: pdu.source_addr_npi,
      to: pdu.destination_addr, dst_ton: pdu.dest_addr_ton, dst_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class, protocol_id: pdu.protocol_id, data_coding: pdu.data_coding,
      short_message: Buffer.from(pdu.short_message || Buffer.alloc(0)),
      registered_delivery: pdu.registered_delivery,
      submitted: yymmddhhmm(new Date()),
    });
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
    if (addr !== null) {
      const list = registry.get(addr).filter((x) => x !== session);
      if (list.length > 0) registry.set(addr, list);
      else registry.delete(addr);
    }
    // Store and forward: what was in flight goes back to the head of its queue
    // (and to an older session still bound with the address, if any).
    const back = [...session.inflight.values()].reverse();
    session.inflight.clear();
    for (const msg of back) enqueue(msg, true);
    if (addr !== null) pump(addr);
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
