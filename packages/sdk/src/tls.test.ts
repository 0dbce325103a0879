import { HiveError } from '@hive/protocol';
import { describe, expect, it } from 'vitest';
import { normalizeFingerprint, sameFingerprint } from './tls.js';

const HEX = `${'ab'.repeat(31)}0f`;
const CANON = `sha256:${'AB:'.repeat(31)}0F`;

describe('hub certificate fingerprints', () => {
  it('accept the usual spellings and print one canonical form', () => {
    for (const v of [CANON, CANON.toLowerCase(), HEX, HEX.toUpperCase(), `SHA256:${HEX}`, `sha-256=${HEX}`, `  ${CANON.slice(7)}  `])
      expect(normalizeFingerprint(v)).toBe(CANON);
    expect(sameFingerprint(CANON, HEX)).toBe(true);
    expect(sameFingerprint(CANON, `sha256:${'00:'.repeat(31)}00`)).toBe(false);
  });

  it('refuse anything that is not 32 bytes of hex, as INVALID_PARAMETERS', () => {
    for (const v of ['', 'sha256:', 'AB:CD', `${HEX}00`, `sha1:${HEX}`, HEX.replace('a', 'g')]) {
      expect(() => normalizeFingerprint(v)).toThrow(HiveError);
      expect(() => normalizeFingerprint(v)).toThrow(/sha256:AB:CD/);
    }
    expect(sameFingerprint('junk', 'junk')).toBe(false);
  });
});
