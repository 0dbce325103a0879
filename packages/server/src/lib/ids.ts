import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

let lastMs = 0;
let counter = 0;

// Ids are identifiers, not secrets: their random part is cut from a pooled random string (one
// syscall and one encoding per 4 KiB instead of per id; audit rows and jobs make tens of
// thousands in a fan-out). Secrets, nonces and tokens below use randomBytes directly.
const POOL_BYTES = 3072; // 4096 base64url characters, 6144 hex digits
/** `n` random characters at a time, cut from a pooled random string in `encoding`. */
function pooledRandom(encoding: 'base64url' | 'hex'): (n: number) => string {
  let pool = '';
  let at = 0;
  return (n) => {
    if (at + n > pool.length) {
      pool = randomBytes(POOL_BYTES).toString(encoding);
      at = 0;
    }
    at += n;
    return pool.slice(at - n, at);
  };
}
const randomBase64url = pooledRandom('base64url');
const randomHex = pooledRandom('hex');

/** Time-ordered id: `<prefix>_<ms base36, 9 chars><counter base36, 3 chars><random>`. Sorts by creation. */
export function newId(prefix: string, randomChars = 8): string {
  const ms = Date.now();
  if (ms === lastMs) counter = (counter + 1) % 46656;
  else {
    lastMs = ms;
    counter = 0;
  }
  return `${prefix}_${ms.toString(36).padStart(9, '0')}${counter.toString(36).padStart(3, '0')}${randomBase64url(randomChars)}`;
}

const VARIANT = '89ab';

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, the version, 12 random bits, the
 * variant, 62 random bits. Correlation ids are indexed (jobs, audit entries); time-ordered ones
 * are appended to those indexes instead of touching a random page of each per insert.
 */
export function uuidv7(): string {
  const t = Date.now().toString(16).padStart(12, '0');
  const r = randomHex(19);
  // Variant 10xx: the top two bits of this hex digit are 1 and 0.
  const v = VARIANT[Number.parseInt(r[3] as string, 16) & 3] as string;
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r.slice(0, 3)}-${v}${r.slice(4, 7)}-${r.slice(7, 19)}`;
}

/** A random secret, base64url. */
export const randomSecret = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** SHA-256 hex. Enough for high-entropy random tokens (not for passwords). */
export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * Tokens look like `<kind>_<id>_<secret>`: the id part finds the row (and lets a leaked token be
 * recognised), only the hash of the whole token is stored.
 */
export function mintToken(kind: string): { id: string; token: string; hash: string } {
  const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
  const token = `${kind}_${id}_${randomSecret(32)}`;
  return { id, token, hash: sha256(token) };
}

export function parseToken(kind: string, token: string): { id: string } | null {
  const m = new RegExp(`^${kind}_([A-Za-z0-9]{12})_[A-Za-z0-9_-]{43}$`).exec(token);
  return m?.[1] ? { id: m[1] } : null;
}
