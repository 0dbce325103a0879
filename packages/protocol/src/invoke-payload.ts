/**
 * The bytes both ends of an invoke sign, without zod: a node checks every invoke against them
 * (packages/sdk imports this module by its path, see protocol-lite.ts there). invoke.ts
 * re-exports them with the schemas.
 */
import type { InvokeParams } from './invoke.js';

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
