import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveKek, entryAad, fingerprint, newKdfParams, open, seal, unwrapDataKey, wrapDataKey } from './vault-crypto.js';

describe('vault crypto', () => {
  it('wraps the data key under a scrypt-derived KEK; a wrong password fails the GCM tag', async () => {
    const kdf = newKdfParams(15);
    const dek = randomBytes(32);
    const kek = await deriveKek('right password', kdf);
    const wrapped = wrapDataKey(kek, dek);
    expect(unwrapDataKey(await deriveKek('right password', kdf), wrapped).equals(dek)).toBe(true);
    const wrong = await deriveKek('wrong password', kdf);
    expect(() => unwrapDataKey(wrong, wrapped)).toThrow();
  });

  it('N=2^17 works with the raised maxmem', async () => {
    const kek = await deriveKek('pw', newKdfParams(17));
    expect(kek).toHaveLength(32);
  });

  it('binds an entry to its provider and key id; tampering fails', () => {
    const dek = randomBytes(32);
    const sealed = seal(dek, Buffer.from('sk-value-1234'), entryAad('openai', 'main'));
    expect(open(dek, sealed, entryAad('openai', 'main')).toString()).toBe('sk-value-1234');
    expect(() => open(dek, sealed, entryAad('anthropic', 'main'))).toThrow();
    expect(() => open(dek, sealed, entryAad('openai', 'work'))).toThrow();
    const raw = Buffer.from(sealed, 'base64');
    raw[raw.length - 1] ^= 1;
    expect(() => open(dek, raw.toString('base64'), entryAad('openai', 'main'))).toThrow();
    // fresh IV every time
    expect(seal(dek, Buffer.from('x'), entryAad('a', 'b'))).not.toBe(seal(dek, Buffer.from('x'), entryAad('a', 'b')));
  });

  it('fingerprints are short, stable per vault and differ across vaults', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const v = Buffer.from('sk-same-value');
    expect(fingerprint(a, v)).toMatch(/^[0-9a-f]{12}$/);
    expect(fingerprint(a, v)).toBe(fingerprint(a, v));
    expect(fingerprint(a, v)).not.toBe(fingerprint(b, v));
  });
});
