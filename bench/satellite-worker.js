/**
 * One shard of the simulated fleet: up to ~2,500 satellites in one process, each with its own
 * Ed25519 identity, speaking the real protocol through HiveClient (role node). Driven by the
 * bench over IPC:
 *
 *   parent → {type:'init', url, first, count, concurrency}   ← {type:'ready', keygenMs}
 *   parent → {type:'connect'}                                 ← {type:'progress', connected} …
 *                                                             ← {type:'connected', …timings}
 *   parent → {type:'stats'}                                   ← {type:'stats', …counters}
 *   parent → {type:'watch-reconnect'}                         ← {type:'progress', connected} …
 *                                                             ← {type:'reconnected', …timings}
 *   parent → {type:'stop'}                                    (exits)
 */
import { performance } from 'node:perf_hooks';
import { HiveError } from '@hive/protocol';
import { generateIdentity, HiveClient } from '@hive/sdk';
import { COMMANDS, SYSTEM_INFO, SYSTEM_RUN } from './lib/payloads.js';

const send = (m) => {
  if (process.connected) process.send(m);
};

/**
 * Reconnect pacing. `bench` (the default suite): a hiccup must not turn 2,500 sockets into a
 * storm. `sdk` (the full suite): the SDK's own default, which is what hive-agent uses, so the
 * restart-reconnect figure is the real agent's.
 */
const BACKOFFS = { bench: { baseMs: 2_000, maxMs: 30_000, restartSpreadMs: 10_000 }, sdk: undefined };

let invokes = 0;

/** The one request handler every satellite of this worker shares. */
async function onRequest(method, params) {
  if (method !== 'invoke') throw new HiveError('UNKNOWN_METHOD', `No handler for ${method}`);
  invokes++;
  switch (params?.command) {
    case 'system.info':
      return SYSTEM_INFO;
    case 'system.run':
      return SYSTEM_RUN;
    default:
      throw new HiveError('UNKNOWN_COMMAND', `Command ${params?.command} not supported`);
  }
}

/** Device token kept in memory: the smallest TokenStoreLike (one field per satellite). */
class MemoryTokenStore {
  token = undefined;
  get() {
    return Promise.resolve(this.token);
  }
  set(_role, token) {
    this.token = token;
    return Promise.resolve();
  }
}

let cfg;
let identities = [];
const clients = [];
const counters = { handshakesFailed: 0, drops: 0, reconnects: 0, fatal: 0, closeCodes: {} };

function init(m) {
  cfg = m;
  const t0 = performance.now();
  identities = new Array(cfg.count);
  for (let k = 0; k < cfg.count; k++) identities[k] = generateIdentity();
  send({ type: 'ready', keygenMs: performance.now() - t0, pid: process.pid });
}

function connectAll() {
  const { count, concurrency, url, first } = cfg;
  const helloMs = new Float64Array(count); // connect → first hello, per satellite
  const helloAt = new Float64Array(count); // epoch ms of the first hello (timeline across workers)
  let next = 0;
  let inflight = 0;
  let connected = 0;

  const progress = setInterval(() => send({ type: 'progress', connected }), 1000);

  const launch = () => {
    while (inflight < concurrency && next < count) startOne(next++);
  };

  const startOne = (k) => {
    inflight++;
    const i = first + k;
    const name = `bench-${i}`;
    const client = new HiveClient({
      url,
      role: 'node',
      identity: identities[k],
      tokenStore: new MemoryTokenStore(),
      client: { name: 'hive-bench', version: '0.1.0', platform: 'linux', arch: 'x64', hostname: name, displayName: name },
      commands: COMMANDS,
      ...(cfg.tags?.length ? { tags: cfg.tags } : {}),
      ...(cfg.tls ? { tls: cfg.tls } : {}),
      ...(BACKOFFS[cfg.backoff ?? 'bench'] ? { backoff: BACKOFFS[cfg.backoff ?? 'bench'] } : {}),
      onRequest,
    });
    clients[k] = client;
    const t0 = performance.now();
    let waiting = true;
    client.on('hello', () => {
      watch?.onHello(k);
      if (!waiting) return;
      waiting = false;
      const now = performance.now();
      helloMs[k] = now - t0;
      helloAt[k] = performance.timeOrigin + now;
      inflight--;
      connected++;
      if (connected === count) {
        clearInterval(progress);
        send({
          type: 'connected',
          ids: identities.map((id) => id.deviceId),
          helloMs,
          helloAt,
          counters,
          rssKB: Math.round(process.memoryUsage().rss / 1024),
        });
        identities = []; // the clients keep what they need
      } else launch();
    });
    client.on('disconnected', ({ code, wasConnected }) => {
      if (wasConnected) counters.drops++;
      else counters.handshakesFailed++;
      counters.closeCodes[code] = (counters.closeCodes[code] ?? 0) + 1;
    });
    client.on('reconnecting', (delayMs) => {
      counters.reconnects++;
      watch?.onReconnecting(k, delayMs);
    });
    client.on('fatal', (err) => {
      counters.fatal++;
      send({ type: 'error', message: `${name}: ${err.code} ${err.message}` });
    });
    client.start().catch(() => {
      /* reported through 'fatal' */
    });
  };

  launch();
}

/**
 * Restart-reconnect: from now on, records when each satellite has its next hello (epoch ms) and
 * every backoff delay the SDK picked on the way; reports once all of them are back.
 */
let watch;
function watchReconnect() {
  const count = clients.length;
  const helloAt = new Float64Array(count);
  const attempts = new Uint16Array(count);
  const delays = [];
  let back = 0;
  const progress = setInterval(() => send({ type: 'progress', connected: back }), 1000);
  watch = {
    onReconnecting(k, delayMs) {
      if (helloAt[k] === 0) {
        attempts[k]++;
        delays.push(delayMs);
      }
    },
    onHello(k) {
      if (helloAt[k] !== 0) return;
      helloAt[k] = performance.timeOrigin + performance.now();
      if (++back === count) {
        clearInterval(progress);
        watch = undefined;
        send({ type: 'reconnected', helloAt, attempts, delays, counters });
      }
    },
  };
}

process.on('message', (m) => {
  switch (m?.type) {
    case 'init':
      init(m);
      break;
    case 'connect':
      connectAll();
      break;
    case 'watch-reconnect':
      watchReconnect();
      break;
    case 'stats':
      send({ type: 'stats', invokes, counters, online: clients.filter((c) => c?.connected).length, rssKB: Math.round(process.memoryUsage().rss / 1024) });
      break;
    case 'stop':
      // Dropping the sockets is enough: the hub sees them close. No graceful close of thousands.
      process.exit(0);
  }
});

// Only now can this process take orders (a message sent before this line would be lost).
send({ type: 'booted' });
