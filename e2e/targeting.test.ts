import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { invokeRootPayload, invokeSigningPayload } from '@hive/protocol';
import { generateIdentity, HiveClient, merkleLeaf, merkleTree } from '@hive/sdk';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { memTokens, simNode } from './fleet.js';
import { cleanup, operator, runCli, startHub, type TestHub } from './helpers.js';

describe('targeting: tags, groups, lists, queues (real hub, 22 SDK nodes)', () => {
  let t: TestHub;
  const nodes: Awaited<ReturnType<typeof simNode>>[] = [];
  beforeAll(async () => {
    t = await startHub({ overrides: { approvals: { rules: [{ command: 'system.run', require: false }] } } });
    for (let i = 0; i < 22; i++) {
      const slow = i === 5;
      nodes.push(
        await simNode(t.wsUrl, `web-${String(i).padStart(2, '0')}`, {
          tags: i < 21 ? ['web'] : ['db'],
          // web-05 never answers: its job must time out without holding up the others
          ...(slow ? { handler: () => new Promise(() => {}) } : {}),
        }),
      );
    }
    // web-07 goes offline
    const op = await operator(t);
    await nodes[7]?.client.close();
    await op.waitEvent('satellite:offline', (p) => p.id === nodes[7]?.id.deviceId);
    await op.close();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.client.close()));
    await t.close();
    cleanup(t.dataDir);
  });

  it('exec by tag over 21 satellites: per-target results and a summary; one offline, one timing out', async () => {
    const res = await t.api('POST', '/api/v1/exec', { target: { tag: 'web' }, command: 'system.run', params: { argv: ['echo', 'hi'] }, timeout_ms: 1500 });
    expect(res.status).toBe(200);
    const { summary, results, batch_id } = res.body.data;
    expect(summary).toMatchObject({ total: 21, succeeded: 19, offline: 1, timed_out: 1, failed: 0 });
    const bySlug = Object.fromEntries(results.map((r: any) => [r.slug, r]));
    expect(bySlug['web-07'].error.code).toBe('SATELLITE_OFFLINE');
    expect(bySlug['web-05'].state).toBe('timed_out');
    expect(bySlug['web-00']).toMatchObject({ state: 'succeeded', result: { stdout: 'hi\n' } });
    expect(bySlug['web-21']).toBeUndefined();
    // The rows held while the fan-out ran are written once its answer has gone out, by themselves
    // (read from the database file, not through the hub, whose reads write what waits first).
    const db = new Database(path.join(t.dataDir, 'hive.db'), { readonly: true });
    try {
      const stored = () => (db.prepare("select count(*) as n from jobs where batch_id = ? and state != 'running'").get(batch_id) as { n: number }).n;
      const deadline = Date.now() + 10_000;
      while (stored() < 21 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(stored()).toBe(21); // 19 succeeded, 1 timed out, 1 failed (offline)
    } finally {
      db.close();
    }
    const jobs = await t.api('GET', `/api/v1/commands?batch=${batch_id}&per_page=100`);
    expect(jobs.body.pagination.total).toBe(21);
  });

  it('a fan-out wider than one signing chunk (300 nodes, 128 per signature) with fewer slots than targets: every node accepts its proof', async () => {
    const wide: Awaited<ReturnType<typeof simNode>>[] = [];
    try {
      for (let i = 0; i < 300; i++) wide.push(await simNode(t.wsUrl, `wide-${String(i).padStart(3, '0')}`, { tags: ['wide'] }));
      const audited = async () => (await t.api('GET', '/api/v1/audit/logs?action=command.exec&per_page=1')).body.pagination.total as number;
      const before = await audited();
      const res = await t.api('POST', '/api/v1/exec', { target: { tag: 'wide' }, command: 'system.info', concurrency: 40 });
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
      expect(res.body.data.summary).toMatchObject({ total: 300, succeeded: 300, failed: 0 });
      expect(new Set(res.body.data.results.map((r: { job_id: string }) => r.job_id)).size).toBe(300);
      expect(res.body.data.results.map((r: { slug: string }) => r.slug)).toEqual(wide.map((_, i) => `wide-${String(i).padStart(3, '0')}`));
      // One audit entry per target (their write-ahead lines go out a turn at a time).
      expect((await audited()) - before).toBe(300);
    } finally {
      await Promise.all(wide.map((n) => n.client.close()));
    }
  });

  it('while a fan-out waits for a slow node, operators see its finished jobs and can read them', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const fast = [await simNode(t.wsUrl, 'gate-fast-1', { tags: ['gate'] }), await simNode(t.wsUrl, 'gate-fast-2', { tags: ['gate'] })];
    const slow = await simNode(t.wsUrl, 'gate-slow', { tags: ['gate'], handler: () => gate.then(() => ({ ok: true })) });
    const op = await operator(t);
    try {
      const sent = Date.now();
      const answer = t.api('POST', '/api/v1/exec', { target: { tag: 'gate' }, command: 'system.info' });
      // The fan-out holds its rows until it answers (at most 5 s); the events of its finished jobs
      // do not wait for them (if they did, they would come only after those 5 s).
      const done = await Promise.all(
        fast.map((n) => op.waitEvent('job:updated', (p) => p.satellite_id === n.id.deviceId && p.batch_id && p.state === 'succeeded', 4000)),
      );
      const db = new Database(path.join(t.dataDir, 'hive.db'), { readonly: true });
      const stored = db.prepare('select count(*) as n from jobs where batch_id = ?').get(done[0].batch_id) as { n: number };
      db.close();
      // Held at most 5 s from their creation: only a machine slower than that may have written them.
      if (Date.now() - sent < 4000) expect(stored.n).toBe(0);
      // Every read writes what waits first.
      const read = await t.api('GET', `/api/v1/commands/${done[0].id}`);
      expect(read.body.data).toMatchObject({ state: 'succeeded', batch_id: done[0].batch_id });
      open();
      const res = await answer;
      expect(res.body.data.summary).toMatchObject({ total: 3, succeeded: 3 });
      expect(res.body.data.batch_id).toBe(done[0].batch_id);
    } finally {
      open();
      await op.close();
      await Promise.all([...fast, slow].map((n) => n.client.close()));
    }
  });

  it('a fan-out answer streams: the head and the results before a slow node arrive while it still runs; the whole is the same JSON', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    // Targets are in slug order: the two fast ones come before the slow one.
    const fast = [await simNode(t.wsUrl, 'stream-a-1', { tags: ['stream'] }), await simNode(t.wsUrl, 'stream-a-2', { tags: ['stream'] })];
    const slow = await simNode(t.wsUrl, 'stream-z-slow', { tags: ['stream'], handler: () => gate.then(() => ({ late: true })) });
    try {
      const res = await fetch(`${t.url}/api/v1/exec`, {
        method: 'POST',
        headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json' },
        body: JSON.stringify({ target: { tag: 'stream' }, command: 'system.info' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const dec = new TextDecoder();
      let text = '';
      // Read until both fast results are in; the slow node has not answered (its gate is shut).
      while (!(text.includes('"slug":"stream-a-1"') && text.includes('"slug":"stream-a-2"'))) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`response ended before the fast results: ${text}`);
        text += dec.decode(value, { stream: true });
      }
      expect(text).toMatch(/^\{"success":true,"data":\{"batch_id":"bat_[^"]+","command":"system.info","results":\[/);
      expect(text).not.toContain('stream-z-slow');
      expect(text).not.toContain('"summary"');
      open();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      const body = JSON.parse(text);
      expect(body.data.results.map((r: { slug: string }) => r.slug)).toEqual(['stream-a-1', 'stream-a-2', 'stream-z-slow']);
      expect(body.data.results[2]).toMatchObject({ state: 'succeeded', result: { late: true }, error: null });
      expect(body.data.summary).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
    } finally {
      open();
      await Promise.all([...fast, slow].map((n) => n.client.close()));
    }
  });

  it('a fan-out that cannot start answers with a plain error (nothing streamed)', async () => {
    const res = await t.api('POST', '/api/v1/exec', { target: { tag: 'no-such-tag' }, command: 'system.info' });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: { code: 'SATELLITE_NOT_FOUND' } });
  });

  it('groups: explicit members plus tag members; exec on a group; list by tag', async () => {
    const g = await t.api('POST', '/api/v1/groups', { name: 'mixed', members: ['web-21'], tags: [] });
    expect(g.status).toBe(201);
    await t.api('POST', '/api/v1/groups', { name: 'dbs', tags: ['db'] });
    const dup = await t.api('POST', '/api/v1/groups', { name: 'dbs' });
    expect(dup.body.error.code).toBe('CONFLICT');
    const ex = await t.api('POST', '/api/v1/groups/dbs/exec', { command: 'system.info', params: {} });
    expect(ex.body.data.summary).toMatchObject({ total: 1, succeeded: 1 });
    const byTag = await t.api('GET', '/api/v1/satellites/by-tag/db');
    expect(byTag.body.data.map((s: any) => s.slug)).toEqual(['web-21']);
    const list = await t.api('POST', '/api/v1/exec', { target: { satellites: ['web-01', 'web-02'] }, command: 'system.info', params: {} });
    expect(list.body.data.summary.total).toBe(2);
    const none = await t.api('POST', '/api/v1/exec', { target: { tag: 'nothing' }, command: 'system.info', params: {} });
    expect(none.status).toBe(404);
  });

  it('`hive exec tag:NAME` and `group:NAME` print per-target results; exit code reflects failures', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const ok = await runCli(['exec', 'group:dbs', '--', 'echo', 'x'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('web-21');
    expect(ok.stdout).toMatch(/1 succeeded/);
    const mixed = await runCli(['exec', 'tag:web', '--timeout', '1000', '--json', '--', 'echo', 'y'], env);
    expect(mixed.code).toBe(1);
    expect(JSON.parse(mixed.stdout).summary.offline).toBe(1);
  });

  it('a job queued for an offline satellite runs exactly once when it reconnects; an expired one ends timed_out', async () => {
    const node = nodes[7];
    if (!node) throw new Error('no node');
    const until = new Date(Date.now() + 60_000).toISOString();
    const queued = await t.api('POST', `/api/v1/satellites/${node.id.deviceId}/exec`, {
      command: 'system.run',
      params: { argv: ['echo', 'later'] },
      queue_until: until,
    });
    expect(queued.status).toBe(202);
    expect(queued.body.data.state).toBe('queued');
    const expiring = await t.api('POST', `/api/v1/satellites/${node.id.deviceId}/exec`, {
      command: 'system.info',
      params: {},
      queue_until: new Date(Date.now() + 300).toISOString(),
    });
    const op = await operator(t);
    await op.waitEvent('job:updated', (p) => p.id === expiring.body.data.id && p.state === 'timed_out');
    let runs = 0;
    const again = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: node.id,
      tokenStore: node.tokens.store,
      client: { name: 'sim-node', version: '0', hostname: 'web-07', displayName: 'web-07' },
      commands: ['system.info', 'system.run'],
      onRequest: async () => {
        runs++;
        return { exitCode: 0, signal: null, stdout: 'later\n', stderr: '', stdoutTruncated: false, stderrTruncated: false, durationMs: 1 };
      },
    });
    await again.start();
    const done = await op.waitEvent('job:updated', (p) => p.id === queued.body.data.id && p.state === 'succeeded');
    expect(done.state).toBe('succeeded');
    // reconnecting again does not run it twice
    await again.close();
    const third = new HiveClient({ ...again.opts, onRequest: again.opts.onRequest });
    await third.start();
    expect((await third.request('ping')) as object).toHaveProperty('ts');
    expect(runs).toBe(1);
    await third.close();
    await op.close();
  });

  it('streams partial output of a running job to operators as job:output', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const n = await simNode(t.wsUrl, 'streamer', {
      handler: async (_m, _p, ctx) => {
        ctx.output('stdout', 'step 1\n');
        await gate;
        ctx.output('stdout', 'step 2\n');
        return { exitCode: 0, signal: null, stdout: 'step 1\nstep 2\n', stderr: '', stdoutTruncated: false, stderrTruncated: false, durationMs: 1 };
      },
    });
    const op = await operator(t);
    const job = await t.api('POST', '/api/v1/satellites/streamer/exec', { command: 'system.run', params: { argv: ['echo', 'x'] }, async: true });
    const first = await op.waitEvent('job:output', (p) => p.correlation_id === job.body.data.correlation_id);
    expect(first).toMatchObject({ stream: 'stdout', data: 'step 1\n', satellite_id: n.id.deviceId });
    release();
    const second = await op.waitEvent('job:output', (p) => p.correlation_id === job.body.data.correlation_id && p.data === 'step 2\n');
    expect(second.stream).toBe('stdout');
    await op.waitEvent('job:updated', (p) => p.id === job.body.data.id && p.state === 'succeeded');
    await n.client.close();
    await op.close();
  });

  it('the node sees its effective policy and claims on the hub; unclaimed commands are refused', async () => {
    const sat = await t.api('GET', '/api/v1/satellites/web-00');
    expect(sat.body.data.commands).toEqual(['system.info', 'system.run']);
    expect(sat.body.data.approved_commands).toEqual(['system.info', 'system.run']);
    const res = await t.api('POST', '/api/v1/satellites/web-00/exec', { command: 'power', params: { action: 'reboot' } });
    expect(res.body.error.code).toBe('UNKNOWN_COMMAND');
  });

  it('new claims after pairing need an operator before the hub routes them', async () => {
    const n = nodes[3];
    if (!n) throw new Error('no node');
    await n.client.close();
    const op = await operator(t);
    const c = new HiveClient({ ...n.client.opts, commands: ['system.info', 'system.run', 'process.list'] });
    await c.start();
    const claims = await op
      .waitEvent('satellite:claims', (p) => p.id === n.id.deviceId, 5000)
      .catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify((await t.api('GET', `/api/v1/satellites/${n.id.deviceId}`)).body)}`);
      });
    expect(claims.pending).toEqual(['process.list']);
    const refused = await t.api('POST', `/api/v1/satellites/${n.id.deviceId}/exec`, { command: 'process.list', params: {} });
    expect(refused.body.error.code).toBe('CLAIM_NOT_APPROVED');
    const ok = await t.api('POST', `/api/v1/satellites/${n.id.deviceId}/claims/approve`);
    expect(ok.body.data.approved_commands).toContain('process.list');
    expect(ok.body.data.pending_claims).toEqual([]);
    await c.close();
    await op.close();
  });
});

/** A stand-in (malicious) hub: challenge, then `hello` presenting `hubKey`; every other frame goes to `onFrame`. */
async function standInHub(hubKey: string, onFrame: (f: any) => void = () => {}) {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  let socket: import('ws').WebSocket | undefined;
  wss.on('connection', (ws) => {
    socket = ws;
    ws.send(
      JSON.stringify({ type: 'event', event: 'connect.challenge', seq: 1, payload: { nonce: 'n'.repeat(24), ts: Date.now(), protocol: { min: 1, max: 1 } } }),
    );
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.method !== 'connect') return onFrame(f);
      const hello = {
        type: 'hello',
        protocol: 1,
        deviceId: 'd',
        slug: 'x',
        role: 'node',
        scopes: [],
        heartbeatMs: 30000,
        limits: {},
        hubId: 'stand-in',
        hubKey,
      };
      ws.send(JSON.stringify({ type: 'res', id: f.id, ok: true, result: hello }));
    });
  });
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`,
    send: (frame: unknown) => socket?.send(JSON.stringify(frame)),
    close() {
      wss.close();
      http.close();
    },
  };
}

