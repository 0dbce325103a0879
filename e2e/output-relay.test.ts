import type { RequestContext } from '@hive/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, operator, startHub, type TestHub } from './helpers.js';

/**
 * The hub relays a node's `invoke.output` only while that invoke is in flight on that very
 * connection: with several invokes running at once on one node, and never after the result.
 */
describe('invoke output relay', () => {
  let t: TestHub;
  let node: Awaited<ReturnType<typeof simNode>>;
  /** Each running invoke's output function and the release of its answer, by correlation id. */
  const running = new Map<string, { output: RequestContext['output']; release: () => void }>();
  let arrived: (corr: string) => void = () => {};

  beforeAll(async () => {
    t = await startHub();
    node = await simNode(t.wsUrl, 'relay-node', {
      handler: async (method, params, ctx) => {
        if (method !== 'invoke' || !ctx) throw new Error(`unexpected ${method}`);
        const corr = (params as { correlationId: string }).correlationId;
        await new Promise<void>((release) => {
          running.set(corr, { output: ctx.output, release });
          arrived(corr);
        });
        return { hostname: 'relay-node', ok: true };
      },
    });
  });
  afterAll(async () => {
    await node?.client.close();
    await t?.close();
    cleanup(t.dataDir);
  });

  /** Starts an async exec and waits until the node holds it. */
  async function startRunning(): Promise<{ corr: string; jobId: string }> {
    const held = new Promise<string>((resolve) => {
      arrived = resolve;
    });
    const res = await t.api('POST', '/api/v1/satellites/relay-node/exec', { command: 'system.info', params: {}, async: true });
    expect(res.status).toBe(202);
    const corr = await held;
    expect(corr).toBe(res.body.data.correlation_id);
    return { corr, jobId: res.body.data.id };
  }

  it('relays the output of two invokes running at once on one node, each under its own correlation id', async () => {
    const op = await operator(t);
    const a = await startRunning();
    const b = await startRunning();
    running.get(b.corr)?.output('stdout', 'from b\n');
    running.get(a.corr)?.output('stderr', 'from a\n');
    expect(await op.waitEvent('job:output', (p) => p.correlation_id === b.corr)).toMatchObject({ stream: 'stdout', data: 'from b\n' });
    expect(await op.waitEvent('job:output', (p) => p.correlation_id === a.corr)).toMatchObject({ stream: 'stderr', data: 'from a\n' });
    // The first one ends; the second still runs and its output still goes through.
    running.get(a.corr)?.release();
    await op.waitEvent('job:updated', (p) => p.id === a.jobId && p.state === 'succeeded');
    running.get(b.corr)?.output('stdout', 'b again\n');
    expect(await op.waitEvent('job:output', (p) => p.correlation_id === b.corr && p.data === 'b again\n')).toMatchObject({ stream: 'stdout' });
    running.get(b.corr)?.release();
    await op.waitEvent('job:updated', (p) => p.id === b.jobId && p.state === 'succeeded');
    await op.close();
  });

  it('refuses output for an invoke that has ended, and relays none of it', async () => {
    const op = await operator(t);
    const c = await startRunning();
    const late = running.get(c.corr);
    late?.release();
    await op.waitEvent('job:updated', (p) => p.id === c.jobId && p.state === 'succeeded');
    const refused = new Promise<{ code: string; message: string }>((resolve) => {
      node.client.on('event', (name: string, payload: { code: string; message: string }) => {
        if (name === 'error') resolve(payload);
      });
    });
    late?.output('stdout', 'too late\n');
    expect(await refused).toMatchObject({ code: 'BAD_FRAME', message: 'invoke.output for no running command' });
    // Output sent after the late one is relayed; had the late one been, it would have come first
    // (one connection in, one bus, one operator connection out: all in order). It is not among
    // the events seen (a 1 ms wait: only what has already come counts).
    const d = await startRunning();
    running.get(d.corr)?.output('stdout', 'on time\n');
    await op.waitEvent('job:output', (p) => p.correlation_id === d.corr);
    running.get(d.corr)?.release();
    await expect(op.waitEvent('job:output', (p) => p.correlation_id === c.corr, 1)).rejects.toThrow(/timed out/);
    await op.close();
  });
});
