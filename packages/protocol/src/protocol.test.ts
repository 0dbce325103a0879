import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES } from './close-codes.js';
import { NODE_COMMANDS } from './commands.js';
import { ERROR_CODE_LIST, ERROR_CODES, HiveError } from './errors.js';
import { ConnectParams, connectSigningPayload, Frame } from './frames.js';
import { EVENTS, METHODS } from './methods.js';
import { negotiateVersion } from './version.js';

describe('protocol', () => {
  it('negotiates the highest common version or none', () => {
    expect(negotiateVersion({ min: 1, max: 3 }, { min: 1, max: 2 })).toBe(2);
    expect(negotiateVersion({ min: 3, max: 4 }, { min: 1, max: 2 })).toBeNull();
    expect(negotiateVersion({ min: 2, max: 1 }, { min: 1, max: 2 })).toBeNull();
  });

  it('signing payload covers nonce, device, role, sorted scopes and time', () => {
    const a = connectSigningPayload({ nonce: 'n', deviceId: 'd', role: 'operator', scopes: ['operator.write', 'operator.read'], signedAt: 5 });
    const b = connectSigningPayload({ nonce: 'n', deviceId: 'd', role: 'operator', scopes: ['operator.read', 'operator.write'], signedAt: 5 });
    expect(a).toBe(b);
    expect(a).toBe('hive.connect.v1\nn\nd\noperator\noperator.read,operator.write\n5');
    expect(connectSigningPayload({ nonce: 'm', deviceId: 'd', role: 'operator', scopes: [], signedAt: 5 })).not.toBe(a);
  });

  it('parses the three frame kinds and rejects others', () => {
    expect(Frame.safeParse({ type: 'req', id: '1', method: 'ping' }).success).toBe(true);
    expect(Frame.safeParse({ type: 'res', id: '1', ok: true, result: 1 }).success).toBe(true);
    expect(Frame.safeParse({ type: 'res', id: '1', ok: false, error: { code: 'NOT_FOUND', message: 'x' } }).success).toBe(true);
    expect(Frame.safeParse({ type: 'res', id: '1', ok: false, error: { code: 'MADE_UP', message: 'x' } }).success).toBe(false);
    expect(Frame.safeParse({ type: 'event', event: 'x', seq: 0 }).success).toBe(false);
    expect(Frame.safeParse({ type: 'req', id: 'x'.repeat(65), method: 'ping' }).success).toBe(false);
    expect(Frame.safeParse({ type: 'other' }).success).toBe(false);
  });

  it('connect params are bounded', () => {
    const base = { protocol: { min: 1, max: 1 }, role: 'node', client: { name: 'a', version: '1' } };
    expect(ConnectParams.safeParse(base).success).toBe(true);
    expect(ConnectParams.safeParse({ ...base, role: 'root' }).success).toBe(false);
    expect(ConnectParams.safeParse({ ...base, scopes: ['operator.everything'] }).success).toBe(false);
    expect(ConnectParams.safeParse({ ...base, client: { name: 'x'.repeat(65), version: '1' } }).success).toBe(false);
    expect(ConnectParams.safeParse({ ...base, commands: Array(513).fill('c') }).success).toBe(false);
  });

  it('HiveError round-trips through the wire shape', () => {
    const e = new HiveError('RATE_LIMITED', 'slow down', { n: 1 }, { action: 'retry', retryAfterMs: 10 });
    const back = HiveError.fromWire(e.toWire());
    expect(back).toMatchObject({ code: 'RATE_LIMITED', message: 'slow down', details: { n: 1 }, hint: { action: 'retry', retryAfterMs: 10 } });
    expect(back.httpStatus).toBe(429);
  });

  it('system.run params refuse empty argv, NUL bytes and unknown keys', () => {
    const p = NODE_COMMANDS['system.run'].params;
    expect(p.safeParse({ argv: ['echo', 'x'] }).success).toBe(true);
    expect(p.safeParse({ argv: [] }).success).toBe(false);
    expect(p.safeParse({ argv: [''] }).success).toBe(false);
    expect(p.safeParse({ argv: ['echo', 'a\0b'] }).success).toBe(false);
    expect(p.safeParse({ argv: ['echo'], shell: true }).success).toBe(false);
  });

  it('every method declares roles and scopes; close codes are unique', () => {
    for (const [name, spec] of Object.entries(METHODS)) {
      expect(spec.roles.length, name).toBeGreaterThan(0);
      if (spec.roles.includes('operator' as never) && name !== 'ping') expect(spec.scope, name).toMatch(/^operator\./);
    }
    const codes = Object.values(CLOSE_CODES).map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(Object.keys(EVENTS)).toContain('satellite:online');
  });

  it('every error code and close code is documented in docs/', () => {
    const errorsDoc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const missing = ERROR_CODE_LIST.filter((c) => !errorsDoc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
    for (const c of Object.values(CLOSE_CODES)) expect(errorsDoc).toContain(String(c.code));
    const protocolDoc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    for (const m of Object.keys(METHODS)) expect(protocolDoc, m).toContain(`\`${m}\``);
    expect(Object.keys(ERROR_CODES).length).toBeGreaterThan(20);
  });
});