describe('signed invokes: a node refuses anything its pinned hub key did not sign (stand-in malicious hub)', () => {
  it('refuses unsigned, forged, misaddressed, stale and replayed invokes; runs a valid one', async () => {
    const hubKey = generateIdentity();
    const forger = generateIdentity();
    const node = generateIdentity();
    const answered = new Map<string, (v: any) => void>();
    const hub = await standInHub(hubKey.publicKey, (f) => f.type === 'res' && answered.get(f.id)?.(f));
    const ran: string[] = [];
    const tokens = memTokens();
    const client = new HiveClient({
      url: hub.url,
      role: 'node',
      identity: node,
      tokenStore: tokens.store,
      client: { name: 'n', version: '0' },
      onRequest: async (_m, p) => {
        ran.push((p as { correlationId: string }).correlationId);
        return { ok: true };
      },
    });
    await client.start();
    expect(tokens.m.get('hubKey')).toBe(hubKey.publicKey);
    const { sign } = await import('node:crypto');
    const send = (id: string, params: any) =>
      new Promise<any>((resolve) => {
        answered.set(id, resolve);
        hub.send({ type: 'req', id, method: 'invoke', params });
      });
    const base = (corr: string, over: Record<string, unknown> = {}) => ({
      command: 'system.info',
      params: {},
      correlationId: corr,
      target: node.deviceId,
      issuedAt: Date.now(),
      deadline: Date.now() + 10_000,
      ...over,
    });
    const signWith = (key: typeof hubKey, p: any) => ({ ...p, sig: sign(null, Buffer.from(invokeSigningPayload(p)), key.privateKey).toString('base64url') });
    const unsigned = await send('i1', base('c1'));
    expect(unsigned.error).toMatchObject({ code: 'PERMISSION_DENIED', details: { reason: 'unsigned' } });
    const forged = await send('i2', signWith(forger, base('c2')));
    expect(forged.error.details.reason).toBe('bad signature');
    const tampered = { ...signWith(hubKey, base('c3')), command: 'power' };
    expect((await send('i3', tampered)).error.details.reason).toBe('bad signature');
    const other = await send('i4', signWith(hubKey, base('c4', { target: 'someone-else' })));
    expect(other.error.details.reason).toBe('addressed to another device');
    const stale = await send('i5', signWith(hubKey, base('c5', { issuedAt: Date.now() - 10 * 60_000 })));
    expect(stale.error.details.reason).toBe('stale');
    const good = signWith(hubKey, base('c6'));
    expect((await send('i6', good)).ok).toBe(true);
    const replay = await send('i7', good);
    expect(replay.error.details.reason).toBe('replayed');
    expect(ran).toEqual(['c6']);

    // Fan-out batches: one signature over a Merkle root, a proof per invoke.
    const batch = [base('b1'), base('b2', { target: 'someone-else' }), base('b3', { command: 'system.health' })];
    const { root, proofs } = merkleTree(batch.map((p) => merkleLeaf(invokeSigningPayload(p))));
    const rootSig = sign(null, Buffer.from(invokeRootPayload(root.toString('base64url'))), hubKey.privateKey).toString('base64url');
    const withProof = (i: number, over: Record<string, unknown> = {}) => ({ ...batch[i], sig: rootSig, proof: proofs[i], ...over });
    expect((await send('m1', withProof(0))).ok).toBe(true);
    expect((await send('m2', withProof(1))).error.details.reason).toBe('addressed to another device');
    // Another invoke's proof, or a changed field, does not lead to the signed root.
    expect((await send('m3', withProof(2, { proof: proofs[0] }))).error.details.reason).toBe('bad signature');
    expect((await send('m4', withProof(2, { params: { extra: 1 } }))).error.details.reason).toBe('bad signature');
    const forgedRoot = sign(null, Buffer.from(invokeRootPayload(root.toString('base64url'))), forger.privateKey).toString('base64url');
    expect((await send('m5', withProof(2, { sig: forgedRoot }))).error.details.reason).toBe('bad signature');
    expect((await send('m6', withProof(2, { proof: ['X'.repeat(44)] }))).error.details.reason).toBe('malformed invoke');
    expect((await send('m7', withProof(2))).ok).toBe(true);
    expect(ran).toEqual(['c6', 'b1', 'b3']);
    await client.close();
    hub.close();
  });

  it('a hub presenting a different key than the pinned one is refused', async () => {
    const hub = await standInHub(generateIdentity().publicKey);
    const tokens = memTokens();
    tokens.m.set('hubKey', generateIdentity().publicKey);
    const client = new HiveClient({ url: hub.url, role: 'node', identity: generateIdentity(), tokenStore: tokens.store, client: { name: 'n', version: '0' } });
    const err = await client.start().catch((e) => e);
    expect(err.code).toBe('AUTH_INVALID');
    expect(err.message).toMatch(/pinned/);
    hub.close();
  });
});
