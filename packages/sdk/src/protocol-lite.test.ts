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
  // zod counts string lengths in code points: a surrogate pair is one, a lone surrogate one.
  '😀'.repeat(8),
  '😀'.repeat(15),
  '😀'.repeat(16),
  '😀'.repeat(64),
  '😀'.repeat(65),
  '😀'.repeat(128),
  '😀'.repeat(129),
  `${'😀'.repeat(63)}\ud800`,
  `${'😀'.repeat(63)}x\ud800`,
  '\ud800'.repeat(64),
  '\ud800'.repeat(65),
  '\udc00\ud800'.repeat(32),
  `a${'😀'.repeat(8)}`,
  '😀'.repeat(2048),
  '😀'.repeat(2049),
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

/** The base object, then variants: each field (nested ones too) removed, set to each of `values`, and an unknown key added at each level. */
function variants(base: Record<string, unknown>, values: unknown[] = VALUES): unknown[] {
  const out: unknown[] = [base, null, [], 'frame', 1, [base]];
  const walk = (obj: Record<string, unknown>, rebuild: (o: Record<string, unknown>) => Record<string, unknown>) => {
    out.push(rebuild({ ...obj, extra: 1 }));
    for (const key of Object.keys(obj)) {
      const { [key]: _, ...rest } = obj;
      out.push(rebuild(rest));
      for (const v of values) out.push(rebuild({ ...obj, [key]: v }));
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
    expect(lite.canonicalJson).toBe(protocol.canonicalJson);
    expect(lite.invokeSigningPayload).toBe(protocol.invokeSigningPayload);
    expect(lite.invokeRootPayload).toBe(protocol.invokeRootPayload);
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

/** A proof step the schema accepts: side + 43 base64url characters. */
const STEP = `L${'Ab9_-'.repeat(8)}xyz`;
/** Steps one rule away from STEP. */
const BAD_STEPS = [
  '',
  'L',
  STEP.slice(0, 43),
  `${STEP}A`,
  `R${STEP.slice(1, 43)}=`,
  `l${STEP.slice(1)}`,
  `X${STEP.slice(1)}`,
  `${STEP.slice(0, 20)}+${STEP.slice(21)}`,
  `${STEP.slice(0, 20)}/${STEP.slice(21)}`,
  `${STEP.slice(0, 20)}.${STEP.slice(21)}`,
  `${STEP.slice(0, 20)} ${STEP.slice(21)}`,
  `${STEP.slice(0, 20)}é${STEP.slice(21)}`,
  `${STEP.slice(0, 20)}\u0130${STEP.slice(21)}`,
  `${STEP.slice(0, 20)}😀${STEP.slice(22)}`,
  `${STEP}\n`,
  `\n${STEP.slice(1)}`,
  `LL${STEP.slice(1)}`,
];

/** Values for the invoke's fields on top of VALUES: its bounds (in UTF-16 units) and proofs. */
const INVOKE_VALUES: unknown[] = [
  ...VALUES,
  2 ** 53 - 1,
  -(2 ** 53 - 1),
  1_700_000_000_000,
  'x'.repeat(79),
  'x'.repeat(80),
  'x'.repeat(100),
  'x'.repeat(101),
  'x'.repeat(256),
  'x'.repeat(257),
  '😀'.repeat(32),
  '😀'.repeat(33),
  '😀'.repeat(64),
  '😀'.repeat(65),
  '😀'.repeat(40),
  '😀'.repeat(50),
  '😀'.repeat(51),
  'é'.repeat(128),
  STEP,
  [STEP],
  ['R'.padEnd(44, 'q'), STEP],
  Array(40).fill(STEP),
  Array(41).fill(STEP),
  // biome-ignore lint/suspicious/noSparseArray: a hole is not a step
  [STEP, , STEP],
  new Array(1),
  [STEP, undefined],
  [STEP, null],
  [STEP, 1],
  [[STEP]],
  ...BAD_STEPS.map((bad) => [STEP, bad]),
  Object.assign([STEP], { extra: 1 }),
];

describe('protocol-lite invokes (zod-free invoke path)', () => {
  const sig = 's'.repeat(86);
  const full = {
    command: 'system.info',
    params: { a: [1, { b: 2 }] },
    correlationId: 'c-1',
    target: 'dev_1',
    issuedAt: 1_700_000_000_000,
    deadline: 1_700_000_030_000,
    sig,
    proof: [STEP, `R${STEP.slice(1)}`],
  };
  const minimal = { command: 'c', params: undefined, correlationId: 'x', issuedAt: 0, deadline: -1 };

  it('parseInvoke accepts and outputs exactly what InvokeParams.safeParse does', () => {
    const inputs: unknown[] = [
      ...variants(full, INVOKE_VALUES),
      ...variants(minimal, INVOKE_VALUES),
      ...variants({ ...full, target: undefined, sig: undefined, proof: undefined }, INVOKE_VALUES),
      // Every bad step at every position of a longest proof.
      ...BAD_STEPS.flatMap((bad) => [0, 20, 39].map((k) => ({ ...full, proof: Array(40).fill(STEP).with(k, bad) }))),
      // Keys in another order, a key set to undefined, params of every kind.
      { proof: [], sig, deadline: 2, issuedAt: 1, target: 't', correlationId: 'c', params: null, command: 'c' },
      ...INVOKE_VALUES.map((params) => ({ ...minimal, params })),
      // Keys as zod reads them: `in` (inherited ones too), then the value.
      Object.assign(Object.create({ params: 1 }), { command: 'c', correlationId: 'x', issuedAt: 1, deadline: 2 }),
      Object.assign(Object.create({ command: 'inherited' }), { params: 1, correlationId: 'x', issuedAt: 1, deadline: 2 }),
      Object.assign(Object.create({ sig: 1 }), minimal),
      // What a JSON text can carry: __proto__ as an own key, escapes, lone surrogates.
      JSON.parse(`{"__proto__":{"command":"c"},"params":{"__proto__":{"x":1}},"correlationId":"x","issuedAt":1,"deadline":2,"command":"c"}`),
      JSON.parse(`{"command":"\\ud800","params":[],"correlationId":"\\udfff","issuedAt":1e3,"deadline":-0,"target":"\\u0000"}`),
      JSON.parse(`{"command":"c","params":1,"correlationId":"x","issuedAt":1.0,"deadline":1e21}`),
    ];
    const accepted = expectSameAsSchema(protocol.InvokeParams, lite.parseInvoke, inputs);
    expect(accepted).toBeGreaterThan(300);
    expect(inputs.length - accepted).toBeGreaterThan(300);
    // Same -0 and the same params object, as zod passes them through; the proof is a copy.
    const out = lite.parseInvoke({ ...minimal, issuedAt: -0, params: full.params, proof: full.proof }) as protocol.InvokeParams;
    expect(Object.is(out.issuedAt, -0)).toBe(true);
    expect(out.params).toBe(full.params);
    expect(out.proof).not.toBe(full.proof);
  });

  it('parseInvokeCancel accepts and outputs exactly what InvokeCancelParams.safeParse does', () => {
    const values = [...VALUES, 'x'.repeat(256), 'x'.repeat(257), '😀'.repeat(128), '😀'.repeat(129), '😀'.repeat(32), '😀'.repeat(33)];
    const inputs = [
      ...variants({ correlationId: 'c-1', reason: 'operator cancelled' }, values),
      ...variants({ correlationId: 'c-1' }, values),
      ...variants({ correlationId: 'c-1', reason: undefined }, values),
    ];
    const accepted = expectSameAsSchema(protocol.InvokeCancelParams, lite.parseInvokeCancel, inputs);
    expect(accepted).toBeGreaterThan(50);
  });

  it('an invoke the hub signs carries the bytes the node checks', () => {
    const { sig: _, proof: __, ...unsigned } = full;
    const parsed = lite.parseInvoke(JSON.parse(JSON.stringify(full))) as protocol.InvokeParams;
    expect(lite.invokeSigningPayload(parsed)).toBe(protocol.invokeSigningPayload(unsigned));
  });
});
