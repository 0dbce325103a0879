/**
 * The raw-pipe baseline of the session throughput section: the same bytes over loopback with
 * nothing but transport, in the same topology as the hub path (client → middle process → far
 * process), so the ratio shows what the hub's stream layer costs on top of moving bytes.
 *
 *   node pipe-worker.js end <tcp|ws>             the far end (stands in for the agent)
 *   node pipe-worker.js relay <tcp|ws> <port>    the middle (stands in for the hub), forwards to the end
 *
 *   ← {type:'listening', port}
 *
 * A client opens one connection per transfer. TCP: a 9-byte header 'U'|'D' + uint64 size;
 * ws: a first text message {"dir":"U"|"D","size":N}, then binary messages of 64 KiB.
 * U (upload): the client sends `size` bytes; the end counts them and answers 'K' (ws: "K").
 * D (download): the end sends `size` bytes (backpressured), then closes.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

const [role, transport, upstreamPort] = process.argv.slice(2);
const send = (m) => {
  if (process.connected) process.send(m);
};
const CHUNK = 64 * 1024;
const block = randomBytes(CHUNK);

function tcpEnd() {
  const server = net.createServer((sock) => {
    let header = Buffer.alloc(0);
    let mode;
    let size = 0;
    let got = 0;
    sock.on('data', (d) => {
      if (!mode) {
        header = Buffer.concat([header, d]);
        if (header.length < 9) return;
        mode = String.fromCharCode(header[0]);
        size = Number(header.readBigUInt64BE(1));
        d = header.subarray(9);
        if (mode === 'D') {
          let sent = 0;
          const pump = () => {
            while (sent < size) {
              const n = Math.min(CHUNK, size - sent);
              sent += n;
              if (!sock.write(n === CHUNK ? block : block.subarray(0, n))) return sock.once('drain', pump);
            }
            sock.end();
          };
          pump();
          return;
        }
      }
      got += d.length;
      if (got >= size) sock.end('K');
    });
    sock.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: server.address().port }));
}

function tcpRelay() {
  const server = net.createServer((client) => {
    const up = net.connect(Number(upstreamPort), '127.0.0.1');
    client.pipe(up);
    up.pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: server.address().port }));
}

function wsServer(onConnection) {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, maxPayload: 2 * 1024 * 1024, perMessageDeflate: false });
  wss.on('connection', onConnection);
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: server.address().port }));
}

/** Sends `size` bytes in 64 KiB binary messages, waiting while more than 1 MiB is queued. */
function wsSource(ws, size) {
  let sent = 0;
  const pump = () => {
    while (sent < size) {
      if (ws.bufferedAmount > 1024 * 1024) return setTimeout(pump, 1);
      const n = Math.min(CHUNK, size - sent);
      sent += n;
      ws.send(n === CHUNK ? block : block.subarray(0, n), { binary: true });
    }
    ws.close();
  };
  pump();
}

function wsEnd() {
  wsServer((ws) => {
    let size = -1;
    let got = 0;
    ws.on('message', (data, isBinary) => {
      if (!isBinary && size < 0) {
        const h = JSON.parse(data.toString());
        size = h.size;
        if (h.dir === 'D') wsSource(ws, size);
        return;
      }
      got += data.length;
      if (got >= size) ws.send('K');
    });
    ws.on('error', () => {});
  });
}

/** Forwards messages both ways; a side whose peer has more than 4 MiB queued is paused. */
function wsRelay() {
  wsServer((client) => {
    const up = new WebSocket(`ws://127.0.0.1:${upstreamPort}/`, { perMessageDeflate: false, maxPayload: 2 * 1024 * 1024 });
    const early = [];
    const forward = (from, to) => (data, isBinary) => {
      if (to.readyState !== WebSocket.OPEN) return early.push([data, isBinary]);
      to.send(data, { binary: isBinary });
      if (to.bufferedAmount > 4 * 1024 * 1024) {
        from.pause();
        const wait = () => (to.bufferedAmount > 1024 * 1024 ? setTimeout(wait, 1) : from.resume());
        wait();
      }
    };
    client.on('message', forward(client, up));
    up.on('open', () => {
      for (const [d, b] of early.splice(0)) up.send(d, { binary: b });
    });
    up.on('message', forward(up, client));
    up.on('close', () => client.close());
    client.on('close', () => up.close());
    client.on('error', () => up.terminate());
    up.on('error', () => client.terminate());
  });
}

const run = { 'end:tcp': tcpEnd, 'relay:tcp': tcpRelay, 'end:ws': wsEnd, 'relay:ws': wsRelay }[`${role}:${transport}`];
if (!run) {
  process.stderr.write('usage: pipe-worker.js end|relay tcp|ws [upstream port]\n');
  process.exit(2);
}
run();
process.on('message', (m) => {
  if (m?.type === 'stop') process.exit(0);
});
