#!/usr/bin/env node
// MQTT.js peer for the broker tests (tests/mqtt): connects with a client
// certificate, subscribes, publishes, and prints one line per outcome:
//   connected | connect-error MSG | suback FILTER QOS (128: refused) | pub-ok TOPIC |
//   pub-denied TOPIC MSG | msg TOPIC PAYLOAD | closed
// usage: node peer.js --port P --ca F --cert F --key F --id CLIENTID
//          [--v5] [--sub FILTER]... [--pub TOPIC=PAYLOAD]... [--qos N] [--wait MS]
'use strict';
const path = require('path');
const fs = require('fs');
const src = process.env.MG_SOURCE_DIR || path.join(__dirname, '..', '..');
const mqtt = require(path.join(src, 'tests', 'smsc', 'node_modules', 'mqtt'));

const a = { sub: [], pub: [], qos: 1, wait: 1500, v5: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  const v = argv[i + 1];
  switch (k) {
    case '--port': a.port = Number(v); i++; break;
    case '--ca': a.ca = v; i++; break;
    case '--cert': a.cert = v; i++; break;
    case '--key': a.key = v; i++; break;
    case '--id': a.id = v; i++; break;
    case '--sub': a.sub.push(v); i++; break;
    case '--pub': a.pub.push(v); i++; break;
    case '--qos': a.qos = Number(v); i++; break;
    case '--wait': a.wait = Number(v); i++; break;
    case '--v5': a.v5 = true; break;
    default: console.error('peer.js: unknown argument ' + k); process.exit(2);
  }
}
const out = (s) => process.stdout.write(s + '\n');
const opts = {
  host: '127.0.0.1', port: a.port, protocol: 'mqtts', clientId: a.id,
  protocolVersion: a.v5 ? 5 : 4, reconnectPeriod: 0, connectTimeout: 5000,
  rejectUnauthorized: true, servername: 'localhost', clean: true,
};
if (a.ca) opts.ca = fs.readFileSync(a.ca);
if (a.cert) opts.cert = fs.readFileSync(a.cert);
if (a.key) opts.key = fs.readFileSync(a.key);

const c = mqtt.connect(opts);
let done = false;
const finish = (code) => {
  if (done) return;
  done = true;
  c.end(true, () => { out('closed'); process.exit(code); });
  setTimeout(() => process.exit(code), 500);
};
c.on('error', (e) => { out('connect-error ' + e.message); finish(1); });
c.on('close', () => { if (!done) { out('connection-closed'); finish(1); } });
c.on('message', (t, p) => out('msg ' + t + ' ' + p.toString('latin1')));
c.on('connect', async () => {
  out('connected');
  for (const f of a.sub) {
    await new Promise((res) => c.subscribe(f, { qos: a.qos }, (err, granted) => {
      // MQTT.js reports a refused subscription (return code 0x80) as an error
      if (err) out('suback ' + f + ' 128');
      else for (const g of granted) out('suback ' + g.topic + ' ' + g.qos);
      res();
    }));
  }
  for (const p of a.pub) {
    const eq = p.indexOf('=');
    const t = p.slice(0, eq);
    const body = p.slice(eq + 1);
    await new Promise((res) => c.publish(t, body, { qos: a.qos }, (err) => {
      if (err) out('pub-denied ' + t + ' ' + err.message);
      else out('pub-ok ' + t);
      res();
    }));
  }
  setTimeout(() => finish(0), a.wait);
});
