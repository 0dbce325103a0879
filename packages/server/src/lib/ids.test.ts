import { describe, expect, it } from 'vitest';
import { newId, uuidv7 } from './ids.js';

describe('ids', () => {
  it('uuidv7: RFC 9562 layout (version 7, variant 10), time-ordered by its first 48 bits, unique', () => {
    const before = Date.now();
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    const after = Date.now();
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(after);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // All four variant digits occur (the random digit is mapped, not fixed).
    expect(new Set(ids.map((id) => id[19])).size).toBe(4);
  });

  it('newId: prefix, time-ordered, unique across many ids in one millisecond, random part of the asked length', () => {
    const ids = Array.from({ length: 5000 }, () => newId('job'));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^job_[0-9a-z]{12}[A-Za-z0-9_-]{8}$/);
    expect(newId('x', 20)).toMatch(/^x_[0-9a-z]{12}[A-Za-z0-9_-]{20}$/);
  });
});
