import path from 'node:path';
import { HiveClient } from '@hive/sdk';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, runCli, startHub, type TestHub } from './helpers.js';

describe('API keys: scopes, expiry, rotation, revocation (live connections cut off)', () => {
  let t: TestHub;
  let node: Awaited<ReturnType<typeof simNode>>;
  const env = () => ({ HIVE_URL: t.url, HIVE_API_KEY: t.adminKey });
  beforeAll(async () => {
    t = await startHub();
    node = await simNode(t.wsUrl, 'k-node');
  });
  afterAll(async () => {
    await node.client.close();
    await t.close();
    cleanup(t.dataDir);
  });

  it('a key only does what its scopes allow; it is shown once and stored hashed', async () => {
    const created = await runCli(['apikey', 'create', 'reader', '--scopes', 'operator.read', '--json'], env());
    expect(created.code, created.stderr).toBe(0);
    const { id, key } = JSON.parse(created.stdout);
    expect(key).toMatch(new RegExp(`^hive_${id}_`));
    expect((await t.api('GET', '/api/v1/satellites', undefined, key)).status).toBe(200);
    const exec = await t.api('POST', '/api/v1/satellites/k-node/exec', { command: 'system.info' }, key);
    expect(exec.status).toBe(403);
    const list = await runCli(['apikey', 'list', '--json'], env());
    const row = JSON.parse(list.stdout).find((k: any) => k.id === id);
    expect(row).toMatchObject({ name: 'reader', scopes: ['operator.read'], revoked_at: null });
    expect(row.last_used_at).toBeTruthy();
    expect(list.stdout).not.toContain(key);
    const db = new Database(path.join(t.dataDir, 'hive.db'), { readonly: true });
    const stored = JSON.stringify(db.prepare('SELECT * FROM api_keys').all());
    db.close();
    expect(stored).not.toContain(key);
  });

  it('expired keys are refused', async () => {
    const res = await t.api('POST', '/api/v1/apikeys', { name: 'short', scopes: ['operator.read'], expires_in: '1h' });
    expect(res.body.data.expires_at).toBeTruthy();
    const db = new Database(path.join(t.dataDir, 'hive.db'));
    db.prepare('UPDATE api_keys SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), res.body.data.id);
    db.close();
    const r = await t.api('GET', '/api/v1/satellites', undefined, res.body.data.key);
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/expired/);
  });

  it('revoking closes a live WebSocket connection within a second and refuses REST; rotation replaces the secret', async () => {
    const res = await t.api('POST', '/api/v1/apikeys', { name: 'live', scopes: ['operator.read'] });
    const { id, key } = res.body.data;
    const ws = new HiveClient({ url: t.wsUrl, role: 'operator', apiKey: key, client: { name: 'live', version: '0' }, reconnect: false });
    await ws.start();
    const closed = new Promise<{ code: number }>((r) => ws.once('disconnected', r));
    const started = Date.now();
    expect((await runCli(['apikey', 'revoke', id], env())).code).toBe(0);
    expect((await closed).code).toBe(4007);
    expect(Date.now() - started).toBeLessThan(5000); // includes the CLI process start
    expect((await t.api('GET', '/api/v1/satellites', undefined, key)).status).toBe(401);
    const again = await t.api('DELETE', `/api/v1/apikeys/${id}`);
    expect(again.body.error.code).toBe('ALREADY_RESOLVED');

    const r2 = await t.api('POST', '/api/v1/apikeys', { name: 'rot', scopes: ['operator.read', 'operator.write'] });
    const rotated = await t.api('POST', `/api/v1/apikeys/${r2.body.data.id}/rotate`);
    expect(rotated.body.data.replaced).toBe(r2.body.data.id);
    expect((await t.api('GET', '/api/v1/satellites', undefined, r2.body.data.key)).status).toBe(401);
    expect((await t.api('POST', '/api/v1/satellites/k-node/exec', { command: 'system.info' }, rotated.body.data.key)).status).toBe(200);
    const audit = (await t.api('GET', '/api/v1/audit/logs?action=apikey.*&per_page=100')).body.data.map((e: any) => e.action);
    expect(audit).toEqual(expect.arrayContaining(['apikey.created', 'apikey.revoked', 'apikey.rotated']));
    expect(JSON.stringify(audit)).not.toContain('hive_');
  });

  it('non-admins cannot manage keys', async () => {
    const res = await t.api('POST', '/api/v1/apikeys', { name: 'op', scopes: ['operator.write'] });
    const denied = await t.api('POST', '/api/v1/apikeys', { name: 'x', scopes: ['operator.admin'] }, res.body.data.key);
    expect(denied.status).toBe(403);
    const bad = await t.api('POST', '/api/v1/apikeys', { name: 'x', scopes: ['root'] });
    expect(bad.body.error.code).toBe('INVALID_PARAMETERS');
  });
});
