import * as protocol from '@hive/protocol';
import { describe, expect, it } from 'vitest';
import * as lite from './protocol-lite.js';

/** Values each field is set to in turn: every JSON type, the schemas' bounds, and a few JSON cannot carry. */
const VALUES: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  -0,
  1,
  -1,
  1.5,
  2 ** 53,
  -(2 ** 53),
  1e300,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  '',
  'a',
  'x'.repeat(15),
  'x'.repeat(16),
  'x'.repeat(64),
  'x'.repeat(65),
  'x'.repeat(128),
  'x'.repeat(129),
  'x'.repeat(4096),
  'x'.repeat(4097),
  'req',
  'res',
  'event',
  'hello',
  'node',
  'operator',
  'AUTH_INVALID',
  'NOT_A_CODE',
  'retry',
  'abort',
  [],
  ['a'],
  [1],
  {},
  { a: 1 },
  { a: 'x' },
  { a: null },
];

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The base object, then variants: each field (nested ones too) removed, set to each of VALUES, and an unknown key added at each level. */
function variants(base: Record<string, unknown>): unknown[] {
  const out: unknown[] = [base, null, [], 'frame', 1, [base]];
  const walk = (obj: Record<string, unknown>, rebuild: (o: Record<string, unknown>) => Record<string, unknown>) => {
    out.push(rebuild({ ...obj, extra: 1 }));
    for (const key of Object.keys(obj)) {
      const { [key]: _, ...rest } = obj;
      out.push(rebuild(rest));
      for (const v of VALUES) out.push(rebuild({ ...obj, [key]: v }));
      const inner = obj[key];
      if (isPlain(inner)) walk(inner, (o) => rebuild({ ...obj, [key]: o }));
    }
  };
  walk(base, (o) => o);
  return out;
}

/** Same result as the schema: undefined where it fails, else its output, key order included. */
function expectSameAsSchema(schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }, mine: (v: unknown) => unknown, inputs: unknown[]) {
  let accepted = 0;
  for (const input of inputs) {
    const z = schema.safeParse(input);
    let got: unknown;
    try {
      got = mine(input);
    } catch {
      got = undefined;
    }
    if (!z.success) {
      expect({ input, got }).toEqual({ input, got: undefined });
      continue;
    }
    accepted++;
    expect({ input, got }).toStrictEqual({ input, got: z.data });
    expect(Object.keys(got as object)).toEqual(Object.keys(z.data as object));
  }
  return accepted;
}

describe('protocol-lite (zod-free start path)', () => {
  it('re-exports the very modules @hive/protocol exports', () => {
    expect(lite.HiveError).toBe(protocol.HiveError);
    expect(lite.CLOSE_CODES).toBe(protocol.CLOSE_CODES);
    expect(lite.closeNameFor).toBe(protocol.closeNameFor);
    expect(lite.StreamEndpoint).toBe(protocol.StreamEndpoint);
    expect(lite.decodeStreamFrame).toBe(protocol.decodeStreamFrame);
    expect(lite.STREAM_MAX_PER_CONNECTION).toBe(protocol.STREAM_MAX_PER_CONNECTION);
    expect([lite.PROTOCOL_MIN, lite.PROTOCOL_MAX]).toEqual([protocol.PROTOCOL_MIN, protocol.PROTOCOL_MAX]);
  });

  it('connectSigningPayload signs the same bytes as the protocol', () => {
    for (const p of [
      { nonce: 'n'.repeat(32), deviceId: 'dev', role: 'node' as const, scopes: [], signedAt: 1 },
      {
        nonce: 'abc\ndef',
        deviceId: '',
        role: 'operator' as const,
        scopes: ['operator.write', 'operator.admin', 'operator.read'],
        signedAt: 1_700_000_000_000,
      },
    ]) {
      expect(lite.connectSigningPayload(p)).toBe(protocol.connectSigningPayload(p));
    }
  });

  it('parseFrame accepts and outputs exactly what Frame.parse does', () => {
    const bases: Record<string, unknown>[] = [
      { type: 'req', id: 'h1', method: 'invoke', params: { a: [1, { b: 2 }] } },
      { type: 'req', id: 'h1', method: 'node.ping' },
      { type: 'res', id: 'c1', ok: true, result: { x: 1 } },
      { type: 'res', id: 'c1', ok: true },
      {
        type: 'res',
        id: 'c2',
        ok: false,
        error: { code: 'RATE_LIMITED', message: 'slow down', details: { n: 1, nested: { a: [1] } }, hint: { action: 'retry', retryAfterMs: 250 } },
      },
      { type: 'res', id: 'c2', ok: false, error: { code: 'AUTH_INVALID', message: '' } },
      { type: 'event', event: 'connect.challenge', payload: { nonce: 'n'.repeat(32), ts: 1, protocol: { min: 1, max: 1 } }, seq: 1 },
      { type: 'event', event: 'satellite:online', seq: 9_007_199_254_740_991 },
    ];
    let accepted = 0;
    for (const base of bases) accepted += expectSameAsSchema(protocol.Frame, lite.parseFrame, variants(base));
    expect(accepted).toBeGreaterThan(100);
    // Keys the schema strips, and the __proto__ key a JSON text can carry.
    const json = JSON.parse('{"type":"res","id":"c","ok":false,"error":{"code":"CONFLICT","message":"m","details":{"__proto__":{"x":1},"k":2}}}');
    expectSameAsSchema(protocol.Frame, lite.parseFrame, [json]);
    const details = (lite.parseFrame(json) as { error: { details: object } }).error.details;
    expect(Object.getPrototypeOf(details)).toBe(Object.prototype);
    expect('x' in details).toBe(false);
  });

  it('isChallenge accepts what ChallengePayload does', () => {
    for (const input of variants({ nonce: 'n'.repeat(16), ts: 1_700_000_000_000, protocol: { min: 1, max: 1 } })) {
      expect({ input, ok: lite.isChallenge(input) }).toEqual({ input, ok: protocol.ChallengePayload.safeParse(input).success });
    }
  });

  it('parseHello accepts and outputs exactly what HelloResult.parse does', () => {
    const full = {
      type: 'hello',
      protocol: 1,
      deviceId: 'dev_1',
      slug: 'web-1',
      role: 'node',
      scopes: ['a', 'b'],
      heartbeatMs: 30_000,
      limits: { maxFrameBytes: 1_048_576, messagesPerSecond: 200.5 },
      token: 'hdt_x',
      hubId: 'hub',
      hubKey: 'key',
    };
    const minimal = { type: 'hello', protocol: 1, deviceId: null, slug: null, role: 'operator', scopes: [], heartbeatMs: 1, limits: {}, hubId: 'h' };
    const accepted = expectSameAsSchema(protocol.HelloResult, lite.parseHello, [...variants(full), ...variants(minimal)]);
    expect(accepted).toBeGreaterThan(20);
  });
});
