import { HiveError } from '@hive/protocol';
import { generateIdentity, HiveClient, signConnect } from '@hive/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanup, operator, startHub, type TestHub } from './helpers.js';

interface Raw {
  ws: WebSocket;
  frames: any[];
  next(pred: (f: any) => boolean, timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  send(obj: unknown): void;
}

function raw(url: string, opts: WebSocket.ClientOptions = {}): Promise<Raw> {
  const ws = new WebSocket(url, opts);
  const frames: any[] = [];
  const waiters = new Set<(f: any) => void>();
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    frames.push(f);
    for (const w of waiters) w(f);
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  const r: Raw = {
    ws,
    frames,
    closed,
    send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)),
    next(pred, timeoutMs = 10_000) {
      const hit = frames.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`frame not seen; got ${JSON.stringify(frames).slice(0, 500)}`)), timeoutMs);
        const w = (f: any) => {
          if (pred(f)) {
            clearTimeout(timer);
            waiters.delete(w);
            resolve(f);
          }
        };
        waiters.add(w);
      });
    },
  };
  return r.next((f) => f.event === 'connect.challenge').then(() => r);
}

const nonceOf = (r: Raw) => r.frames.find((f) => f.event === 'connect.challenge').payload.nonce as string;
const client = { name: 'raw-test', version: '0', hostname: 'raw-host' };

function connectFrame(id: ReturnType<typeof generateIdentity>, nonce: string, extra: Record<string, unknown> = {}, signedAt = Date.now()) {
  return {
    type: 'req',
    id: 'c1',
    method: 'connect',
    params: { protocol: { min: 1, max: 1 }, role: 'node', scopes: [], client, device: signConnect(id, nonce, 'node', [], signedAt), ...extra },
  };
}

