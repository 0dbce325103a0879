import path from 'node:path';
import { generateIdentity, HiveClient } from '@hive/sdk';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memTokens } from './fleet.js';
import { cleanup, runCli, startHub, type TestHub, tempDir } from './helpers.js';

describe('registry: slugs, updates, lookups, token expiry, CLI login', () => {
  let t: TestHub;
  const clients: HiveClient[] = [];
  beforeAll(async () => {
    t = await startHub();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await t.close();
    cleanup(t.dataDir);
  });

  const node = async (displayName: string | undefined, hostname = 'box', tags?: string[]) => {
    const id = generateIdentity();
    const tokens = memTokens();
    const c = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: id,
      tokenStore: tokens.store,
      client: { name: 'test-node', version: '0', hostname, ...(displayName ? { displayName } : {}) },
      ...(tags ? { tags } : {}),
    });
    clients.push(c);
    const hello = await c.start();
    return { id, c, hello, tokens };
  };

  it('derives slugs from the name or hostname, with -2, -3 on collision', async () => {
    const a = await node('Build Box');
    const b = await node('Build Box');
    const c = await node('build box!');
    const d = await node(undefined, 'Gateway.Example.COM');
    expect([a.hello.slug, b.hello.slug, c.hello.slug, d.hello.slug]).toEqual(['build-box', 'build-box-2', 'build-box-3', 'gateway-example-com']);
  });

  it('falls back to a generated word pair when nothing usable is given', async () => {
    const e = await node('***', '');
    expect(e.hello.slug).toMatch(/^[a-z]+-[a-z]+(-\d+)?$/);
  });

  it('updates name and tags, resolves id/slug/name, and refuses ambiguous names and bad tags', async () => {
    const x = await node('Same Name', 'h1', ['a']);
    await node('Same Name', 'h2');
    const put = await t.api('PUT', `/api/v1/satellites/${x.hello.slug}`, { name: 'Renamed', tags: ['web', 'eu', 'web'] });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({ name: 'Renamed', tags: ['eu', 'web'] });
    expect((await t.api('GET', '/api/v1/satellites/Renamed')).body.data.id).toBe(x.id.deviceId);
    expect((await t.api('GET', `/api/v1/satellites/${x.id.deviceId}`)).body.data.slug).toBe(x.hello.slug);
    expect((await t.api('GET', '/api/v1/satellites?tag=web')).body.data.map((s: any) => s.id)).toEqual([x.id.deviceId]);
    const bad = await t.api('PUT', `/api/v1/satellites/${x.hello.slug}`, { tags: ['no spaces'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_PARAMETERS');
    expect((await t.api('GET', `/api/v1/satellites/${x.hello.slug}`)).body.data.tags).toEqual(['eu', 'web']);
    await t.api('PUT', `/api/v1/satellites/${x.hello.slug}`, { name: 'Twin' });
    const twin2 = await node('whatever', 'h3');
    await t.api('PUT', `/api/v1/satellites/${twin2.hello.slug}`, { name: 'Twin' });
    const amb = await t.api('GET', '/api/v1/satellites/Twin');
    expect(amb.status).toBe(409);
    expect(amb.body.error.code).toBe('AMBIGUOUS');
    const tags = await t.api('GET', '/api/v1/tags');
    expect(tags.body.data).toEqual(expect.arrayContaining([{ tag: 'web', count: 1 }]));
    const audit = await t.api('GET', `/api/v1/audit/logs?action=satellite.updated&target_id=${x.id.deviceId}`);
    expect(audit.body.data[0].details.after).toMatchObject({ name: 'Twin' });
  });

  it('paginates and filters by status and text', async () => {
    const page = await t.api('GET', '/api/v1/satellites?per_page=2&page=2');
    expect(page.body.pagination).toMatchObject({ page: 2, per_page: 2 });
    expect(page.body.pagination.total).toBeGreaterThanOrEqual(8);
    expect(page.body.data).toHaveLength(2);
    expect((await t.api('GET', '/api/v1/satellites?status=offline')).body.pagination.total).toBe(0);
    expect((await t.api('GET', '/api/v1/satellites?q=gateway')).body.data.map((s: any) => s.slug)).toEqual(['gateway-example-com']);
    const bad = await t.api('GET', '/api/v1/satellites?per_page=100000');
    expect(bad.status).toBe(400);
  });

  it('an expired device token is refused with a re-pair hint and audited', async () => {
    const n = await node('expiring');
    const token = n.tokens.m.get('node') as string;
    await n.c.close();
    const tokenId = token.split('_')[1];
    const db = new Database(path.join(t.dataDir, 'hive.db'));
    db.prepare('UPDATE device_tokens SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), tokenId);
    db.close();
    const again = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: n.id,
      tokenStore: n.tokens.store,
      client: { name: 'test-node', version: '0', hostname: 'box', displayName: 'expiring' },
    });
    clients.push(again);
    // The SDK follows the hint: drops the token and pairs again (loopback), getting a new one.
    await again.start();
    expect(n.tokens.m.get('node')).not.toBe(token);
    const audit = await t.api('GET', `/api/v1/audit/logs?action=device.auth_failed&target_id=${n.id.deviceId}`);
    expect(audit.body.data[0].details.reason).toBe('expired_token');
  });

  it('`hive login` stores URL and key (0600) and later commands use them', async () => {
    const home = tempDir('hive-login-');
    const env = { XDG_CONFIG_HOME: home, HIVE_URL: '', HIVE_API_KEY: '' };
    const bad = await runCli(['login', '--url', t.url, '--api-key', 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('AUTH_INVALID');
    const ok = await runCli(['login', '--url', t.url, '--api-key', t.adminKey], env);
    expect(ok.code, ok.stderr).toBe(0);
    const { statSync } = await import('node:fs');
    expect(statSync(path.join(home, 'hive', 'cli.json')).mode & 0o777).toBe(0o600);
    const list = await runCli(['satellites', '--json'], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).pagination.total).toBeGreaterThan(3);
    const unreachable = await runCli(['satellites'], { ...env, HIVE_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toContain('HUB_UNREACHABLE');
    cleanup(home);
  });

  it('one device with both roles: separate tokens, one row with two badges; operator scopes need a person', async () => {
    const n = await node('both-roles');
    const op = new HiveClient({
      url: t.wsUrl,
      role: 'operator',
      scopes: ['operator.read'],
      identity: n.id,
      tokenStore: n.tokens.store,
      client: { name: 'desk', version: '0', hostname: 'box' },
    });
    clients.push(op);
    const pending = new Promise<{ requestId: string }>((r) => op.once('pairing', r));
    const hello = op.start();
    // loopback does not pair operators silently
    const req = await pending;
    await t.api('POST', `/api/v1/pairing/${req.requestId}/approve`);
    const h = await hello;
    expect(h).toMatchObject({ role: 'operator', deviceId: n.id.deviceId, scopes: ['operator.read'] });
    expect(n.tokens.m.get('operator')).toMatch(/^hdt_/);
    expect(n.tokens.m.get('operator')).not.toBe(n.tokens.m.get('node'));
    const sat = (await t.api('GET', `/api/v1/satellites/${n.id.deviceId}`)).body.data;
    expect(sat.roles).toEqual(['node', 'operator']);
    // revoking the operator role leaves the node connected
    await t.api('POST', `/api/v1/devices/${n.id.deviceId}/revoke`, { role: 'operator' });
    expect((await t.api('GET', `/api/v1/satellites/${n.id.deviceId}`)).body.data).toMatchObject({ roles: ['node'], status: 'online' });
  });
});
