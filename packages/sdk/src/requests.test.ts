import { sign as ed25519 } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { canonicalJson, invokeRootPayload, invokeSigningPayload } from '@hive/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { HiveClient, type RequestContext, type RequestHandler } from './client.js';
import { generateIdentity } from './identity.js';
import { merkleLeaf, merkleTree } from './merkle.js';

const hubId = generateIdentity();
const node = generateIdentity();
const sign = (payload: string) => ed25519(null, Buffer.from(payload), hubId.privateKey).toString('base64url');

type Res = { type: 'res'; id: string; ok: boolean; result?: unknown; error?: { code: string; message: string; details?: unknown } };

/** A hub that answers the handshake (hello with its signing key) and lets a test send requests to the node. */
async function fakeHub(handler: RequestHandler, maxFrameBytes = 1_048_576) {
  const wss = new WebSocketServer({ port: 0 });
  await once(wss, 'listening');
  const sockets: WebSocket[] = [];
  const answers = new Map<string, (r: Res) => void>();
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data) => {
      const f = JSON.parse(String(data));
      if (f.type === 'req' && f.method === 'connect') {
        const hello = {
          type: 'hello',
          protocol: 1,
          deviceId: node.deviceId,
          slug: 'n1',
          role: 'node',
          scopes: [],
          heartbeatMs: 30_000,
          limits: { maxFrameBytes },
          hubId: 'hub',
          hubKey: hubId.publicKey,
        };
        ws.send(JSON.stringify({ type: 'res', id: f.id, ok: true, result: hello }));
      } else if (f.type === 'res') answers.get(f.id)?.(f);
    });
    ws.send(
      JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: 'n'.repeat(32), ts: Date.now(), protocol: { min: 1, max: 1 } }, seq: 1 }),
    );
  });
  const client = new HiveClient({
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    role: 'node',
    identity: node,
    client: { name: 'test', version: '0', platform: 'linux', arch: 'x64', hostname: 'h' },
    reconnect: false,
    onRequest: handler,
  });
  await client.start();
  let n = 0;
  const request = (method: string, params: unknown): Promise<Res> => {
    const id = `h${++n}`;
    return new Promise((resolve) => {
      answers.set(id, resolve);
      sockets[0]?.send(JSON.stringify({ type: 'req', id, method, params }));
    });
  };
  const stop = async () => {
    await client.close();
    for (const s of sockets) s.terminate();
    await new Promise((r) => wss.close(r));
  };
  stops.push(stop);
  return { client, request, sockets, stop };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

let seq = 0;
/** An invoke for this node, signed alone by the hub key. */
function invoke(command = 'x', params: unknown = {}, over: Record<string, unknown> = {}) {
  const now = Date.now();
  const p = { command, params, correlationId: `c-${++seq}`, target: node.deviceId, issuedAt: now, deadline: now + 30_000, ...over };
  return { ...p, sig: sign(invokeSigningPayload(p)) };
}

