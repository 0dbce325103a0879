/**
 * The parts of @hive/protocol a client needs to connect and stay connected, without zod.
 *
 * `@hive/protocol`'s entry point evaluates zod and every schema of the catalog (~5 MB of heap in
 * an idle agent, which the SPEC wants under 50 MB RSS). A client needs none of that until the hub
 * sends it a request to validate, and not even then: the envelope of each frame, the challenge,
 * the hello and the invokes are checked here by hand, with exactly the rules of the protocol's
 * schemas (`Frame`, `ChallengePayload`, `HelloResult`, `InvokeParams`, `InvokeCancelParams`;
 * protocol-lite.test.ts compares both on a corpus of valid and invalid inputs), and the zod-free
 * protocol modules are imported by file. Besides memory, a zod parse of each invoke was ~3% of a
 * node's CPU per invoke. The hub validates everything it receives with the schemas themselves.
 *
 * The protocol package exports only its entry point, so its zod-free modules are reached by
 * their path in the workspace (packages/protocol/dist); they are the same module instances the
 * entry point re-exports (one HiveError class).
 */
import type { EventFrame, Frame, HelloResult, InvokeParams, RequestFrame, ResponseFrame, Role, WireError } from '@hive/protocol';
import { ERROR_CODE_LIST, RECOVERY_ACTIONS } from '../../protocol/dist/errors.js';

export { CLOSE_CODES, closeNameFor } from '../../protocol/dist/close-codes.js';
export { HiveError } from '../../protocol/dist/errors.js';
export { canonicalJson, invokeRootPayload, invokeSigningPayload } from '../../protocol/dist/invoke-payload.js';
export { decodeStreamFrame, STREAM_MAX_PER_CONNECTION, StreamEndpoint } from '../../protocol/dist/streams.js';
export { PROTOCOL_MAX, PROTOCOL_MIN } from '../../protocol/dist/version.js';

/** Same bytes as the protocol's `connectSigningPayload` (frames.ts, which loads zod); a test keeps them equal. */
export function connectSigningPayload(p: { nonce: string; deviceId: string; role: Role; scopes: readonly string[]; signedAt: number }): string {
  return ['hive.connect.v1', p.nonce, p.deviceId, p.role, [...p.scopes].sort().join(','), String(p.signedAt)].join('\n');
}

type Obj = Record<string, unknown>;

/** z.object / z.record input: a non-null, non-array object. */
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Code points of `s` as zod counts them: a surrogate pair is one, a lone surrogate one. */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n--;
      i++;
    }
  }
  return n;
}

/**
 * z.string().min(min).max(max). zod (4.6) measures strings in code points, not UTF-16 units; a
 * code point is one or two units, so they are counted only when the units leave it open.
 */
function isString(v: unknown, min = 0, max = Number.POSITIVE_INFINITY): v is string {
  if (typeof v !== 'string') return false;
  const units = v.length;
  if (units < min) return false;
  if (units <= max && units >= 2 * min) return true;
  const n = codePoints(v);
  return n >= min && n <= max;
}
/** z.number(): finite. */
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** z.number().int(): a safe integer. */
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/**
 * z.record(z.string(), value): a copy of the own enumerable string keys (zod skips `__proto__`),
 * or undefined when a value fails `check`. JSON.parse output has no symbol keys.
 */
function record<T>(input: Obj, check: (v: unknown) => v is T): Record<string, T> | undefined {
  const out: Record<string, T> = {};
  for (const key of Object.keys(input)) {
    if (key === '__proto__') continue;
    const v = input[key];
    if (!check(v)) return undefined;
    out[key] = v;
  }
  return out;
}

const anything = (_v: unknown): _v is unknown => true;
const ERROR_CODES = new Set<string>(ERROR_CODE_LIST);
const ACTIONS = new Set<string>(RECOVERY_ACTIONS);

/** WireErrorSchema */
function wireError(e: unknown): WireError | undefined {
  if (!isObject(e) || !ERROR_CODES.has(e.code as string) || !isString(e.message, 0, 4096)) return undefined;
  const out: Obj = { code: e.code, message: e.message };
  if ('details' in e) {
    if (e.details !== undefined && !isObject(e.details)) return undefined;
    out.details = e.details === undefined ? undefined : record(e.details, anything);
  }
  if ('hint' in e) {
    const h = e.hint;
    if (h === undefined) out.hint = undefined;
    else {
      if (!isObject(h) || !ACTIONS.has(h.action as string)) return undefined;
      const hint: Obj = { action: h.action };
      if ('retryAfterMs' in h) {
        if (h.retryAfterMs !== undefined && (!isInt(h.retryAfterMs) || h.retryAfterMs < 0)) return undefined;
        hint.retryAfterMs = h.retryAfterMs;
      }
      out.hint = hint;
    }
  }
  return out as unknown as WireError;
}

/** RequestFrame: type, id (1–64), method (1–128), params? */
function requestFrame(f: Obj): RequestFrame | undefined {
  if (!isString(f.id, 1, 64) || !isString(f.method, 1, 128)) return undefined;
  const out: Obj = { type: 'req', id: f.id, method: f.method };
  if ('params' in f) out.params = f.params;
  return out as RequestFrame;
}

/** ResponseFrame: discriminated on `ok`; `result?` when true, `error` (WireErrorSchema) when false. */
function responseFrame(f: Obj): ResponseFrame | undefined {
  if (f.ok === true) {
    if (!isString(f.id, 1, 64)) return undefined;
    const out: Obj = { type: 'res', id: f.id, ok: true };
    if ('result' in f) out.result = f.result;
    return out as ResponseFrame;
  }
  if (f.ok === false) {
    if (!isString(f.id, 1, 64)) return undefined;
    const error = wireError(f.error);
    return error ? ({ type: 'res', id: f.id, ok: false, error } as ResponseFrame) : undefined;
  }
  return undefined;
}

