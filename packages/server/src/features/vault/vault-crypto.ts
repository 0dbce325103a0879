import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt } from 'node:crypto';

/**
 * The vault's key hierarchy, HashiCorp-Vault-seal style:
 * master password → scrypt → key-encryption key (KEK) → unwraps a random data key (DEK) →
 * the DEK seals each entry with AES-256-GCM, bound by associated data to its provider and key id.
 * A password change re-wraps only the DEK. Buffers holding key material are zero-filled after use.
 */

export interface KdfParams {
  alg: 'scrypt';
  log_n: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAP_AAD = Buffer.from('hive-vault/data-key/v1');

export function newKdfParams(logN: number): KdfParams {
  return { alg: 'scrypt', log_n: logN, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
}

/** Derives the KEK. scrypt needs 128·N·r bytes, above Node's 32 MiB default `maxmem`. */
export function deriveKek(password: string, kdf: KdfParams): Promise<Buffer> {
  const N = 2 ** kdf.log_n;
  const pw = Buffer.from(password, 'utf8');
  return new Promise((resolve, reject) => {
    scrypt(pw, Buffer.from(kdf.salt, 'base64'), 32, { N, r: kdf.r, p: kdf.p, maxmem: 256 * N * kdf.r }, (err, key) => {
      pw.fill(0);
      if (err) reject(err);
      else resolve(key);
    });
  });
}

export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
}

/** Throws when the key, the AAD or the ciphertext is wrong (GCM tag mismatch). */
export function open(key: Buffer, sealed: string, aad: Buffer): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  d.setAAD(aad);
  d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]);
}

export const wrapDataKey = (kek: Buffer, dek: Buffer): string => seal(kek, dek, WRAP_AAD);
export const unwrapDataKey = (kek: Buffer, wrapped: string): Buffer => open(kek, wrapped, WRAP_AAD);

/** Associated data of an entry: a ciphertext moved to another provider/key id fails to open. */
export const entryAad = (provider: string, keyId: string): Buffer => Buffer.from(`hive-vault/entry/v1\0${provider}\0${keyId}`);

/** Short, non-reversible fingerprint (HMAC under a key derived from the DEK, not a bare hash). */
export function fingerprint(dek: Buffer, value: Buffer): string {
  const fk = createHmac('sha256', dek).update('hive-vault/fingerprint/v1').digest();
  const fp = createHmac('sha256', fk).update(value).digest('hex').slice(0, 12);
  fk.fill(0);
  return fp;
}
