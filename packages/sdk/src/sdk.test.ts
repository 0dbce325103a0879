import { statSync } from 'node:fs';
import { mkdtemp as mkdtempIn, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectSigningPayload } from '@hive/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { deviceIdFromPublicKey, loadOrCreateIdentity, signConnect, TokenStore, verifySignature } from './identity.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
/** A temp dir removed after the file's tests. */
const mkdtemp = async (prefix: string) => {
  const d = await mkdtempIn(prefix);
  dirs.push(d);
  return d;
};

describe('sdk', () => {
  it('full-jitter backoff stays within the growing, capped ceiling', () => {
    const opts = { baseMs: 100, maxMs: 1000, restartSpreadMs: 0 };
    expect(backoffDelay(0, opts, () => 0.999)).toBe(99);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(400);
    expect(backoffDelay(20, opts, () => 0.999)).toBe(999);
    expect(backoffDelay(5, opts, () => 0)).toBe(0);
  });

  it('creates the device key once (0600) and reloads the same identity', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hive-sdk-'));
    const a = await loadOrCreateIdentity(dir);
    const b = await loadOrCreateIdentity(dir);
    expect(b.deviceId).toBe(a.deviceId);
    expect(a.deviceId).toBe(deviceIdFromPublicKey(a.publicKey));
    expect(statSync(path.join(dir, 'device.json')).mode & 0o777).toBe(0o600);
    const tokens = new TokenStore(dir);
    await tokens.set('node', 'hdt_x');
    expect(await tokens.get('node')).toBe('hdt_x');
    expect(statSync(path.join(dir, 'tokens.json')).mode & 0o777).toBe(0o600);
    await tokens.set('node', undefined);
    expect(await tokens.get('node')).toBeUndefined();
  });

  it('signatures verify only for the exact payload and key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hive-sdk-'));
    const id = await loadOrCreateIdentity(dir);
    const other = await loadOrCreateIdentity(await mkdtemp(path.join(os.tmpdir(), 'hive-sdk-')));
    const s = signConnect(id, 'nonce-1', 'node', [], 1000);
    const payload = connectSigningPayload({ nonce: 'nonce-1', deviceId: id.deviceId, role: 'node', scopes: [], signedAt: 1000 });
    expect(verifySignature(id.publicKey, payload, s.signature)).toBe(true);
    expect(verifySignature(other.publicKey, payload, s.signature)).toBe(false);
    expect(verifySignature(id.publicKey, payload.replace('nonce-1', 'nonce-2'), s.signature)).toBe(false);
    expect(verifySignature('not-a-key', payload, s.signature)).toBe(false);
  });
});
