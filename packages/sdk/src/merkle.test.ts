import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { merkleLeaf, merkleRootOf, merkleTree } from './merkle.js';

describe('merkle batch proofs', () => {
  it('every leaf of trees of every size proves the root; any change does not', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 100, 1025]) {
      const leaves = Array.from({ length: n }, (_, i) => merkleLeaf(`payload ${i}`));
      const { root, proofs } = merkleTree(leaves);
      expect(proofs).toHaveLength(n);
      expect(Math.max(...proofs.map((p) => p.length))).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 7))) {
        expect(merkleRootOf(leaves[i] as Buffer, proofs[i] ?? [])?.equals(root)).toBe(true);
        expect(merkleRootOf(merkleLeaf(`payload ${i}!`), proofs[i] ?? [])?.equals(root)).toBe(false);
        if (n > 1) expect(merkleRootOf(leaves[i] as Buffer, proofs[(i + 1) % n] ?? [])?.equals(root)).toBe(false);
      }
    }
  });

  it('a leaf is never mistaken for an inner node; malformed steps are refused', () => {
    const a = merkleLeaf('a');
    const b = merkleLeaf('b');
    const { root, proofs } = merkleTree([a, b]);
    // The root itself presented as a leaf with an empty proof does not verify as a leaf of the payload.
    expect(merkleLeaf('a').equals(root)).toBe(false);
    expect(merkleRootOf(a, ['Q'.repeat(44)])).toBeNull();
    expect(merkleRootOf(a, [`L${randomBytes(16).toString('base64url')}`])).toBeNull();
    expect(merkleRootOf(a, proofs[0] ?? [])?.equals(root)).toBe(true);
  });
});
