import crypto, { createHash } from 'node:crypto';

/**
 * Batch signatures for fan-out (one Ed25519 signature per batch instead of one per target): the
 * hub signs the root of a Merkle tree over the invokes' signing payloads, and each invoke carries
 * the path from its own leaf to that root. A node recomputes its leaf from the invoke it got, so a
 * proof is good for exactly that invoke (target, correlation id, command, params, times).
 * Leaves and inner nodes are hashed with different prefixes (no second-preimage tricks).
 */
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

// One-shot hashing (crypto.hash, Node ≥ 20.12) is several times cheaper than a Hash object for
// inputs this small; a fan-out to 10,000 hashes ~20,000 of them.
const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;
const h = (...parts: Buffer[]): Buffer => {
  if (oneShot) return oneShot('sha256', parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts), 'buffer');
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
  // Levels bottom-up: pairs (0,1), (2,3)… are hashed together; an odd last node is carried up.
  const levels: Buffer[][] = [leaves];
  for (let level = leaves; level.length > 1; ) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as Buffer;
      const right = level[i + 1];
      next.push(right ? h(NODE, left, right) : left);
    }
    levels.push(next);
    level = next;
  }
  // A leaf's proof: its sibling at every level where it has one (node j's sibling is j ^ 1; an
  // even sibling sits on the left). Each step is made once, however many proofs it is in.
  const steps: (string | undefined)[][] = levels.map(() => []);
  const step = (k: number, s: number): string => {
    const row = steps[k] as (string | undefined)[];
    let v = row[s];
    if (v === undefined) {
      v = `${s % 2 === 0 ? 'L' : 'R'}${((levels[k] as Buffer[])[s] as Buffer).toString('base64url')}`;
      row[s] = v;
    }
    return v;
  };
  const proofs: MerkleStep[][] = leaves.map((_, i) => {
    const proof: MerkleStep[] = [];
    for (let k = 0, j = i; k < levels.length - 1; k++, j >>= 1) {
      const s = j ^ 1;
      if (s < (levels[k] as Buffer[]).length) proof.push(step(k, s));
    }
    return proof;
  });
  return { root: (levels[levels.length - 1] as Buffer[])[0] as Buffer, proofs };
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
