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

/** JSON with object keys sorted at every level, so both sides sign the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** What the hub signs for a batch: the Merkle root over the batch's invoke payloads (base64url). */
export function invokeRootPayload(rootB64u: string): string {
  return `hive.invoke.root.v1\n${rootB64u}`;
}

/**
 * Bytes the hub signs for every invoke; the node verifies them against the key pinned at pairing.
 * `params`: `canonicalJson(p.params)` when the caller has it already (a fan-out's invokes share it).
 */
export function invokeSigningPayload(p: Omit<InvokeParams, 'sig' | 'proof'>, params: string = canonicalJson(p.params)): string {
  return `hive.invoke.v1\n${p.target ?? ''}\n${p.correlationId}\n${p.command}\n${p.issuedAt}\n${p.deadline}\n${params}`;
}
