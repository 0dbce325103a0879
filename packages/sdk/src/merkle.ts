import { createHash } from 'node:crypto';

/**
 * Batch signatures for fan-out (one Ed25519 signature per batch instead of one per target): the
 * hub signs the root of a Merkle tree over the invokes' signing payloads, and each invoke carries
 * the path from its own leaf to that root. A node recomputes its leaf from the invoke it got, so a
 * proof is good for exactly that invoke (target, correlation id, command, params, times).
 * Leaves and inner nodes are hashed with different prefixes (no second-preimage tricks).
 */
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

const h = (...parts: Buffer[]): Buffer => {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest();
};

export const merkleLeaf = (signingPayload: string): Buffer => h(LEAF, Buffer.from(signingPayload));

/** One proof step: `L` + sibling when the sibling is on the left, `R` + sibling when on the right (base64url). */
export type MerkleStep = string;

/** Root and per-leaf proofs of a tree over `leaves` (an odd node is carried up unchanged). */
export function merkleTree(leaves: Buffer[]): { root: Buffer; proofs: MerkleStep[][] } {
  if (leaves.length === 0) throw new Error('merkleTree needs at least one leaf');
  const proofs: MerkleStep[][] = leaves.map(() => []);
  // Which leaves sit under each node of the current level.
  let level = leaves.map((hash, i) => ({ hash, under: [i] }));
  while (level.length > 1) {
    const next: typeof level = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as (typeof level)[number];
      const right = level[i + 1];
      if (!right) {
        next.push(left);
        continue;
      }
      for (const leaf of left.under) proofs[leaf]?.push(`R${right.hash.toString('base64url')}`);
      for (const leaf of right.under) proofs[leaf]?.push(`L${left.hash.toString('base64url')}`);
      next.push({ hash: h(NODE, left.hash, right.hash), under: [...left.under, ...right.under] });
    }
    level = next;
  }
  return { root: (level[0] as (typeof level)[number]).hash, proofs };
}

/** The root a leaf and its proof lead to; null when a step is malformed. */
export function merkleRootOf(leaf: Buffer, proof: readonly MerkleStep[]): Buffer | null {
  let acc = leaf;
  for (const step of proof) {
    const side = step[0];
    const sibling = Buffer.from(step.slice(1), 'base64url');
    if (sibling.length !== 32 || (side !== 'L' && side !== 'R')) return null;
    acc = side === 'L' ? h(NODE, sibling, acc) : h(NODE, acc, sibling);
  }
  return acc;
}