/** EventFrame: event (1–128), payload?, seq (positive integer). */
function eventFrame(f: Obj): EventFrame | undefined {
  if (!isString(f.event, 1, 128) || !isInt(f.seq) || f.seq <= 0) return undefined;
  const out: Obj = { type: 'event', event: f.event };
  if ('payload' in f) out.payload = f.payload;
  out.seq = f.seq;
  return out as EventFrame;
}

/**
 * `Frame.parse` without zod: the frame with only its known keys (as zod strips the rest), or
 * undefined where the schema throws.
 */
export function parseFrame(input: unknown): Frame | undefined {
  if (!isObject(input)) return undefined;
  if (input.type === 'req') return requestFrame(input);
  if (input.type === 'res') return responseFrame(input);
  if (input.type === 'event') return eventFrame(input);
  return undefined;
}

/** `ChallengePayload.safeParse(p).success`: nonce (16–128), ts (integer), protocol {min, max} (integers). */
export function isChallenge(p: unknown): p is { nonce: string; ts: number; protocol: { min: number; max: number } } {
  return isObject(p) && isString(p.nonce, 16, 128) && isInt(p.ts) && isObject(p.protocol) && isInt(p.protocol.min) && isInt(p.protocol.max);
}

const ROLE_SET = new Set(['node', 'operator']);

/** `HelloResult.parse` without zod: the result with only its known keys; throws where the schema throws. */
export function parseHello(h: unknown): HelloResult {
  const bad = (field: string) => new Error(`Invalid hello from the hub: ${field}`);
  if (!isObject(h)) throw bad('not an object');
  if (h.type !== 'hello') throw bad('type');
  if (!isInt(h.protocol)) throw bad('protocol');
  if (h.deviceId !== null && typeof h.deviceId !== 'string') throw bad('deviceId');
  if (h.slug !== null && typeof h.slug !== 'string') throw bad('slug');
  if (!ROLE_SET.has(h.role as string)) throw bad('role');
  if (!Array.isArray(h.scopes)) throw bad('scopes');
  for (let i = 0; i < h.scopes.length; i++) if (typeof h.scopes[i] !== 'string') throw bad('scopes');
  if (!isInt(h.heartbeatMs)) throw bad('heartbeatMs');
  const limits = isObject(h.limits) ? record(h.limits, isNumber) : undefined;
  if (!limits) throw bad('limits');
  if ('token' in h && h.token !== undefined && typeof h.token !== 'string') throw bad('token');
  if (typeof h.hubId !== 'string') throw bad('hubId');
  if ('hubKey' in h && h.hubKey !== undefined && typeof h.hubKey !== 'string') throw bad('hubKey');
  const out: Obj = {
    type: 'hello',
    protocol: h.protocol,
    deviceId: h.deviceId,
    slug: h.slug,
    role: h.role,
    scopes: [...h.scopes],
    heartbeatMs: h.heartbeatMs,
    limits,
  };
  if ('token' in h) out.token = h.token;
  out.hubId = h.hubId;
  if ('hubKey' in h) out.hubKey = h.hubKey;
  return out as HelloResult;
}

/** The base64url alphabet ([A-Za-z0-9_-]) by char code. */
const B64U = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-') B64U[c.charCodeAt(0)] = 1;

/** The schema's proof step pattern, /^[LR][A-Za-z0-9_-]{43}$/, by hand: cheaper than the regex, run once per step (14 in a fan-out to 10,000). */
function isProofStep(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 44) return false;
  const side = s.charCodeAt(0);
  if (side !== 76 && side !== 82) return false; // L, R
  for (let i = 1; i < 44; i++) if (B64U[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** z.string().min(min).max(max).optional() of a present key: undefined is fine. */
const isOptString = (v: unknown, min: number, max: number): boolean => v === undefined || isString(v, min, max);

/**
 * `InvokeParams.safeParse` without zod: the invoke with only its known keys, in the schema's
 * order, or undefined where the schema fails. Keys are read as zod reads them (`in`, then the
 * value): `params` (z.unknown()) must be present, optional keys are kept when present, even as
 * undefined.
 */
export function parseInvoke(p: unknown): InvokeParams | undefined {
  if (!isObject(p)) return undefined;
  const { command, correlationId, target, issuedAt, deadline, sig, proof } = p;
  if (!isString(command, 1, 128) || !('params' in p) || !isString(correlationId, 1, 64) || !isOptString(target, 1, 128)) return undefined;
  if (!isInt(issuedAt) || !isInt(deadline) || !isOptString(sig, 80, 100)) return undefined;
  if (proof !== undefined) {
    if (!Array.isArray(proof) || proof.length > 40) return undefined;
    for (let i = 0; i < proof.length; i++) if (!isProofStep(proof[i])) return undefined;
  }
  const out: Obj = { command, params: p.params, correlationId };
  if ('target' in p) out.target = target;
  out.issuedAt = issuedAt;
  out.deadline = deadline;
  if ('sig' in p) out.sig = sig;
  if ('proof' in p) out.proof = proof === undefined ? undefined : (proof as string[]).slice(); // a copy, as zod's
  return out as InvokeParams;
}

/** `InvokeCancelParams.safeParse` without zod: correlationId (1–64), reason? (≤ 256). */
export function parseInvokeCancel(p: unknown): { correlationId: string; reason?: string | undefined } | undefined {
  if (!isObject(p) || !isString(p.correlationId, 1, 64) || !isOptString(p.reason, 0, 256)) return undefined;
  return 'reason' in p ? { correlationId: p.correlationId, reason: p.reason as string | undefined } : { correlationId: p.correlationId };
}
