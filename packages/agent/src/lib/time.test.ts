import { describe, expect, it } from 'vitest';
import { isoTimestamp } from './time.js';

describe('isoTimestamp', () => {
  it('is Date.prototype.toISOString', () => {
    const edges = [
      0, 1, -1, 999, 1000, 951_782_400_000, 951_868_799_999, 1_704_067_199_999, 1_704_067_200_000, 253_402_300_799_999, 253_402_300_800_000,
      -62_167_219_200_000, -62_167_219_200_001, 8.64e15, -8.64e15,
    ];
    let x = 123_456_789;
    const random = Array.from({ length: 5000 }, () => {
      x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((x / 2 ** 31) * 4e12) - 1e11;
    });
    for (const ms of [...edges, ...random, Date.now()]) expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTimestamp(Number.NaN)).toThrow(RangeError);
  });
});
