import { z } from 'zod';
import { ERROR_CODE_LIST, RECOVERY_ACTIONS } from './errors.js';

/** Request ids are chosen by the sender; the peer echoes them in the response. */
export const FrameId = z.string().min(1).max(64);

export const WireErrorSchema = z.object({
  code: z.enum(ERROR_CODE_LIST as [string, ...string[]]),
  message: z.string().max(4096),
  details: z.record(z.string(), z.unknown()).optional(),
  hint: z.object({ action: z.enum(RECOVERY_ACTIONS), retryAfterMs: z.number().int().nonnegative().optional() }).optional(),
});

export const RequestFrame = z.object({
  type: z.literal('req'),
  id: FrameId,
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
});

export const ResponseFrame = z.discriminatedUnion('ok', [
  z.object({ type: z.literal('res'), id: FrameId, ok: z.literal(true), result: z.unknown().optional() }),
  z.object({ type: z.literal('res'), id: FrameId, ok: z.literal(false), error: WireErrorSchema }),
]);

export const EventFrame = z.object({
  type: z.literal('event'),
  event: z.string().min(1).max(128),
  payload: z.unknown().optional(),
  /** Per-connection, strictly increasing from 1, so a client can detect gaps. */
  seq: z.number().int().positive(),
});

export const Frame = z.union([RequestFrame, ResponseFrame, EventFrame]);

export type RequestFrame = z.infer<typeof RequestFrame>;
export type ResponseFrame = z.infer<typeof ResponseFrame>;
export type EventFrame = z.infer<typeof EventFrame>;
export type Frame = z.infer<typeof Frame>;

// ---------------------------------------------------------------- handshake

export const ROLES = ['node', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export const OPERATOR_SCOPES = ['operator.read', 'operator.write', 'operator.admin', 'operator.approvals', 'operator.pairing'] as const;
export type Scope = (typeof OPERATOR_SCOPES)[number];

/** First frame from the hub on every connection: an event carrying the nonce to sign. */
export const ChallengePayload = z.object({
  nonce: z.string().min(16).max(128),
  ts: z.number().int(),
  protocol: z.object({ min: z.number().int(), max: z.number().int() }),
});
export type ChallengePayload = z.infer<typeof ChallengePayload>;

const shortText = (max = 256) => z.string().trim().max(max);

export const ConnectParams = z.object({
  protocol: z.object({ min: z.number().int().min(0).max(1000), max: z.number().int().min(0).max(1000) }),
  role: z.enum(ROLES),
  scopes: z.array(z.enum(OPERATOR_SCOPES)).max(OPERATOR_SCOPES.length).default([]),
  client: z.object({
    name: shortText(64),
    version: shortText(64),
    platform: shortText(32).optional(),
    arch: shortText(32).optional(),
    hostname: shortText(255).optional(),
    /** Human name requested for the satellite (`--name`); the hub derives the slug from it. */
    displayName: shortText(128).optional(),
    osRelease: shortText(128).optional(),
  }),
  device: z
    .object({
      /** Raw 32-byte Ed25519 public key, base64url. */
      publicKey: z.string().min(40).max(64),
      /** Ed25519 signature over `connectSigningPayload(...)`, base64url. */
      signature: z.string().min(80).max(100),
      signedAt: z.number().int(),
    })
    .optional(),
  auth: z
    .object({
      token: z.string().min(8).max(512).optional(),
      apiKey: z.string().min(8).max(512).optional(),
      enrollToken: z.string().min(8).max(512).optional(),
    })
    .default({}),
  /** Tags requested at first pairing; ignored for already-known satellites. */
  tags: z.array(shortText(64).min(1)).max(32).optional(),
  caps: z.array(shortText(64)).max(128).default([]),
  /** Node commands this device claims to serve. */
  commands: z.array(shortText(128)).max(512).default([]),
  /**
   * The node's effective local policy (what it will accept whatever the hub asks), reported so
   * operators see it in one place. Informational: the node enforces it itself.
   */
  policy: z.record(z.string(), z.unknown()).optional(),
});
export type ConnectParams = z.infer<typeof ConnectParams>;
export type ConnectParamsInput = z.input<typeof ConnectParams>;

export const HelloResult = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  deviceId: z.string().nullable(),
  slug: z.string().nullable(),
  role: z.enum(ROLES),
  scopes: z.array(z.string()),
  heartbeatMs: z.number().int(),
  limits: z.record(z.string(), z.number()),
  /** Present when the hub issued a new device token (after pairing); store it, it is shown once. */
  token: z.string().optional(),
  hubId: z.string(),
  /** The hub's command-signing public key (Ed25519, raw, base64url). Nodes pin it at pairing. */
  hubKey: z.string().optional(),
});
export type HelloResult = z.infer<typeof HelloResult>;

export const PairingPendingPayload = z.object({
  requestId: z.string(),
  deviceId: z.string(),
  expiresAt: z.string(),
});

/**
 * Bytes the device signs in `connect`. Covers the nonce (no replay on another connection), the
 * device id, role, scopes and the signing time (stale signatures are refused).
 */
export function connectSigningPayload(p: { nonce: string; deviceId: string; role: Role; scopes: readonly string[]; signedAt: number }): string {
  return ['hive.connect.v1', p.nonce, p.deviceId, p.role, [...p.scopes].sort().join(','), String(p.signedAt)].join('\n');
}
