import { describe, expect, it } from 'vitest';
import { REDACTED, redact } from './redact.js';

const token = `hive_abcdefABCDEF_${'x'.repeat(43)}`;

describe('redact', () => {
  it('removes values under secret keys, argv secrets, env values and token-shaped text; keeps the rest as it was', () => {
    const input = {
      command: 'system.run',
      n: 3,
      ok: true,
      none: null,
      password: 'hunter2',
      API_KEY: 'k',
      nested: { Authorization: 'Bearer x', list: [`see ${token} here`, 7, { token: 't' }] },
      argv: ['curl', '--token', 'abc', 'DB_PASSWORD=p', 'plain'],
      env: { HOME: '/root', ANYTHING: 'v' },
      note: `hdt_abcdefABCDEF_${'y'.repeat(20)} and job_123`,
    };
    expect(redact(input)).toEqual({
      command: 'system.run',
      n: 3,
      ok: true,
      none: null,
      password: REDACTED,
      API_KEY: REDACTED,
      nested: { Authorization: REDACTED, list: [`see ${REDACTED} here`, 7, { token: REDACTED }] },
      argv: ['curl', '--token', REDACTED, `DB_PASSWORD=${REDACTED}`, 'plain'],
      env: { HOME: REDACTED, ANYTHING: REDACTED },
      note: `${REDACTED} and job_123`,
    });
    // A copy: the input is untouched.
    expect(input.password).toBe('hunter2');
  });

  it('the same key is judged the same way every time (the per-key memo)', () => {
    for (let i = 0; i < 3; i++) expect(redact({ secret: 's', plain: 'p' })).toEqual({ secret: REDACTED, plain: 'p' });
  });

  it('stops at depth 8', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 12; i++) deep = { d: deep };
    expect(JSON.stringify(redact(deep))).toContain('[…]');
  });
});
