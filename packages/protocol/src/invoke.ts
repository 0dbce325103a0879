import { z } from 'zod';

/** Params of the hub → node `invoke` request. */
export const InvokeParams = z.object({
  command: z.string().min(1).max(128),
  params: z.unknown(),
  correlationId: z.string().min(1).max(64),
  /** deviceId of the node the hub addressed; a signature for another node does not verify. */
  target: z.string().min(1).max(128).optional(),
  /** ms since epoch when the hub issued the command. */
  issuedAt: z.number().int(),
  /** ms since epoch after which the node must not start (or must stop) the command. */
  deadline: z.number().int(),
  /** Hub's Ed25519 signature over `invokeSigningPayload(...)` — or, with `proof`, over `invokeRootPayload(root)` — base64url. */
  sig: z.string().min(80).max(100).optional(),
  /**
   * Batch-signed fan-out: the path from this invoke's leaf to the signed Merkle root, each step
   * `L`/`R` + the sibling hash (base64url SHA-256). See docs/protocol.md §7.
   */
  proof: z
    .array(z.string().regex(/^[LR][A-Za-z0-9_-]{43}$/))
    .max(40)
    .optional(),
});
export type InvokeParams = z.infer<typeof InvokeParams>;

/** Hub → node: stop a running invoke (by correlation id). */
export const InvokeCancelParams = z.object({ correlationId: z.string().min(1).max(64), reason: z.string().max(256).optional() });

// Zod-free: a node checks invokes without loading zod (invoke-payload.ts).
export { canonicalJson, invokeRootPayload, invokeSigningPayload } from './invoke-payload.js';
