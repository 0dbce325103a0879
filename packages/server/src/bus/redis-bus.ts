import { CLOSE_CODES, decodeStreamFrame, HiveError, type InvokeParams, StreamEndpoint } from '@hive/protocol';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { IdMap } from '../lib/id-map.js';
import { type Bus, createLocalCounter, type HitCounter, type HubEvent, type NodeLink, type StreamTunnel } from './bus.js';

export interface RedisBusOptions {
  url: string;
  instanceId: string;
  logger: Logger;
  /** An instance that has not refreshed its heartbeat for this long is dead (ms). */
  presenceTtlMs?: number;
  /** Heartbeat and liveness check interval (ms). */
  heartbeatMs?: number;
  /** Key and channel prefix, so several hubs can share one Redis (tests use one per test). */
  prefix?: string;
}

interface PendingRpc {
  owner: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type RpcMessage =
  | { t: 'invoke'; id: string; from: string; sat: string; params: InvokeParams; timeoutMs: number }
  | { t: 'request'; id: string; from: string; sat: string; method: string; params: unknown; timeoutMs: number }
  | { t: 'reply'; id: string; ok: true; data: unknown }
  | { t: 'reply'; id: string; ok: false; error: { code: string; message: string; details?: unknown } }
  | { t: 'cancel'; sat: string; cid: string }
  | { t: 'close'; sat: string; code: number; reason: string }
  | { t: 'sopen'; sid: number; from: string; sat: string }
  | { t: 'sgone'; sid: number; reason: string }
  | { t: 'sclose'; sid: number };

/** Binary message kinds on an instance channel: 0 JSON, 1 stream frame towards the node, 2 towards the opener. */
const MSG_JSON = 0;
const MSG_TO_NODE = 1;
const MSG_TO_OPENER = 2;

const HDEL_IF_EQ = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end return 0`;

type RedisWithScripts = Redis & { hdelIfEq(key: string, field: string, value: string): Promise<number> };

/**
 * The bus across hub instances (seed 003 §10): every instance holds its own satellites'
 * sockets; Redis carries the rest.
 * - presence directory: hash `<p>:presence` satellite → instance, mirrored in memory on every
 *   instance from `<p>:presence` messages (so `isNodeConnected` stays synchronous); an entry is
 *   only believed while its instance is alive;
 * - liveness: sorted set `<p>:instances` (instance → last heartbeat); an instance silent for
 *   `presenceTtlMs` is dead: exactly one survivor (the one whose ZREM wins) cleans up after it;
 * - commands: invokes/requests/cancel/close go to the owning instance's channel `<p>:inst:<id>`,
 *   replies come back the same way; a dead owner fails its pending calls at once;
 * - events: `<p>:events`, delivered to local subscribers at once and to the others via Redis;
 * - streams: the owner lends the stream id on its node socket (`tunnelStream`) and forwards raw
 *   frames, so credit-based flow control stays end to end between opener and node.
 * After a Redis restart (it keeps nothing) every instance re-registers itself and its satellites.
 */
export async function createRedisBus(opts: RedisBusOptions): Promise<Bus & { close(): Promise<void> }> {
  const me = opts.instanceId;
  const log = opts.logger;
  const ttl = opts.presenceTtlMs ?? 15_000;
  const beatMs = opts.heartbeatMs ?? Math.max(500, Math.floor(ttl / 3));
  const p = opts.prefix ?? 'hive';
  const K = {
    presence: `${p}:presence`,
    instances: `${p}:instances`,
    events: `${p}:events`,
    presenceCh: `${p}:presence`,
    inst: (id: string) => `${p}:inst:${id}`,
    tombstone: (id: string) => `${p}:dead:${id}`,
  };

  const redisOpts = { lazyConnect: true, maxRetriesPerRequest: 3, enableAutoPipelining: true, retryStrategy: (n: number) => Math.min(100 * n, 2000) };
  const cmd = new Redis(opts.url, redisOpts) as RedisWithScripts;
  const sub = new Redis(opts.url, { ...redisOpts, maxRetriesPerRequest: null });
  cmd.defineCommand('hdelIfEq', { numberOfKeys: 1, lua: HDEL_IF_EQ });
  cmd.on('error', (err) => log.warn({ err: err.message }, 'redis bus: command connection error'));
  sub.on('error', (err) => log.warn({ err: err.message }, 'redis bus: subscriber connection error'));

  const nodes = new Map<string, NodeLink>();
  /** satellite → instance, as last announced (believed only while the instance is alive). */
  const directory = new Map<string, string>();
  let live = new Set<string>([me]);
  const subscribers = new Set<(e: HubEvent) => void>();
  /** Calls awaiting an answer by id: an IdMap, not a Map (one per cross-instance command; lib/id-map.ts). */
  const pending = new IdMap<PendingRpc>();
  const lostHandlers: ((id: string) => Promise<void>)[] = [];
  /** Streams this instance opened on satellites held elsewhere. */
  const openers = new Map<number, { ep: StreamEndpoint; owner: string }>();
  /** Stream ids of local satellites lent to other instances. */
  const taps = new Map<number, { tunnel: StreamTunnel; from: string }>();
  let rpcSeq = 0;
  let closed = false;

  function deliver(e: HubEvent): void {
    for (const s of subscribers) {
      try {
        s(e);
      } catch {
        /* a failing subscriber must not stop the others */
      }
    }
  }

  const ownerOf = (sat: string): string | undefined => {
    if (nodes.has(sat)) return me;
    const o = directory.get(sat);
    return o && o !== me && live.has(o) ? o : undefined;
  };

  function publishRaw(channel: string, kind: number, body: Buffer | string, sid = 0): void {
    if (closed) return;
    const head = Buffer.alloc(kind === MSG_JSON ? 1 : 5);
    head[0] = kind;
    if (kind !== MSG_JSON) head.writeUInt32BE(sid >>> 0, 1);
    const payload = Buffer.concat([head, typeof body === 'string' ? Buffer.from(body) : body]);
    cmd.publish(channel, payload).catch((err: Error) => log.warn({ err: err.message, channel }, 'redis bus: publish failed'));
  }
  const sendTo = (instance: string, msg: RpcMessage) => publishRaw(K.inst(instance), MSG_JSON, JSON.stringify(msg));

  function rpc(owner: string, msg: { t: 'invoke' | 'request' } & Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (cmd.status !== 'ready') return Promise.reject(new HiveError('SERVICE_NOT_RUNNING', 'The cluster bus (Redis) is not reachable'));
    const id = `${me}:${++rpcSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new HiveError(msg.t === 'invoke' ? 'COMMAND_TIMEOUT' : 'TIMEOUT', `No answer from instance ${owner} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { owner, resolve, reject, timer });
      sendTo(owner, { ...msg, id, from: me } as RpcMessage);
    });
  }

  function toWireError(err: unknown): { code: string; message: string; details?: unknown } {
    if (err instanceof HiveError) return { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) };
    return { code: 'INTERNAL_ERROR', message: (err as Error)?.message ?? 'failed' };
  }

  function answer(to: string, id: string, work: () => Promise<unknown>): void {
    work().then(
      (data) => sendTo(to, { t: 'reply', id, ok: true, data }),
      (err) => sendTo(to, { t: 'reply', id, ok: false, error: toWireError(err) }),
    );
  }

  const offline = (sat: string) => new HiveError('SATELLITE_OFFLINE', `Satellite ${sat} is not connected`);

  function onInstanceMessage(msg: RpcMessage): void {
    switch (msg.t) {
      case 'invoke': {
        const link = nodes.get(msg.sat);
        answer(msg.from, msg.id, () => (link ? link.invoke(msg.params, msg.timeoutMs) : Promise.reject(offline(msg.sat))));
        return;
      }
      case 'request': {
        const link = nodes.get(msg.sat);
        answer(msg.from, msg.id, () => (link ? link.request(msg.method, msg.params, msg.timeoutMs) : Promise.reject(offline(msg.sat))));
        return;
      }
      case 'reply': {
        const w = pending.get(msg.id);
        if (!w) return;
        pending.delete(msg.id);
        clearTimeout(w.timer);
        if (msg.ok) w.resolve(msg.data);
        else w.reject(new HiveError(msg.error.code as never, msg.error.message, msg.error.details as Record<string, unknown> | undefined));
        return;
      }
      case 'cancel':
        nodes.get(msg.sat)?.cancel(msg.cid);
        return;
      case 'close':
        nodes.get(msg.sat)?.close(msg.code, msg.reason);
        return;
      case 'sopen': {
        const link = nodes.get(msg.sat);
        const refuse = (reason: string) => sendTo(msg.from, { t: 'sgone', sid: msg.sid, reason });
        if (!link?.tunnelStream) {
          refuse('satellite not connected to this instance');
          return;
        }
        if (taps.has(msg.sid)) {
          refuse('stream id in use');
          return;
        }
        try {
          const tunnel = link.tunnelStream(
            msg.sid,
            (frame) => publishRaw(K.inst(msg.from), MSG_TO_OPENER, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), msg.sid),
            (reason) => {
              if (taps.get(msg.sid)?.tunnel !== tunnel) return;
              taps.delete(msg.sid);
              refuse(reason);
            },
          );
          taps.set(msg.sid, { tunnel, from: msg.from });
        } catch (err) {
          refuse((err as Error).message);
        }
        return;
      }
      case 'sgone':
        openers.get(msg.sid)?.ep.dropped(msg.reason);
        return;
      case 'sclose': {
        const tap = taps.get(msg.sid);
        taps.delete(msg.sid);
        tap?.tunnel.close();
        return;
      }
    }
  }

  sub.on('messageBuffer', (channelBuf: Buffer, message: Buffer) => {
    const channel = channelBuf.toString();
    try {
      if (channel === K.events) {
        const m = JSON.parse(message.toString()) as { o: string; e: string; p: unknown };
        if (m.o !== me) deliver({ event: m.e, payload: m.p, origin: m.o });
        return;
      }
      if (channel === K.presenceCh) {
        const m = JSON.parse(message.toString()) as { s?: string; i: string; u?: 0 | 1; resync?: true };
        if (m.i === me) return;
        if (m.resync) {
          void reloadDirectory();
          return;
        }
        if (!m.s) return;
        if (m.u) {
          directory.set(m.s, m.i);
          live.add(m.i);
          // The satellite connected elsewhere: a stale socket here must go (it would answer as a ghost).
          nodes.get(m.s)?.close(CLOSE_CODES.REPLACED.code, 'replaced by a connection on another hub instance');
        } else if (directory.get(m.s) === m.i) directory.delete(m.s);
        return;
      }
      const kind = message[0];
      if (kind === MSG_JSON) onInstanceMessage(JSON.parse(message.subarray(1).toString()) as RpcMessage);
      else if (kind === MSG_TO_NODE) taps.get(message.readUInt32BE(1))?.tunnel.send(message.subarray(5));
      else if (kind === MSG_TO_OPENER) {
        const o = openers.get(message.readUInt32BE(1));
        const frame = decodeStreamFrame(message.subarray(5));
        if (o && frame) o.ep.handleFrame(frame);
      }
    } catch (err) {
      log.warn({ err: (err as Error).message, channel }, 'redis bus: bad message dropped');
    }
  });

  async function reloadDirectory(): Promise<void> {
    const all = await cmd.hgetall(K.presence).catch(() => null);
    if (!all) return;
    directory.clear();
    for (const [sat, inst] of Object.entries(all)) if (inst !== me) directory.set(sat, inst);
  }

  /** Writes this instance and all its satellites (at start and after Redis came back empty). */
  async function announce(): Promise<void> {
    await cmd.zadd(K.instances, Date.now(), me);
    const ids = [...nodes.keys()];
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      await cmd.hset(K.presence, Object.fromEntries(chunk.map((s) => [s, me])));
    }
    await cmd.publish(K.presenceCh, JSON.stringify({ i: me, resync: true }));
    await reloadDirectory();
  }

  function instanceGone(id: string): void {
    for (const [rid, w] of pending.entries()) {
      if (w.owner !== id) continue;
      pending.delete(rid);
      clearTimeout(w.timer);
      w.reject(new HiveError('SATELLITE_OFFLINE', `The hub instance holding the satellite (${id}) was lost`));
    }
    for (const [sat, inst] of directory) if (inst === id) directory.delete(sat);
    for (const o of openers.values()) if (o.owner === id) o.ep.dropped('hub instance lost');
    for (const [sid, t] of taps) {
      if (t.from !== id) continue;
      taps.delete(sid);
      t.tunnel.close();
    }
  }

  let beating = false;
  async function beat(): Promise<void> {
    if (beating || closed || cmd.status !== 'ready') return;
    beating = true;
    try {
      const now = Date.now();
      if ((await cmd.zadd(K.instances, now, me)) === 1 && (await cmd.del(K.tombstone(me))) === 1) {
        // We were declared dead (a stall longer than presence_ttl): the others released our
        // satellites and jobs. Our sockets are stale in their eyes; have them reconnect cleanly.
        log.warn({ instance: me, satellites: nodes.size }, 'this instance was declared lost by the others; asking its satellites to reconnect');
        for (const link of [...nodes.values()]) link.close(CLOSE_CODES.SERVICE_RESTART.code, 'hub instance was declared lost; reconnect');
      }
      const alive = new Set(await cmd.zrangebyscore(K.instances, now - ttl, '+inf'));
      alive.add(me);
      for (const id of live) if (!alive.has(id)) instanceGone(id);
      live = alive;
      for (const dead of await cmd.zrangebyscore(K.instances, '-inf', `(${now - ttl}`)) {
        if ((await cmd.zrem(K.instances, dead)) !== 1) continue; // another survivor cleans up
        // Should it come back (it was only stalled), it learns that it was declared dead.
        await cmd.set(K.tombstone(dead), '1', 'EX', 3600);
        log.warn({ instance: dead }, 'hub instance lost; taking over its cleanup');
        const all = await cmd.hgetall(K.presence);
        const orphans = Object.entries(all)
          .filter(([, inst]) => inst === dead)
          .map(([sat]) => sat);
        for (const sat of orphans) {
          if ((await cmd.hdelIfEq(K.presence, sat, dead)) === 1) await cmd.publish(K.presenceCh, JSON.stringify({ s: sat, i: dead, u: 0 }));
        }
        for (const h of lostHandlers)
          await h(dead).catch((err: Error) => log.error({ err: err.message, instance: dead }, 'cleanup after lost instance failed'));
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'redis bus: heartbeat failed');
    } finally {
      beating = false;
    }
  }

  let everReady = false;
  cmd.on('ready', () => {
    if (!everReady) {
      everReady = true;
      return;
    }
    // Reconnected: Redis may have restarted empty. Put ourselves back.
    log.info('redis bus: reconnected; re-announcing presence');
    void announce().catch((err: Error) => log.warn({ err: err.message }, 'redis bus: re-announce failed'));
  });

  try {
    await cmd.connect();
    await sub.connect();
    await sub.subscribe(K.events, K.presenceCh, K.inst(me));
  } catch (err) {
    cmd.disconnect();
    sub.disconnect();
    throw new HiveError('SERVICE_NOT_RUNNING', `Cannot reach Redis at ${redactUrl(opts.url)}: ${(err as Error).message}`);
  }
  await announce();
  await beat();
  const timer = setInterval(() => void beat(), beatMs);
  timer.unref();

  const nextSid = (): number => {
    for (;;) {
      // Even ids in the upper half: never met by the owner's own allocator (it counts up from 2).
      const sid = (0x80000000 + Math.floor(Math.random() * 0x3fffffff) * 2) >>> 0;
      if (!openers.has(sid)) return sid;
    }
  };

  // Login throttles and the like must hold across instances; while Redis is away they fall back
  // to this process's own counts rather than failing open or locking everybody out.
  const localCounter = createLocalCounter();
  const counter: HitCounter = {
    async count(key, windowMs) {
      try {
        const k = `${p}:rl:${key}`;
        const res = await cmd
          .multi()
          .zremrangebyscore(k, '-inf', Date.now() - windowMs)
          .zcard(k)
          .exec();
        return Math.max(Number(res?.[1]?.[1] ?? 0), await localCounter.count(key, windowMs));
      } catch {
        return localCounter.count(key, windowMs);
      }
    },
    async hit(key, windowMs) {
      await localCounter.hit(key, windowMs);
      try {
        const k = `${p}:rl:${key}`;
        const now = Date.now();
        await cmd
          .multi()
          .zadd(k, now, `${now}:${me}:${Math.random().toString(36).slice(2, 8)}`)
          .pexpire(k, windowMs)
          .exec();
      } catch {
        /* counted locally */
      }
    },
  };

  return {
    instanceId: me,
    clustered: true,
    counter,
    registerNode(sat, link) {
      nodes.set(sat, link);
      directory.delete(sat);
      void cmd
        .hset(K.presence, sat, me)
        .then(() => cmd.publish(K.presenceCh, JSON.stringify({ s: sat, i: me, u: 1 })))
        .catch((err: Error) => log.warn({ err: err.message }, 'redis bus: presence write failed'));
    },
    unregisterNode(sat, link) {
      if (nodes.get(sat) !== link) return;
      nodes.delete(sat);
      void cmd
        .hdelIfEq(K.presence, sat, me)
        .then((n) => (n === 1 ? cmd.publish(K.presenceCh, JSON.stringify({ s: sat, i: me, u: 0 })) : 0))
        .catch((err: Error) => log.warn({ err: err.message }, 'redis bus: presence delete failed'));
    },
    isNodeConnected: (sat) => ownerOf(sat) !== undefined,
    invokeNode(sat, params, timeoutMs) {
      const link = nodes.get(sat);
      if (link) return link.invoke(params, timeoutMs);
      const owner = ownerOf(sat);
      if (!owner) return Promise.reject(offline(sat));
      return rpc(owner, { t: 'invoke', sat, params, timeoutMs }, timeoutMs + 1000);
    },
    requestNode(sat, method, params, timeoutMs) {
      const link = nodes.get(sat);
      if (link) return link.request(method, params, timeoutMs);
      const owner = ownerOf(sat);
      if (!owner) return Promise.reject(offline(sat));
      return rpc(owner, { t: 'request', sat, method, params, timeoutMs }, timeoutMs + 1000);
    },
    closeNode(sat, code, reason) {
      const link = nodes.get(sat);
      if (link) return link.close(code, reason);
      const owner = ownerOf(sat);
      if (owner) sendTo(owner, { t: 'close', sat, code, reason });
    },
    cancelNode(sat, cid) {
      const link = nodes.get(sat);
      if (link) return link.cancel(cid);
      const owner = ownerOf(sat);
      if (owner) sendTo(owner, { t: 'cancel', sat, cid });
    },
    publish(event, payload) {
      deliver({ event, payload });
      if (closed) return;
      let body: string;
      try {
        body = JSON.stringify({ o: me, e: event, p: payload });
      } catch {
        return; // not serializable: stays local
      }
      cmd.publish(K.events, body).catch((err: Error) => log.warn({ err: err.message, event }, 'redis bus: event publish failed'));
    },
    subscribe(handler) {
      subscribers.add(handler);
      return () => subscribers.delete(handler);
    },
    connectedCount: () => nodes.size,
    openNodeStream(sat, handlers, o = {}) {
      const link = nodes.get(sat);
      if (link) {
        if (!link.openStream) throw new HiveError('SERVICE_NOT_RUNNING', 'This connection does not carry streams');
        return link.openStream(handlers, o);
      }
      const owner = ownerOf(sat);
      if (!owner) throw offline(sat);
      const sid = nextSid();
      // The open message goes first: the owner has the tunnel before the first frame arrives
      // (messages from one publisher to one channel keep their order).
      sendTo(owner, { t: 'sopen', sid, from: me, sat });
      const ep = new StreamEndpoint(
        {
          id: sid,
          opener: true,
          send: (frame) => publishRaw(K.inst(owner), MSG_TO_NODE, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), sid),
          onFinish: () => {
            openers.delete(sid);
            sendTo(owner, { t: 'sclose', sid });
          },
          ...(o.manualCredit ? { manualCredit: true } : {}),
          ...(o.window ? { window: o.window } : {}),
        },
        handlers,
      );
      openers.set(sid, { ep, owner });
      return ep;
    },
    problem: () => (cmd.status === 'ready' && sub.status === 'ready' ? null : `Redis connection ${cmd.status}/${sub.status}`),
    liveInstances: async () => new Set(live),
    onInstanceLost(h) {
      lostHandlers.push(h);
    },
    async close() {
      if (closed) return;
      clearInterval(timer);
      for (const w of pending.values()) {
        clearTimeout(w.timer);
        w.reject(new HiveError('SERVICE_NOT_RUNNING', 'hub instance is shutting down'));
      }
      pending.clear();
      try {
        if (cmd.status === 'ready') {
          for (const sat of nodes.keys()) {
            if ((await cmd.hdelIfEq(K.presence, sat, me)) === 1) await cmd.publish(K.presenceCh, JSON.stringify({ s: sat, i: me, u: 0 }));
          }
          await cmd.zrem(K.instances, me);
        }
      } catch {
        /* best effort: survivors clean up after the TTL */
      }
      closed = true;
      sub.disconnect();
      await cmd.quit().catch(() => cmd.disconnect());
    },
  };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
