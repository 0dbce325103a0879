/**
 * The baseline: a bare `ws` relay with none of the hub's work (no auth, no pairing, no
 * database, no jobs, no audit, no HTTP API). On a 'fanout' order it sends one invoke-shaped
 * request frame to every connected client, matches each response to its request by id (as
 * the hub does per connection) and reports when all have answered.
 *
 *   parent → {type:'listen'}            ← {type:'listening', port, pid}
 *   parent → {type:'fanout', timeoutMs} ← {type:'fanout-done', ms, ok, failed, clients}
 *   parent → {type:'stop'}              (exits)
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';

const send = (m) => {
  if (process.connected) process.send(m);
};

const clients = new Set();
let nextId = 1;
let round; // the fan-out in progress

function onResponse(ws, data) {
  let frame;
  try {
    frame = JSON.parse(data.toString('utf8'));
  } catch {
    return;
  }
  if (frame?.type !== 'res' || !ws.pending.delete(frame.id) || !round) return;
  if (frame.ok) round.ok++;
  else round.failed++;
  if (round.ok + round.failed === round.expected) finish();
}

function finish() {
  const r = round;
  round = undefined;
  clearTimeout(r.timer);
  send({ type: 'fanout-done', ms: performance.now() - r.t0, ok: r.ok, failed: r.failed, timedOut: r.expected - r.ok - r.failed, clients: r.expected });
}

function fanout(timeoutMs) {
  const targets = [...clients];
  round = { t0: performance.now(), expected: targets.length, ok: 0, failed: 0 };
  round.timer = setTimeout(finish, timeoutMs);
  const now = Date.now();
  for (const ws of targets) {
    const id = `h${nextId++}`;
    ws.pending.add(id);
    ws.send(
      JSON.stringify({
        type: 'req',
        id,
        method: 'invoke',
        params: { command: 'system.info', params: {}, correlationId: randomUUID(), issuedAt: now, deadline: now + 30_000 },
      }),
    );
  }
  if (targets.length === 0) finish();
}

function listen() {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  // Same ws options as the hub's endpoint.
  const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 2 * 1024 * 1024, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws) => {
    ws.pending = new Set();
    clients.add(ws);
    ws.on('message', (data) => onResponse(ws, data));
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: server.address().port, pid: process.pid }));
}

process.on('message', (m) => {
  if (m?.type === 'listen') listen();
  else if (m?.type === 'fanout') fanout(m.timeoutMs ?? 60_000);
  else if (m?.type === 'stop') process.exit(0);
});

// Only now can this process take orders (a message sent before this line would be lost).
send({ type: 'booted' });