/** A gate the test opens. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe('hub requests on a node', () => {
  it('runs a signed invoke, and a batch-signed one with its Merkle proof; refuses what does not verify', async () => {
    const hub = await fakeHub(async (_m, params) => ({ ran: (params as { command: string }).command }));
    expect(await hub.request('invoke', invoke('a'))).toMatchObject({ ok: true, result: { ran: 'a' } });
    const now = Date.now();
    const params = { z: 1, a: [true, null] };
    const batch = Array.from({ length: 5 }, (_, i) => ({
      command: 'b',
      params,
      correlationId: `m-${++seq}`,
      target: i === 3 ? node.deviceId : `other-${i}`,
      issuedAt: now,
      deadline: now + 30_000,
    }));
    const { root, proofs } = merkleTree(batch.map((p) => merkleLeaf(invokeSigningPayload(p, canonicalJson(params)))));
    const sig = sign(invokeRootPayload(root.toString('base64url')));
    expect(await hub.request('invoke', { ...batch[3], sig, proof: proofs[3] })).toMatchObject({ ok: true, result: { ran: 'b' } });
    const refused = async (params: unknown) => {
      const r = await hub.request('invoke', params);
      expect(r.ok).toBe(false);
      expect(r.error?.code).toBe('PERMISSION_DENIED');
      return (r.error?.details as { reason?: string } | undefined)?.reason;
    };
    // Another invoke's proof, a changed field, a proof step that is not one.
    expect(await refused({ ...batch[3], correlationId: `m-${++seq}`, sig, proof: proofs[3] })).toBe('bad signature');
    expect(await refused({ ...batch[2], sig, proof: proofs[2] })).toBe('addressed to another device');
    expect(await refused({ ...batch[3], sig, proof: proofs[1] })).toBe('bad signature');
    expect(await refused({ ...batch[3], sig, proof: ['X'.repeat(44)] })).toBe('malformed invoke');
    expect(await refused({ ...invoke('a'), extra: 1, sig: undefined })).toBe('unsigned');
    const replay = invoke('a');
    expect((await hub.request('invoke', replay)).ok).toBe(true);
    expect(await refused(replay)).toBe('replayed');
    // No params key at all (JSON drops undefined): the schema requires one.
    const r = await hub.request('invoke', { ...invoke('a'), params: undefined });
    expect(r.error).toEqual({ code: 'PERMISSION_DENIED', message: 'Invoke refused: malformed invoke', details: { reason: 'malformed invoke' } });
  });

  it('invoke.cancel aborts the signal, whether the handler read it before or after the cancel', async () => {
    const reasons: unknown[] = [];
    const late = gate();
    const started: (() => void)[] = [];
    const hub = await fakeHub(async (_m, params, ctx: RequestContext) => {
      started.shift()?.();
      if ((params as { command: string }).command === 'early') {
        const { signal } = ctx;
        await once(signal, 'abort');
        reasons.push(signal.reason);
        return { aborted: signal.aborted };
      }
      await late.opened;
      reasons.push(ctx.signal.reason);
      return { aborted: ctx.signal.aborted };
    });
    const early = invoke('early');
    const lazy = invoke('late');
    const both = [new Promise<void>((r) => started.push(r)), new Promise<void>((r) => started.push(r))];
    const answers = [hub.request('invoke', early), hub.request('invoke', lazy)];
    await Promise.all(both);
    expect(await hub.request('invoke.cancel', { correlationId: early.correlationId, reason: 'operator' })).toMatchObject({
      ok: true,
      result: { cancelled: true },
    });
    expect(await hub.request('invoke.cancel', { correlationId: lazy.correlationId })).toMatchObject({ ok: true, result: { cancelled: true } });
    // A second cancel keeps the first reason (as AbortController does).
    expect(await hub.request('invoke.cancel', { correlationId: lazy.correlationId, reason: 'again' })).toMatchObject({ result: { cancelled: true } });
    late.open();
    expect(await answers[0]).toMatchObject({ ok: true, result: { aborted: true } });
    expect(await answers[1]).toMatchObject({ ok: true, result: { aborted: true } });
    expect(reasons).toEqual(['operator', 'cancelled']);
    // Nothing running under that id any more; malformed cancels cancel nothing.
    expect(await hub.request('invoke.cancel', { correlationId: early.correlationId })).toMatchObject({ ok: true, result: { cancelled: false } });
    expect(await hub.request('invoke.cancel', { correlationId: '' })).toMatchObject({ ok: true, result: { cancelled: false } });
    expect(await hub.request('invoke.cancel', null)).toMatchObject({ ok: true, result: { cancelled: false } });
  });

  it('a dropped connection aborts the requests in flight, read before or after the drop', async () => {
    const early = gate();
    const late = gate();
    const got: { aborted: boolean; name: string }[] = [];
    const done = gate();
    const hub = await fakeHub(async (_m, params, ctx) => {
      if ((params as { command: string }).command === 'early') {
        const signal = ctx.signal;
        early.open();
        await once(signal, 'abort');
        got.push({ aborted: signal.aborted, name: (signal.reason as Error).name });
      } else {
        late.open();
        await done.opened;
        got.push({ aborted: ctx.signal.aborted, name: (ctx.signal.reason as Error).name });
      }
      return {};
    });
    void hub.request('invoke', invoke('early'));
    void hub.request('invoke', invoke('late'));
    await Promise.all([early.opened, late.opened]);
    const gone = once(hub.client, 'disconnected');
    hub.sockets[0]?.terminate();
    await gone;
    done.open();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([
      { aborted: true, name: 'AbortError' },
      { aborted: true, name: 'AbortError' },
    ]);
  });

  it("a result over the hub's frame limit is refused, counted in UTF-8 bytes", async () => {
    const hub = await fakeHub(async (_m, params) => ({ text: (params as { params: { text: string } }).params.text }), 1000);
    expect(await hub.request('invoke', invoke('t', { text: 'x'.repeat(300) }))).toMatchObject({ ok: true });
    expect(await hub.request('invoke', invoke('t', { text: '€'.repeat(330) }))).toMatchObject({ ok: false, error: { code: 'FRAME_TOO_LARGE' } });
    expect(await hub.request('invoke', invoke('t', { text: 'é'.repeat(450) }))).toMatchObject({ ok: true });
    expect(await hub.request('invoke', invoke('t', { text: 'x'.repeat(1000) }))).toMatchObject({ ok: false, error: { code: 'FRAME_TOO_LARGE' } });
  });
});
