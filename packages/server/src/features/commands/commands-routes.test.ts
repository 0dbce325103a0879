import type { AddressInfo } from 'node:net';
import { HiveError } from '@hive/protocol';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../http/app.js';
import { streamBatch } from './commands-routes.js';
import type { BatchSink, TargetResult } from './commands-service.js';

const result = (slug: string): TargetResult => ({
  satellite_id: `sat_${slug}`,
  slug,
  job_id: `job_${slug}`,
  state: 'succeeded',
  result: { n: 1 },
  error: null,
});

/** A real HTTP server around streamBatch with `exec` standing in for the fan-out. */
async function serve(exec: (sink: BatchSink) => Promise<{ summary: unknown }>) {
  const app = createApp({ logger: pino({ level: 'silent' }), auth: { verifyApiKey: async () => Promise.reject(new Error('unused')) } });
  app.post('/x', { config: { scope: 'public' } }, async (_req, reply) => streamBatch(reply, (_after, sink) => exec(sink)));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/x`;
  return { app, url };
}

describe('streamBatch (the streamed fan-out answer)', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('gives the same JSON as a whole answer would: head, results in runs, summary last', async () => {
    const { app, url } = await serve(async (sink) => {
      sink.head('bat_1', 'system.info');
      sink.results([result('a'), result('b')]);
      await new Promise((r) => setImmediate(r));
      sink.results([result('c')]);
      return { summary: { total: 3, succeeded: 3 } };
    });
    close = () => app.close();
    const res = await fetch(url, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({
      success: true,
      data: { batch_id: 'bat_1', command: 'system.info', results: [result('a'), result('b'), result('c')], summary: { total: 3, succeeded: 3 } },
    });
  });

  it('an error before the head is answered as a typed error', async () => {
    const { app, url } = await serve(async () => {
      throw new HiveError('SATELLITE_NOT_FOUND', 'no such target');
    });
    close = () => app.close();
    const res = await fetch(url, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ success: false, error: { code: 'SATELLITE_NOT_FOUND' } });
  });

  it('an error after results went out cuts the response: the client cannot read it as complete JSON', async () => {
    let sent: () => void = () => {};
    const wasSent = new Promise<void>((r) => {
      sent = r;
    });
    const { app, url } = await serve(async (sink) => {
      sink.head('bat_2', 'system.info');
      sink.results([result('a')]);
      await wasSent;
      throw new HiveError('INTERNAL_ERROR', 'store gone');
    });
    close = () => app.close();
    const res = await fetch(url, { method: 'POST' });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const first = await reader.read();
    text += new TextDecoder().decode(first.value);
    expect(text).toContain('"slug":"a"');
    sent();
    const rest = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += new TextDecoder().decode(value);
      }
    })();
    await expect(rest).rejects.toThrow();
    expect(text).not.toContain('"summary"');
  });
});
