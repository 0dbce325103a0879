/**
 * The baseline: a bare `ws` relay with none of the hub's work (no auth, no pairing, no
 * database, no jobs, no audit, no signing). On a 'fanout' order it sends one invoke-shaped
 * request frame to every connected client, matches each response to its request by id (as
 * the hub does per connection) and reports when all have answered.
 *
 * For the round-trip floor it also answers `POST /api/v1/satellites/:k/exec` (k: the client's
 * number, in the order they connected): the body is parsed, one invoke-shaped frame goes to
 * client k, and its result comes back as `{success, data: {state, result}}`, the shape of the
 * hub's answer. That is the smallest HTTP → WebSocket → HTTP relay: what is left of the hub's
 * round trip once everything that makes it the hub is taken away.
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
/** Clients by their number (connection order), for the REST round trip. */
const byNumber = [];
let nextId = 1;
let round; // the fan-out in progress

const invokeFrame = (id, command, params) => {
  const now = Date.now();
  return JSON.stringify({
    type: 'req',
    id,
    method: 'invoke',
    params: { command, params, correlationId: randomUUID(), issuedAt: now, deadline: now + 30_000 },
  });
};

function onResponse(ws, data) {
  let frame;
  try {
    frame = JSON.parse(data.toString('utf8'));
  } catch {
    return;
  }
  if (frame?.type !== 'res') return;
  // A REST round trip waits for this answer.
  const res = ws.waiting.get(frame.id);
  if (res) {
    ws.waiting.delete(frame.id);
    const body = frame.ok
      ? JSON.stringify({ success: true, data: { state: 'succeeded', result: frame.result ?? null } })
      : JSON.stringify({ success: false, error: frame.error ?? { code: 'INTERNAL_ERROR' } });
    res.writeHead(frame.ok ? 200 : 502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  if (!ws.pending.delete(frame.id) || !round) return;
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
  for (const ws of targets) {
    const id = `h${nextId++}`;
    ws.pending.add(id);
    ws.send(invokeFrame(id, 'system.info', {}));
  }
  if (targets.length === 0) finish();
}

const EXEC_PATH = /^\/api\/v1\/satellites\/(\d+)\/exec$/;

/** `POST /api/v1/satellites/:k/exec`: one invoke to client k, its result as the HTTP answer. */
function onHttp(req, res) {
  const m = req.method === 'POST' ? EXEC_PATH.exec(req.url ?? '') : null;
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const ws = byNumber[Number(m[1])];
    if (!ws || ws.readyState !== ws.OPEN || typeof body?.command !== 'string') {
      res.writeHead(404).end();
      return;
    }
    const id = `h${nextId++}`;
    ws.waiting.set(id, res);
    ws.send(invokeFrame(id, body.command, body.params ?? {}));
  });
}

function listen() {
  const server = http.createServer(onHttp);
  // Same ws options as the hub's endpoint.
  const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 2 * 1024 * 1024, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws) => {
    ws.pending = new Set();
    ws.waiting = new Map();
    clients.add(ws);
    byNumber.push(ws);
    ws.on('message', (data) => onResponse(ws, data));
    ws.on('close', () => {
      clients.delete(ws);
      for (const res of ws.waiting.values()) res.writeHead(502).end();
      ws.waiting.clear();
    });
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
