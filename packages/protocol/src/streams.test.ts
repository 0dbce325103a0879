import { describe, expect, it } from 'vitest';
import { decodeStreamFrame, encodeStreamFrame, STREAM_MAX_CHUNK, STREAM_WINDOW, StreamEndpoint } from './streams.js';

/** Two endpoints wired back to back; frames are delivered when `pump()` runs (like a socket). */
function pair(opts: { manualCredit?: boolean; window?: number; maxQueued?: number } = {}) {
  const toA: Uint8Array[] = [];
  const toB: Uint8Array[] = [];
  const gotB: Uint8Array[] = [];
  const closes: string[] = [];
  const a = new StreamEndpoint(
    { id: 2, opener: true, send: (f) => toB.push(f), coalesceMs: 0, ...(opts.maxQueued ? { maxQueued: opts.maxQueued } : {}) },
    { onClose: (i) => closes.push(`a:${i.reason}`) },
  );
  const b = new StreamEndpoint(
    { id: 2, opener: false, send: (f) => toA.push(f), ...(opts.manualCredit ? { manualCredit: true } : {}), ...(opts.window ? { window: opts.window } : {}) },
    { onData: (c) => gotB.push(c), onClose: (i) => closes.push(`b:${i.reason}`) },
  );
  const pump = async () => {
    for (let round = 0; round < 1000; round++) {
      await new Promise((r) => setTimeout(r, 1));
      if (toA.length === 0 && toB.length === 0) return;
      for (const f of toA.splice(0)) a.handleFrame(decodeStreamFrame(f) as NonNullable<ReturnType<typeof decodeStreamFrame>>);
      for (const f of toB.splice(0)) b.handleFrame(decodeStreamFrame(f) as NonNullable<ReturnType<typeof decodeStreamFrame>>);
    }
  };
  return { a, b, gotB, closes, pump, toB };
}

describe('binary stream frames', () => {
  it('encodes the fixed header and refuses malformed frames', () => {
    const f = encodeStreamFrame(0x01020304, 'data', new Uint8Array([9, 8]));
    expect([...f.subarray(0, 6)]).toEqual([1, 2, 3, 4, 0, 0]);
    expect(decodeStreamFrame(f)).toMatchObject({ id: 0x01020304, kind: 'data', flags: 0 });
    expect(decodeStreamFrame(new Uint8Array([0, 0, 0, 1]))).toBeNull(); // short
    expect(decodeStreamFrame(encodeStreamFrame(0, 'data'))).toBeNull(); // id 0
    expect(decodeStreamFrame(new Uint8Array([0, 0, 0, 1, 9, 0]))).toBeNull(); // unknown kind
    expect(decodeStreamFrame(encodeStreamFrame(1, 'credit', new Uint8Array(3)))).toBeNull();
    expect(decodeStreamFrame(encodeStreamFrame(1, 'data', new Uint8Array(STREAM_MAX_CHUNK + 1)))).toBeNull();
  });

  it('moves data in ≤ 64 KiB chunks within the granted credit and closes with a reason', async () => {
    const { a, gotB, closes, pump } = pair();
    const data = new Uint8Array(300_000).map((_, i) => i % 251);
    a.write(data);
    a.end('exit:0');
    await pump();
    expect(gotB.every((c) => c.length <= STREAM_MAX_CHUNK)).toBe(true);
    const joined = Buffer.concat(gotB);
    expect(joined.equals(Buffer.from(data))).toBe(true);
    expect(closes).toEqual(['a:exit:0', 'b:exit:0']);
  });

  it('a slow receiver holds the sender at its window; the sender queue reports backpressure', async () => {
    const { a, b, gotB, pump } = pair({ manualCredit: true });
    let accepted = true;
    for (let i = 0; i < 10; i++) accepted = a.write(new Uint8Array(STREAM_MAX_CHUNK));
    await pump();
    const received = gotB.reduce((n, c) => n + c.length, 0);
    expect(received).toBe(STREAM_WINDOW);
    expect(b.unconsumed).toBe(STREAM_WINDOW);
    expect(a.queued).toBe(10 * STREAM_MAX_CHUNK - STREAM_WINDOW);
    expect(accepted).toBe(false);
    // The receiver consumes: each grant lets one more window through.
    for (let i = 0; i < 5 && a.queued > 0; i++) {
      b.consumed(b.unconsumed);
      await pump();
    }
    expect(gotB.reduce((n, c) => n + c.length, 0)).toBe(10 * STREAM_MAX_CHUNK);
    expect(a.queued).toBe(0);
  });

  it('aborts a sender that exceeds its credit, and a local queue beyond its bound', async () => {
    const { b, closes } = pair();
    b.handleFrame({ id: 2, kind: 'data', flags: 0, payload: new Uint8Array(STREAM_WINDOW + 1) });
    expect(closes).toContain('b:credit exceeded');
    const q = pair({ maxQueued: 1000 });
    q.a.write(new Uint8Array(2000));
    expect(q.a.isClosed).toBe(true);
    expect(q.closes).toContain('a:send queue bound exceeded');
  });

  it('the opener sends nothing before the acceptor spoke', async () => {
    const { a, toB } = pair();
    // Only the acceptor's initial grant was produced; the opener waits for it.
    a.write(new Uint8Array([1, 2, 3]));
    await new Promise((r) => setTimeout(r, 5));
    expect(toB).toHaveLength(0);
  });
});
