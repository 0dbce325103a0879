import crypto, { createHash } from 'node:crypto';

/**
 * Batch signatures for fan-out (one Ed25519 signature per batch instead of one per target): the
 * hub signs the root of a Merkle tree over the invokes' signing payloads, and each invoke carries
 * the path from its own leaf to that root. A node recomputes its leaf from the invoke it got, so a
 * proof is good for exactly that invoke (target, correlation id, command, params, times).
 * Leaves and inner nodes are hashed with different prefixes (no second-preimage tricks): a leaf is
 * SHA-256(0x00 || UTF-8 payload), an inner node SHA-256(0x01 || left || right).
 */

// One-shot hashing (crypto.hash, Node ≥ 20.12) is several times cheaper than a Hash object for
// inputs this small; a fan-out to 10,000 hashes ~20,000 of them, and each node ~15 for its proof.
// Its 'buffer' output costs about twice its 'latin1' one (a 32-char string, one byte per char),
// so hashes travel as latin1 strings and are written back into a buffer where bytes are needed.
type Digest = 'latin1' | 'base64url';
const oneShot = (crypto as { hash?: (alg: string, data: Buffer | string, enc: Digest) => string }).hash;
function digest(data: Buffer | string, enc: Digest): string {
  if (oneShot) return oneShot('sha256', data, enc);
  return createHash('sha256')
    .update(data)
    .digest(enc === 'latin1' ? 'binary' : enc); // 'binary' is latin1
}

/**
 * A leaf hashes `\0` + payload as one string: the bytes of 0x00 || Buffer.from(payload) (strings
 * hash as UTF-8, and a NUL never pairs with a surrogate), without two Buffers and a concat.
 */
const leafDigest = (signingPayload: string, enc: Digest): string => digest(`\0${signingPayload}`, enc);

export const merkleLeaf = (signingPayload: string): Buffer => Buffer.from(leafDigest(signingPayload, 'latin1'), 'latin1');

/** One proof step: `L` + sibling when the sibling is on the left, `R` + sibling when on the right (base64url). */
export type MerkleStep = string;

/** 0x01 || left || right of the inner node being hashed (synchronous use only, never escapes). */
const scratch = Buffer.alloc(65);
scratch[0] = 1;

/** Root and per-leaf proofs of a tree over `leaves` (merkleLeaf hashes; an odd node is carried up unchanged). */
export function merkleTree(leaves: Buffer[]): { root: Buffer; proofs: MerkleStep[][] } {
  if (leaves.length === 0) throw new Error('merkleTree needs at least one leaf');
  for (const leaf of leaves) if (leaf.length !== 32) throw new Error('merkleTree leaves are 32-byte hashes (merkleLeaf)');
  if (leaves.length === 1) return { root: leaves[0] as Buffer, proofs: [[]] };
  // Levels bottom-up: pairs (0,1), (2,3)… are hashed together; an odd last node is carried up.
  // Above the leaves, a level is one buffer of 32-byte nodes (a pair is 64 contiguous bytes).
  const levels: Buffer[] = [];
  let count = leaves.length;
  let below: Buffer | undefined;
  while (count > 1) {
    const up = Math.ceil(count / 2);
    const level = Buffer.allocUnsafe(up * 32);
    for (let j = 0; j < up; j++) {
      const i = 2 * j;
      if (i + 1 < count) {
        if (below) below.copy(scratch, 1, i * 32, i * 32 + 64);
        else {
          scratch.set(leaves[i] as Buffer, 1);
          scratch.set(leaves[i + 1] as Buffer, 33);
        }
        level.write(digest(scratch, 'latin1'), j * 32, 32, 'latin1');
      } else if (below) below.copy(level, j * 32, i * 32, i * 32 + 32);
      else level.set(leaves[i] as Buffer, j * 32);
    }
    levels.push(level);
    below = level;
    count = up;
  }
  const node = (k: number, s: number): string =>
    k === 0 ? (leaves[s] as Buffer).toString('base64url') : (levels[k - 1] as Buffer).toString('base64url', s * 32, s * 32 + 32);
  // A leaf's proof: its sibling at every level where it has one (node j's sibling is j ^ 1; an
  // even sibling sits on the left). Each step is made once, however many proofs it is in.
  const sizes = [leaves.length, ...levels.map((l) => l.length / 32)];
  const steps: (string | undefined)[][] = sizes.map(() => []);
  const step = (k: number, s: number): string => {
    const row = steps[k] as (string | undefined)[];
    let v = row[s];
    if (v === undefined) {
      v = `${s % 2 === 0 ? 'L' : 'R'}${node(k, s)}`;
      row[s] = v;
    }
    return v;
  };
  const proofs: MerkleStep[][] = leaves.map((_, i) => {
    const proof: MerkleStep[] = [];
    for (let k = 0, j = i; k < sizes.length - 1; k++, j >>= 1) {
      const s = j ^ 1;
      if (s < (sizes[k] as number)) proof.push(step(k, s));
    }
    return proof;
  });
  return { root: levels[levels.length - 1] as Buffer, proofs };
}

/**
 * Puts a step's sibling into the scratch at `at` (1 or 33); false when the step is malformed
 * (not 32 bytes once decoded, as Buffer.from(…, 'base64url') decodes it).
 */
function putSibling(step: MerkleStep, at: number): boolean {
  const b64 = step.slice(1);
  // 43 characters decode to at most 32 bytes: straight into place, 32 written only if all are valid.
  if (b64.length === 43) return scratch.write(b64, at, 32, 'base64url') === 32;
  const sibling = Buffer.from(b64, 'base64url');
  if (sibling.length !== 32) return false;
  scratch.set(sibling, at);
  return true;
}

/** Walks `proof` up from a leaf digest (latin1); the root as `enc`, or null when a step is malformed. */
function walk(leaf: string, proof: readonly MerkleStep[], enc: Digest): string | null {
  let acc = leaf;
  for (let i = 0; i < proof.length; i++) {
    const step = proof[i] as MerkleStep;
    const side = step[0];
    if (side === 'L') {
      if (!putSibling(step, 1)) return null;
      scratch.write(acc, 33, 32, 'latin1');
    } else if (side === 'R') {
      if (!putSibling(step, 33)) return null;
      scratch.write(acc, 1, 32, 'latin1');
    } else return null;
    acc = digest(scratch, i === proof.length - 1 ? enc : 'latin1');
  }
  return acc;
}

/** The root a leaf (a merkleLeaf hash) and its proof lead to; null when a step or the leaf is malformed. */
export function merkleRootOf(leaf: Buffer, proof: readonly MerkleStep[]): Buffer | null {
  if (proof.length === 0) return leaf;
  if (leaf.length !== 32) return null;
  const root = walk(leaf.toString('latin1'), proof, 'latin1');
  return root === null ? null : Buffer.from(root, 'latin1');
}

/**
 * `merkleRootOf(merkleLeaf(signingPayload), proof)` as base64url (what the hub signs, see
 * `invokeRootPayload`), without a Buffer per step: a node checks one per batch-signed invoke.
 */
export function merkleRootB64u(signingPayload: string, proof: readonly MerkleStep[]): string | null {
  if (proof.length === 0) return leafDigest(signingPayload, 'base64url');
  return walk(leafDigest(signingPayload, 'latin1'), proof, 'base64url');
}
