import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Role } from '@hive/protocol';
import { connectSigningPayload } from './protocol-lite.js';

/** Ed25519 SPKI DER = this 12-byte prefix + the 32-byte raw public key. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface DeviceIdentity {
  deviceId: string;
  /** Raw public key, base64url. */
  publicKey: string;
  privateKey: KeyObject;
}

/** deviceId = hex SHA-256 of the raw 32-byte public key. Stable for the life of the key. */
export function deviceIdFromPublicKey(publicKeyB64u: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyB64u, 'base64url')).digest('hex');
}

// Parsed keys, by their base64url text: a node checks every invoke against the same hub key, a
// hub sees the same devices reconnect. Bounded; the oldest entry goes first.
const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 20_000;

export function publicKeyObject(publicKeyB64u: string): KeyObject {
  const cached = keyCache.get(publicKeyB64u);
  if (cached) return cached;
  const raw = Buffer.from(publicKeyB64u, 'base64url');
  if (raw.length !== 32) throw new Error('Ed25519 public key must be 32 bytes');
  const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(publicKeyB64u, key);
  return key;
}

export function generateIdentity(): DeviceIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
  const pub = Buffer.from(raw).toString('base64url');
  return { deviceId: deviceIdFromPublicKey(pub), publicKey: pub, privateKey };
}

export function signConnect(
  identity: DeviceIdentity,
  nonce: string,
  role: Role,
  scopes: readonly string[],
  signedAt = Date.now(),
): { publicKey: string; signature: string; signedAt: number } {
  const payload = connectSigningPayload({ nonce, deviceId: identity.deviceId, role, scopes, signedAt });
  const signature = sign(null, Buffer.from(payload), identity.privateKey).toString('base64url');
  return { publicKey: identity.publicKey, signature, signedAt };
}

export function verifySignature(publicKeyB64u: string, payload: string, signatureB64u: string): boolean {
  try {
    return verify(null, Buffer.from(payload), publicKeyObject(publicKeyB64u), Buffer.from(signatureB64u, 'base64url'));
  } catch {
    return false;
  }
}

interface IdentityFile {
  version: 1;
  deviceId: string;
  publicKey: string;
  privateKeyPem: string;
}

let tmpCounter = 0;

async function writePrivate(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/**
 * Loads the device key from `<stateDir>/device.json`, creating it (mode 0600) on first use.
 * The key never leaves this file; only the public key and signatures go on the wire.
 */
export async function loadOrCreateIdentity(stateDir: string): Promise<DeviceIdentity> {
  const file = path.join(stateDir, 'device.json');
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as IdentityFile;
    const privateKey = createPrivateKey(parsed.privateKeyPem);
    const derived = deviceIdFromPublicKey(parsed.publicKey);
    if (derived !== parsed.deviceId) throw new Error(`${file}: deviceId does not match the public key`);
    return { deviceId: derived, publicKey: parsed.publicKey, privateKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const id = generateIdentity();
  const body: IdentityFile = {
    version: 1,
    deviceId: id.deviceId,
    publicKey: id.publicKey,
    privateKeyPem: id.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
  await writePrivate(file, `${JSON.stringify(body, null, 2)}\n`);
  return id;
}

/** Device tokens per role, in `<stateDir>/tokens.json` (0600). */
export class TokenStore {
  private readonly file: string;
  /** Writes are serialized: a read-modify-write must not interleave with another. */
  private chain: Promise<unknown> = Promise.resolve();
  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'tokens.json');
  }
  async get(role: Role): Promise<string | undefined> {
    try {
      const all = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, string>;
      return all[role];
    } catch {
      return undefined;
    }
  }
  getHubKey(): Promise<string | undefined> {
    return this.get('hubKey' as Role);
  }
  setHubKey(key: string | undefined): Promise<void> {
    return this.set('hubKey' as Role, key);
  }
  /** The hub's TLS certificate trusted at first use (`sha256:…` or `ca`). */
  getHubTls(): Promise<string | undefined> {
    return this.get('hubTls' as Role);
  }
  setHubTls(value: string | undefined): Promise<void> {
    return this.set('hubTls' as Role, value);
  }
  set(role: Role, token: string | undefined): Promise<void> {
    const next = this.chain.then(() => this.write(role, token));
    this.chain = next.catch(() => {});
    return next;
  }
  private async write(role: Role, token: string | undefined): Promise<void> {
    let all: Record<string, string> = {};
    try {
      all = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, string>;
    } catch {
      /* first token */
    }
    if (token === undefined) delete all[role];
    else all[role] = token;
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writePrivate(this.file, `${JSON.stringify(all, null, 2)}\n`);
  }
}
