import crypto, { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { merkleLeaf, merkleRootB64u, merkleRootOf, merkleTree } from './merkle.js';

/** The straightforward construction (one Buffer per hash), which the optimized code must match byte for byte. */
const ref = {
  h: (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest(),
  leaf: (payload: string) => ref.h(Buffer.from([0]), Buffer.from(payload)),
  tree(leaves: Buffer[]): { root: Buffer; proofs: string[][] } {
    const levels: Buffer[][] = [leaves];
    for (let level = leaves; level.length > 1; ) {
      const next: Buffer[] = [];
      for (let i = 0; i < level.length; i += 2)
        next.push(level[i + 1] ? ref.h(Buffer.from([1]), level[i] as Buffer, level[i + 1] as Buffer) : (level[i] as Buffer));
      levels.push(next);
      level = next;
    }
    const proofs = leaves.map((_, i) => {
      const proof: string[] = [];
      for (let k = 0, j = i; k < levels.length - 1; k++, j >>= 1) {
        const s = j ^ 1;
        const row = levels[k] as Buffer[];
        if (s < row.length) proof.push(`${s % 2 === 0 ? 'L' : 'R'}${(row[s] as Buffer).toString('base64url')}`);
      }
      return proof;
    });
    return { root: (levels[levels.length - 1] as Buffer[])[0] as Buffer, proofs };
  },
  rootOf(leaf: Buffer, proof: string[]): Buffer | null {
    let acc = leaf;
    for (const step of proof) {
      const sibling = Buffer.from(step.slice(1), 'base64url');
      if (sibling.length !== 32 || (step[0] !== 'L' && step[0] !== 'R')) return null;
      acc = step[0] === 'L' ? ref.h(Buffer.from([1]), sibling, acc) : ref.h(Buffer.from([1]), acc, sibling);
    }
    return acc;
  },
};

/** Payloads with multi-byte UTF-8, surrogate pairs, lone surrogates and NULs. */
const PAYLOADS = ['', 'a', 'hive.invoke.v1\ndev\nc-1\nsystem.info\n1\n2\n{}', 'é€😀', '\ud800', 'x\udfff', '\udc00\ud800', '\0\0', 'x'.repeat(5000)];

/** Steps that are not 32-byte siblings, or are but with another length or padding. */
function oddSteps(good: string): string[] {
  const b = good.slice(1);
  return [
    '',
    'L',
    `X${b}`,
    `l${b}`,
    `${good[0]}${b.slice(0, 42)}`,
    `${good}A`,
    `${good}AA`,
    `${good}=`,
    `${good[0]}${b.slice(0, 42)}=`,
    `${good[0]}${b.slice(0, 21)}=${b.slice(22)}`,
    `${good[0]}${b.slice(0, 21)}+${b.slice(22)}`,
    `${good[0]}${b.slice(0, 21)}/${b.slice(22)}`,
    `${good[0]}${b.slice(0, 21)}é${b.slice(22)}`,
    `${good[0]}${b.slice(0, 21)}😀${b.slice(23)}`,
    `${good[0]}${b.slice(0, 21)} ${b.slice(22)}`,
    `${good[0]}${Buffer.from(b, 'base64url').toString('base64')}`,
    `${good[0]}${randomBytes(33).toString('base64url')}`,
    `${good[0]}${randomBytes(31).toString('base64url')}`,
  ];
}

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

  it('leaves, trees and roots are byte for byte those of the plain construction', () => {
    for (const p of PAYLOADS) expect(merkleLeaf(p).equals(ref.leaf(p))).toBe(true);
    for (let n = 1; n <= 70; n++) {
      const leaves = Array.from({ length: n }, (_, i) => merkleLeaf(`${PAYLOADS[i % PAYLOADS.length]} ${i}`));
      const mine = merkleTree(leaves);
      const theirs = ref.tree(leaves);
      expect(mine.root.equals(theirs.root)).toBe(true);
      expect(mine.proofs).toEqual(theirs.proofs);
      for (let i = 0; i < n; i++) {
        const proof = mine.proofs[i] as string[];
        const payload = `${PAYLOADS[i % PAYLOADS.length]} ${i}`;
        expect(merkleRootOf(leaves[i] as Buffer, proof)?.equals(theirs.root)).toBe(true);
        expect(merkleRootB64u(payload, proof)).toBe(theirs.root.toString('base64url'));
      }
    }
  });

  it('malformed steps give null exactly where the plain construction does, and the same root where it accepts them', () => {
    const leaves = Array.from({ length: 9 }, (_, i) => merkleLeaf(`p${i}`));
    const { proofs } = merkleTree(leaves);
    let refused = 0;
    for (let i = 0; i < leaves.length; i++) {
      const proof = proofs[i] as string[];
      for (let k = 0; k < proof.length; k++) {
        for (const odd of oddSteps(proof[k] as string)) {
          const changed = proof.with(k, odd);
          const want = ref.rootOf(leaves[i] as Buffer, changed);
          const got = merkleRootOf(leaves[i] as Buffer, changed);
          expect({ odd, got: got?.toString('hex') ?? null }).toEqual({ odd, got: want?.toString('hex') ?? null });
          expect(merkleRootB64u(`p${i}`, changed)).toBe(want?.toString('base64url') ?? null);
          if (!want) refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('works the same without crypto.hash (Node before 20.12)', async () => {
    const hash = (crypto as { hash?: unknown }).hash;
    (crypto as { hash?: unknown }).hash = undefined;
    try {
      vi.resetModules();
      const m = await import('./merkle.js');
      expect(m.merkleTree).not.toBe(merkleTree);
      const leaves = Array.from({ length: 11 }, (_, i) => m.merkleLeaf(`p${i}`));
      for (const [i, leaf] of leaves.entries()) expect(leaf.equals(ref.leaf(`p${i}`))).toBe(true);
      const { root, proofs } = m.merkleTree(leaves);
      expect(root.equals(ref.tree(leaves).root)).toBe(true);
      expect(m.merkleRootB64u('p3', proofs[3] ?? [])).toBe(root.toString('base64url'));
      expect(m.merkleRootOf(leaves[4] as Buffer, proofs[4] ?? [])?.equals(root)).toBe(true);
    } finally {
      (crypto as { hash?: unknown }).hash = hash;
      vi.resetModules();
    }
  });
});
