/**
 * One shard of plain `ws` clients of the bare relay (relay-server.js). No identity, no
 * handshake: they connect and answer every request frame with the same system.info result the
 * simulated satellites return. Per message they do what HiveClient does — JSON.parse plus the
 * protocol's Frame schema check — so the client side costs about the same in both fan-outs.
 *
 *   parent → {type:'init', url, count, concurrency}  ← {type:'ready'}
 *   parent → {type:'connect'}                        ← {type:'connected', rssKB}
 *   parent → {type:'stop'}                           (exits)
 */
import { Frame } from '@hive/protocol';
import WebSocket from 'ws';
import { SYSTEM_INFO } from './lib/payloads.js';

const send = (m) => {
  if (process.connected) process.send(m);
};

let cfg;
const sockets = [];

function onMessage(ws, data) {
  let frame;
  try {
    frame = Frame.parse(JSON.parse(data.toString()));
  } catch {
    return;
  }
  if (frame.type === 'req' && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'res', id: frame.id, ok: true, result: SYSTEM_INFO }));
}

function connectAll() {
  const { url, count, concurrency } = cfg;
  let next = 0;
  let inflight = 0;
  let open = 0;
  const progress = setInterval(() => send({ type: 'progress', connected: open }), 1000);
  const launch = () => {
    while (inflight < concurrency && next < count) startOne(next++);
  };
  const startOne = (k) => {
    inflight++;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets[k] = ws;
    ws.on('open', () => {
      inflight--;
      open++;
      if (open === count) {
        clearInterval(progress);
        send({ type: 'connected', rssKB: Math.round(process.memoryUsage().rss / 1024) });
      } else launch();
    });
    ws.on('message', (data) => onMessage(ws, data));
    ws.on('error', (err) => send({ type: 'error', message: `relay client ${k}: ${err.message}` }));
  };
  launch();
}

process.on('message', (m) => {
  switch (m?.type) {
    case 'init':
      cfg = m;
      send({ type: 'ready', pid: process.pid });
      break;
    case 'connect':
      connectAll();
      break;
    case 'stop':
      process.exit(0);
  }
});

// Only now can this process take orders (a message sent before this line would be lost).
send({ type: 'booted' });