describe('handshake security and protocol limits', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({
      overrides: { limits: { messages_per_second: 50, message_burst: 50, max_violations: 5, max_frame_bytes: 64 * 1024, handshake_timeout: 800 } },
    });
  });
  afterAll(async () => {
    await t.close();
    cleanup(t.dataDir);
  });

  it('pairs a raw device, then reconnects with token + fresh signature', async () => {
    const id = generateIdentity();
    const a = await raw(t.wsUrl);
    a.send(connectFrame(id, nonceOf(a)));
    const hello = await a.next((f) => f.id === 'c1');
    expect(hello.ok).toBe(true);
    expect(hello.result).toMatchObject({ type: 'hello', protocol: 1, deviceId: id.deviceId, role: 'node' });
    expect(hello.result.token).toMatch(/^hdt_/);
    a.ws.close();
    await a.closed;
    const b = await raw(t.wsUrl);
    b.send(connectFrame(id, nonceOf(b), { auth: { token: hello.result.token } }));
    const hello2 = await b.next((f) => f.id === 'c1');
    expect(hello2.ok).toBe(true);
    expect(hello2.result.token).toBeUndefined();
    expect(hello2.result.deviceId).toBe(id.deviceId);
    b.ws.close();
  });

  it('refuses a replayed signature (captured on one connection, sent on another), audited', async () => {
    const id = generateIdentity();
    const a = await raw(t.wsUrl);
    const captured = connectFrame(id, nonceOf(a));
    a.ws.close();
    const b = await raw(t.wsUrl);
    b.send(captured);
    const res = await b.next((f) => f.id === 'c1');
    expect(res.ok).toBe(false);
    expect(res.error.code).toBe('AUTH_INVALID');
    expect(res.error.details.reason).toBe('bad_signature');
    expect(res.error.hint.action).toBe('retry');
    expect((await b.closed).code).toBe(4003);
    const audit = await t.api('GET', `/api/v1/audit/logs?action=device.auth_failed&target_id=${id.deviceId}`);
    expect(audit.body.data[0].details.reason).toBe('bad_signature');
  });

  it('refuses a stale signature', async () => {
    const id = generateIdentity();
    const a = await raw(t.wsUrl);
    a.send(connectFrame(id, nonceOf(a), {}, Date.now() - 10 * 60_000));
    const res = await a.next((f) => f.id === 'c1');
    expect(res.error.details.reason).toBe('stale_signature');
  });

  it('refuses a token presented with another key, and unknown tokens, with a re-pair hint; both audited', async () => {
    const owner = generateIdentity();
    const a = await raw(t.wsUrl);
    a.send(connectFrame(owner, nonceOf(a)));
    const token = (await a.next((f) => f.id === 'c1')).result.token;
    a.ws.close();
    const thief = generateIdentity();
    const b = await raw(t.wsUrl);
    b.send(connectFrame(thief, nonceOf(b), { auth: { token } }));
    const res = await b.next((f) => f.id === 'c1');
    expect(res.error.code).toBe('AUTH_INVALID');
    expect(res.error.details.reason).toBe('key_mismatch');
    expect(res.error.hint.action).toBe('repair');
    const c = await raw(t.wsUrl);
    c.send(connectFrame(thief, nonceOf(c), { auth: { token: 'hdt_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } }));
    expect((await c.next((f) => f.id === 'c1')).error.details.reason).toBe('unknown_token');
    const audit = await t.api('GET', `/api/v1/audit/logs?action=device.auth_failed&target_id=${thief.deviceId}`);
    expect(audit.body.data.map((e: any) => e.details.reason).sort()).toEqual(['key_mismatch', 'unknown_token']);
    expect(JSON.stringify(audit.body.data)).not.toContain(token);
  });

  it('the SDK acts on the re-pair hint: drops a revoked token and pairs again', async () => {
    const id = generateIdentity();
    const store = new Map<string, string>();
    const tokenStore = { get: async (r: string) => store.get(r), set: async (r: string, v?: string) => void (v ? store.set(r, v) : store.delete(r)) };
    const c1 = new HiveClient({ url: t.wsUrl, role: 'node', identity: id, tokenStore, client: { ...client, displayName: 'repair-me' } });
    await c1.start();
    const first = store.get('node');
    await c1.close();
    await t.api('DELETE', `/api/v1/satellites/${id.deviceId}`);
    const c2 = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: id,
      tokenStore,
      client: { ...client, displayName: 'repair-me' },
      backoff: { baseMs: 10, maxMs: 50 },
    });
    const hello = await c2.start();
    expect(hello.deviceId).toBe(id.deviceId);
    expect(store.get('node')).toMatch(/^hdt_/);
    expect(store.get('node')).not.toBe(first);
    await c2.close();
  });

  it('no common protocol version: PROTOCOL_VERSION with an upgrade hint; the SDK stops instead of looping', async () => {
    const id = generateIdentity();
    const c = new HiveClient({ url: t.wsUrl, role: 'node', identity: id, client, protocol: { min: 7, max: 9 } });
    let reconnects = 0;
    c.on('reconnecting', () => reconnects++);
    const err = await c.start().catch((e) => e);
    expect(err).toBeInstanceOf(HiveError);
    expect(err.code).toBe('PROTOCOL_VERSION');
    expect(err.hint.action).toBe('upgrade');
    expect(err.details.server).toEqual({ min: 1, max: 1 });
    expect(reconnects).toBe(0);
  });

  it('answers malformed JSON, bad frames and unknown methods with typed errors', async () => {
    const op = await raw(t.wsUrl);
    op.send({
      type: 'req',
      id: 'c1',
      method: 'connect',
      params: { protocol: { min: 1, max: 1 }, role: 'operator', scopes: ['operator.read'], client, auth: { apiKey: t.adminKey } },
    });
    expect((await op.next((f) => f.id === 'c1')).ok).toBe(true);
    op.send('{not json');
    expect((await op.next((f) => f.event === 'error')).payload.code).toBe('BAD_FRAME');
    op.send({ type: 'req', id: 'x1' });
    const x1 = (await op.next((f) => f.id === 'x1')).error;
    expect(x1.code).toBe('BAD_FRAME');
    // The schema's own words on what is wrong.
    expect(x1.details.issues.length).toBeGreaterThan(0);
    op.send({ type: 'req', id: 'x2', method: 'does.not.exist' });
    expect((await op.next((f) => f.id === 'x2')).error.code).toBe('UNKNOWN_METHOD');
    op.send({ type: 'req', id: 'x3', method: 'satellites.list', params: { per_page: 'many' } });
    expect((await op.next((f) => f.id === 'x3')).error.code).toBe('INVALID_PARAMETERS');
    op.send({ type: 'req', id: 'x4', method: 'exec', params: { satellite: 'x', command: 'system.info' } });
    expect((await op.next((f) => f.id === 'x4')).error.code).toBe('FORBIDDEN');
    op.send({ type: 'req', id: 'x5', method: 'ping' });
    expect((await op.next((f) => f.id === 'x5')).ok).toBe(true);
    // events carry a strictly increasing per-connection sequence
    const seqs = op.frames.filter((f) => f.type === 'event').map((f) => f.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBe(1);
    op.ws.close();
  });

  it('requests before connect get HANDSHAKE_REQUIRED; silence gets a handshake timeout close', async () => {
    const a = await raw(t.wsUrl);
    a.send({ type: 'req', id: 'early', method: 'satellites.list' });
    expect((await a.next((f) => f.id === 'early')).error.code).toBe('HANDSHAKE_REQUIRED');
    expect((await a.closed).code).toBe(4001);
  });

  it('oversized frames get FRAME_TOO_LARGE; frames past the hard cap close the socket (1009)', async () => {
    const op = await operator(t);
    const a = await raw(t.wsUrl);
    a.send(JSON.stringify({ type: 'req', id: 'big', method: 'ping', pad: 'x'.repeat(70 * 1024) }));
    expect((await a.next((f) => f.event === 'error')).payload.code).toBe('FRAME_TOO_LARGE');
    a.send('x'.repeat(200 * 1024));
    expect((await a.closed).code).toBe(1009);
    // the hub still serves others
    expect(await op.request('ping')).toHaveProperty('ts');
    await op.close();
  });

  it('a flood gets RATE_LIMITED, then a close; the hub keeps serving others', async () => {
    const op = await operator(t);
    const a = await raw(t.wsUrl);
    a.send({
      type: 'req',
      id: 'c1',
      method: 'connect',
      params: { protocol: { min: 1, max: 1 }, role: 'operator', scopes: [], client, auth: { apiKey: t.adminKey } },
    });
    await a.next((f) => f.id === 'c1');
    for (let i = 0; i < 300; i++) a.send({ type: 'req', id: `p${i}`, method: 'ping' });
    expect((await a.next((f) => f.event === 'error' && f.payload.code === 'RATE_LIMITED')).payload.hint.retryAfterMs).toBe(1000);
    expect((await a.closed).code).toBe(4005);
    expect(await op.request('ping')).toHaveProperty('ts');
    const audit = await t.api('GET', '/api/v1/audit/logs?action=connection.rate_limited');
    expect(audit.body.data.length).toBeGreaterThanOrEqual(1);
    await op.close();
  });

  it('operator connection with a bad API key is refused', async () => {
    const c = new HiveClient({ url: t.wsUrl, role: 'operator', apiKey: 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', client });
    const err = await c.start().catch((e) => e);
    expect(err.code).toBe('AUTH_INVALID');
    expect(err.hint.action).toBe('reauth');
  });
});
