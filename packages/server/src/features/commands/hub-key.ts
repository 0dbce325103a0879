import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { type InvokeParams, invokeSigningPayload } from '@hive/protocol';
import { generateIdentity } from '@hive/sdk';
import type { Db } from '../../store/db.js';
import { nowIso } from '../../store/db.js';

export interface HubSigner {
  /** Raw Ed25519 public key, base64url; sent in every node hello and pinned by nodes. */
  publicKey: string;
  sign(p: Omit<InvokeParams, 'sig'>): InvokeParams;
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
  return {
    publicKey: parsed.publicKey,
    sign(p) {
      const sig = sign(null, Buffer.from(invokeSigningPayload(p)), key).toString('base64url');
      return { ...p, sig };
    },
  };
}
