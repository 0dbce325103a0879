import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { canonicalJson, type InvokeParams, invokeRootPayload, invokeSigningPayload } from '@hive/protocol';
import { generateIdentity, merkleLeaf, merkleTree } from '@hive/sdk';
import type { Db } from '../../store/db.js';
import { nowIso } from '../../store/db.js';

export interface HubSigner {
  /** Raw Ed25519 public key, base64url; sent in every node hello and pinned by nodes. */
  publicKey: string;
  sign(p: Omit<InvokeParams, 'sig'>): InvokeParams;
  /**
   * Signs a fan-out batch with one signature: the Merkle root over the invokes' payloads; each
   * invoke gets its proof (docs/protocol.md §7). A batch of one is signed plainly.
   */
  signMany(ps: Omit<InvokeParams, 'sig' | 'proof'>[]): InvokeParams[];
  /**
   * Signs with the next turn of the event loop, together with every other invoke asked for until
   * then (one signature for all of them, as `signMany`). A lone invoke costs a plain signature;
   * under load, when requests queue up, an Ed25519 signature (~50–80 µs) is shared.
   */
  signSoon(p: Omit<InvokeParams, 'sig' | 'proof'>): Promise<InvokeParams>;
}

/**
 * The hub's command-signing key. Kept in the database so every hub instance of a cluster signs
 * with the same key (nodes pin one key at pairing). Created once; never rotated implicitly.
 */
export async function loadHubSigner(db: Db): Promise<HubSigner> {
  let row = await db.selectFrom('hub_secrets').selectAll().where('name', '=', 'command_signing_key').executeTakeFirst();
  if (!row) {
    const id = generateIdentity();
    const value = JSON.stringify({ publicKey: id.publicKey, privateKeyPem: id.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() });
    await db
      .insertInto('hub_secrets')
      .values({ name: 'command_signing_key', value, created_at: nowIso() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    row = await db.selectFrom('hub_secrets').selectAll().where('name', '=', 'command_signing_key').executeTakeFirstOrThrow();
  }
  const parsed = JSON.parse(row.value) as { publicKey: string; privateKeyPem: string };
  const key: KeyObject = createPrivateKey(parsed.privateKeyPem);
  const signOne = (p: Omit<InvokeParams, 'sig'>): InvokeParams => {
    const sig = sign(null, Buffer.from(invokeSigningPayload(p)), key).toString('base64url');
    return { ...p, sig };
  };
  const signMany = (ps: Omit<InvokeParams, 'sig' | 'proof'>[]): InvokeParams[] => {
    if (ps.length <= 1) return ps.map(signOne);
    // The invokes of a fan-out share one params object: its canonical JSON is made once.
    let lastParams: unknown;
    let lastCanonical = '';
    const leaves = ps.map((p) => {
      if (p.params !== lastParams || lastCanonical === '') {
        lastParams = p.params;
        lastCanonical = canonicalJson(p.params);
      }
      return merkleLeaf(invokeSigningPayload(p, lastCanonical));
    });
    const { root, proofs } = merkleTree(leaves);
    const sig = sign(null, Buffer.from(invokeRootPayload(root.toString('base64url'))), key).toString('base64url');
    return ps.map((p, i) => ({ ...p, sig, proof: proofs[i] ?? [] }));
  };
  let waiting: { p: Omit<InvokeParams, 'sig' | 'proof'>; resolve: (v: InvokeParams) => void; reject: (e: unknown) => void }[] = [];
  const flush = () => {
    const batch = waiting;
    waiting = [];
    try {
      const signed = signMany(batch.map((w) => w.p));
      for (let i = 0; i < batch.length; i++) batch[i]?.resolve(signed[i] as InvokeParams);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  };
  return {
    publicKey: parsed.publicKey,
    sign: signOne,
    signMany,
    signSoon(p) {
      return new Promise((resolve, reject) => {
        if (waiting.push({ p, resolve, reject }) === 1) setImmediate(flush);
      });
    },
  };
}
