import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

let lastMs = 0;
let counter = 0;

// Ids are identifiers, not secrets: their random part comes from a pooled buffer (one syscall
// per 4 KiB instead of one per id — audit rows and jobs make tens of thousands in a fan-out).
// Secrets, nonces and tokens below use randomBytes directly.
let pool = Buffer.alloc(0);
let offset = 0;
function pooledRandom(n: number): Buffer {
  if (offset + n > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

/** Time-ordered id: `<prefix>_<ms base36, 9 chars><counter base36, 3 chars><random>`. Sorts by creation. */
export function newId(prefix: string, randomChars = 8): string {
  const ms = Date.now();
  if (ms === lastMs) counter = (counter + 1) % 46656;
  else {
    lastMs = ms;
    counter = 0;
  }
  const rnd = pooledRandom(Math.ceil((randomChars * 3) / 4))
    .toString('base64url')
    .slice(0, randomChars);
  return `${prefix}_${ms.toString(36).padStart(9, '0')}${counter.toString(36).padStart(3, '0')}${rnd}`;
}

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Correlation ids
 * are indexed (jobs, audit entries); time-ordered ones are appended to those indexes instead of
 * touching a random page of each per insert.
 */
export function uuidv7(): string {
  const b = Buffer.from(pooledRandom(16));
  const ms = Date.now();
  b.writeUIntBE(ms, 0, 6);
  b[6] = ((b[6] as number) & 0x0f) | 0x70; // version 7
  b[8] = ((b[8] as number) & 0x3f) | 0x80; // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
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
