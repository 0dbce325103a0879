import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mintToken } from '@hive/server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPrereqsMissing, dropSchema, eventually, PG_URL, REDIS_URL } from './cluster-probe.js';
import { approvalRacedAcross } from './cluster-steps.js';
import { simNode } from './fleet.js';
import { type AgentProc, cleanup, operator, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

const missing = await clusterPrereqsMissing();
if (missing) console.warn(`[cluster e2e] skipped: ${missing}`);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.skipIf(missing !== null)('two hub instances on one PostgreSQL + Redis', () => {
  const schema = `hive_cluster_${randomBytes(5).toString('hex')}`;
  const prefix = `hive-test-${randomBytes(4).toString('hex')}`;
  const adminKey = mintToken('hive').token;
  const dirA = tempDir();
  const dirB = tempDir();
  const files = path.join(dirA, 'files');
  let a: TestHub;
  let b: TestHub;
  let agent: AgentProc | undefined;
  const nodes: Awaited<ReturnType<typeof simNode>>[] = [];

  const overrides = {
    database: { driver: 'postgres' as const, connection: PG_URL, schema },
    cluster: { redis_url: REDIS_URL, key_prefix: prefix, presence_ttl: 3000 },
    approvals: { rules: [{ command: 'file.write', require: false }] },
  };

  beforeAll(async () => {
    a = await startHub({ dataDir: dirA, adminKey, overrides: { ...overrides, cluster: { ...overrides.cluster, instance_id: 'inst-a' } } });
    b = await startHub({ dataDir: dirB, adminKey, overrides: { ...overrides, cluster: { ...overrides.cluster, instance_id: 'inst-b' } } });
  });
  afterAll(async () => {
    await agent?.kill();
    for (const n of nodes) await n.client.close();
    await a?.close();
    await b?.close();
    cleanup(dirA);
    cleanup(dirB);
    await dropSchema(schema);
  });

  it('a satellite on instance A is seen, listed and commanded through instance B', async () => {
    const opB = await operator(b);
    nodes.push(await simNode(a.wsUrl, 'on-a', { tags: ['web'] }));
    const online = await opB.waitEvent('satellite:online', (p) => p.slug === 'on-a');
    const got = await b.api('GET', '/api/v1/satellites/on-a');
    expect(got.body.data.status).toBe('online');
    const ran = await b.api('POST', '/api/v1/satellites/on-a/exec', { command: 'system.run', params: { argv: ['echo', 'via-b'] } });
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.data.result.stdout).toBe('via-b\n');
    // The job is recorded once, by the instance that dispatched it.
    const job = await a.api('GET', `/api/v1/commands/${ran.body.data.id}`);
    expect(job.body.data.state).toBe('succeeded');
    expect(online.id).toBe(got.body.data.id);
    await opB.close();
  });

  it('fans out by tag over satellites held by both instances', async () => {
    const opA = await operator(a);
    nodes.push(await simNode(b.wsUrl, 'on-b', { tags: ['web'] }));
    await opA.waitEvent('satellite:online', (p) => p.slug === 'on-b');
    for (const hub of [a, b]) {
      const r = await hub.api('POST', '/api/v1/exec', { target: { tag: 'web' }, command: 'system.info' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data.summary).toMatchObject({ total: 2, succeeded: 2 });
    }
    await opA.close();
  });

  it('approvals: the first decision wins across instances and releases a waiter on the other one', async () => {
    // Synchronous request on A that needs approval; the decision is taken on B (and raced on A).
    await approvalRacedAcross({ via: a, satellite: 'on-b', file: 'needs-approval', watcher: b, deciders: [b, a] });
  });

  it('streams cross instances: a file uploaded and downloaded through B reaches an agent on A intact', async () => {
    mkdirSync(files, { recursive: true });
    const cfg = path.join(dirA, 'agent.json');
    writeFileSync(cfg, JSON.stringify({ policy: { allowed_paths: [files], allow_file_write: true } }));
    const opB = await operator(b);
    agent = spawnAgent(a.wsUrl, path.join(dirA, 'agent'), ['--name', 'files-a', '--config', cfg]);
    const sat = await opB.waitEvent('satellite:online', (p) => p.slug?.startsWith('files-a'));
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const target = path.join(files, 'cross.bin');
    const up = await fetch(`${b.url}/api/v1/satellites/${sat.id}/files?path=${encodeURIComponent(target)}`, {
      method: 'PUT',
      headers: { 'x-api-key': adminKey, 'content-type': 'application/octet-stream', 'x-hive-sha256': sha256(data) },
      body: data,
    });
    expect(up.status, await up.clone().text()).toBe(201);
    expect(sha256(readFileSync(target))).toBe(sha256(data));
    const down = await fetch(`${b.url}/api/v1/satellites/${sat.id}/files?path=${encodeURIComponent(target)}`, { headers: { 'x-api-key': adminKey } });
    expect(down.status).toBe(200);
    expect(sha256(Buffer.from(await down.arrayBuffer()))).toBe(sha256(data));
    await opB.close();
  });

  it('a PTY session opened through B on a satellite held by A streams through the tunnel; A can end it', async () => {
    const opB = await operator(b);
    const res = await opB.request<{ session: { id: string }; attach: unknown }>('session.open', {
      satellite: 'files-a',
      attach: 'events',
      command: 'echo from-the-pty; sleep 30',
    });
    const id = res.session.id;
    let text = '';
    await opB.waitEvent('session:output', (p) => {
      if (p.session_id === id) text += Buffer.from(p.output, 'base64').toString();
      return text.includes('from-the-pty');
    });
    const closed = await a.api('DELETE', `/api/v1/sessions/${id}`);
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect(closed.body.data).toMatchObject({ status: 'ended', end_reason: 'terminated' });
    const ended = await opB.waitEvent('session:ended', (p) => p.session_id === id);
    expect(ended.reason).toBe('terminated');
    await opB.close();
  });

  it('events reach operators on every instance; revoking a key closes its connections everywhere', async () => {
    const key = await a.api('POST', '/api/v1/apikeys', { name: 'roaming', scopes: ['operator.read'] });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    const opB = await operator(b, key.body.data.key);
    const closed = new Promise<{ code: number }>((resolve) => opB.once('disconnected', resolve));
    const revoked = await a.api('DELETE', `/api/v1/apikeys/${key.body.data.id}`);
    expect(revoked.status).toBe(200);
    expect((await closed).code).toBe(4007);
    expect((await b.api('GET', '/api/v1/satellites', undefined, key.body.data.key)).status).toBe(401);
  });

  it('failed logins are counted across instances: spreading a guessing attack over both does not help', async () => {
    const attempt = (hub: TestHub) =>
      fetch(`${hub.url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: 'wrong-guess' }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await attempt(i % 2 ? b : a)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    for (const hub of [a, b]) {
      const r = await attempt(hub);
      expect(r.status).toBe(429);
      expect(r.body.error?.code).toBe('RATE_LIMITED');
    }
  });

  it('an instance the others declared lost (it only stalled) has its satellites reconnect cleanly', async () => {
    const node = await simNode(a.wsUrl, 'stalled-a');
    nodes.push(node);
    const redis = new Redis(REDIS_URL);
    const opB = await operator(b);
    try {
      // The agent process on A (previous test) reconnects too, with its own jittered backoff.
      const filesId = (await b.api('GET', '/api/v1/satellites/files-a')).body.data.id;
      const agentBack = new Promise<void>((resolve) => {
        const on = (name: string, p: { id: string }) => {
          if (name === 'satellite:online' && p.id === filesId) {
            opB.off('event', on);
            resolve();
          }
        };
        opB.on('event', on);
      });
      const dropped = new Promise<{ code: number }>((resolve) => node.client.once('disconnected', resolve));
      const back = new Promise<void>((resolve) => node.client.once('hello', () => resolve()));
      // What a survivor does once A has missed its heartbeats for presence_ttl.
      await redis.zrem(`${prefix}:instances`, 'inst-a');
      await redis.set(`${prefix}:dead:inst-a`, '1', 'EX', 60);
      expect((await dropped).code).toBe(1012);
      await back;
      // B learns of the new connection through Redis a moment after the hello.
      const r = await eventually(async () => {
        const x = await b.api('POST', '/api/v1/satellites/stalled-a/exec', { command: 'system.run', params: { argv: ['echo', 'back'] } });
        return x.status === 200 ? x : undefined;
      }, 'a command through B to the reconnected satellite');
      expect(r.body.data.result.stdout).toBe('back\n');
      expect(await redis.exists(`${prefix}:dead:inst-a`)).toBe(0);
      await agentBack;
    } finally {
      redis.disconnect();
      await opB.close();
    }
  });

  it('a satellite that moves from A to B is online once, held by B, and commands follow it', async () => {
    const opA = await operator(a);
    const n = nodes[0];
    if (!n) throw new Error('no node');
    // The previous test had A's satellites reconnect (jittered backoff); this one may not be back
    // yet, and closing it while away would leave A nothing to mark offline.
    if (!n.client.connected) await new Promise((resolve) => n.client.once('hello', resolve));
    await n.client.close();
    const gone = (await a.api('GET', '/api/v1/satellites/on-a')).body.data.id;
    await opA.waitEvent('satellite:offline', (p) => p.id === gone);
    const moved = await simNode(b.wsUrl, 'on-a-again');
    nodes.push(moved);
    await opA.waitEvent('satellite:online', (p) => p.slug?.startsWith('on-a-again'));
    const r = await a.api('POST', `/api/v1/satellites/on-a-again/exec`, { command: 'system.run', params: { argv: ['echo', 'followed'] } });
    expect(r.body.data.result.stdout).toBe('followed\n');
    const metricsB = await b.api('GET', '/api/v1/satellites?status=online&per_page=50');
    expect(metricsB.body.data.map((s: any) => s.slug).sort()).toEqual(
      expect.arrayContaining(['files-a', 'on-a-again', 'on-b'].map((x) => expect.stringContaining(x))),
    );
    await opA.close();
  });
});
