import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, operator, runCli, spawnAgent, startHub, type TestHub } from './helpers.js';

describe('device tokens: rotate live, revoke cuts the connection at once (real agent process)', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ overrides: { pairing: { auto_approve_loopback: false } } });
  });
  afterAll(async () => {
    await t.close();
    cleanup(t.dataDir);
  });

  it('rotation hands the connected agent a new token; after a restart it connects with it, the old one is dead', async () => {
    const state = path.join(t.dataDir, 'agent');
    const op = await operator(t);
    let agent = spawnAgent(t.wsUrl, state, ['--name', 'rot-1']);
    const req = await op.waitEvent('pairing:requested');
    await t.api('POST', `/api/v1/pairing/${req.id}/approve`);
    const sat = await op.waitEvent('satellite:online');
    // The hub announces the satellite before the agent has stored its token: wait for the agent.
    await agent.waitLine((l) => l.msg === 'connected');
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const { readFileSync } = await import('node:fs');
    const before = JSON.parse(readFileSync(path.join(state, 'tokens.json'), 'utf8')).node;
    const rot = await runCli(['device', 'rotate', 'rot-1', '--json'], env);
    expect(rot.code, rot.stderr).toBe(0);
    const after = JSON.parse(readFileSync(path.join(state, 'tokens.json'), 'utf8')).node;
    expect(after).toMatch(/^hdt_/);
    expect(after).not.toBe(before);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(t.dataDir, 'hive.db'), { readonly: true });
    const row = db.prepare('SELECT revoked_at FROM device_tokens WHERE id = ?').get(before.split('_')[1]) as { revoked_at: string | null };
    db.close();
    expect(row.revoked_at).toBeTruthy();
    await agent.kill();
    await op.waitEvent('satellite:offline', (p) => p.id === sat.id);
    agent = spawnAgent(t.wsUrl, state, ['--name', 'rot-1']);
    await op.waitEvent('satellite:online', (p) => p.id === sat.id && p !== sat);
    // no new pairing request was needed
    expect((await t.api('GET', '/api/v1/pairing?status=pending')).body.data).toEqual([]);
    const audit = await t.api('GET', `/api/v1/audit/logs?action=device.token_rotated&target_id=${sat.id}`);
    expect(audit.body.data).toHaveLength(1);
    expect(JSON.stringify(audit.body.data)).not.toContain(after);

    // revoke: the live connection drops within a second and the agent must pair again
    const started = Date.now();
    const dropped = agent.waitLine((l) => l.msg === 'disconnected' && l.code === 4007);
    const rev = await t.api('POST', `/api/v1/devices/${sat.id}/revoke`, { role: 'node' });
    expect(rev.body.data.revoked).toBe(1);
    await dropped;
    expect(Date.now() - started).toBeLessThan(1000);
    const again = await op.waitEvent('pairing:requested', (p) => p.id !== req.id);
    expect(again.device_id).toBe(sat.id);
    await agent.kill();
    await op.close();
  });

  it('refuses rotation for an offline device and revocation without a live token', async () => {
    const off = await t.api('POST', '/api/v1/devices/0000/rotate', { role: 'node' });
    expect(off.body.error.code).toBe('SATELLITE_OFFLINE');
    const none = await t.api('POST', '/api/v1/devices/0000/revoke', { role: 'operator' });
    expect(none.body.error.code).toBe('NOT_FOUND');
  });
});
