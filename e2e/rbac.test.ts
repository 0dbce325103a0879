import { generateIdentity, HiveClient } from '@hive/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memTokens, type simNode } from './fleet.js';
import { cleanup, operator, startHub, type TestHub } from './helpers.js';

/** One representative route per class, and the scope it needs. */
const ROUTES: { cls: string; method: string; path: string; body?: unknown; need: 'read' | 'write' | 'admin' | 'approvals' | 'pairing' }[] = [
  { cls: 'read satellites', method: 'GET', path: '/api/v1/satellites', need: 'read' },
  { cls: 'read jobs', method: 'GET', path: '/api/v1/commands', need: 'read' },
  { cls: 'exec', method: 'POST', path: '/api/v1/satellites/rb-1/exec', body: { command: 'system.info' }, need: 'write' },
  { cls: 'update satellite', method: 'PUT', path: '/api/v1/satellites/rb-1', body: { tags: ['t'] }, need: 'write' },
  { cls: 'groups', method: 'POST', path: '/api/v1/groups', body: { name: 'g-NAME' }, need: 'write' },
  { cls: 'approvals', method: 'GET', path: '/api/v1/approvals', need: 'approvals' },
  { cls: 'pairing', method: 'GET', path: '/api/v1/pairing', need: 'pairing' },
  { cls: 'audit', method: 'GET', path: '/api/v1/audit/logs', need: 'admin' },
  { cls: 'users', method: 'GET', path: '/api/v1/users', need: 'admin' },
  { cls: 'api keys', method: 'GET', path: '/api/v1/apikeys', need: 'admin' },
  { cls: 'vault admin', method: 'POST', path: '/api/v1/vault/lock', need: 'admin' },
];

const ROLE_NEEDS: Record<string, string[]> = {
  admin: ['read', 'write', 'admin', 'approvals', 'pairing'],
  operator: ['read', 'write', 'approvals', 'pairing'],
  viewer: ['read'],
};

describe('RBAC: each role against each route class; pairing spam is throttled', () => {
  let t: TestHub;
  let node: Awaited<ReturnType<typeof simNode>>;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    t = await startHub({ overrides: { auth: { password_kdf_log_n: 12 }, pairing: { auto_approve_loopback: false, max_pending_per_ip: 3 } } });
    const op = await operator(t);
    const id = generateIdentity();
    const tok = memTokens();
    const c = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: id,
      tokenStore: tok.store,
      client: { name: 'n', version: '0', hostname: 'rb-1', displayName: 'rb-1' },
      commands: ['system.info'],
      onRequest: async () => ({ ok: 1 }),
    });
    const started = c.start();
    const req = await op.waitEvent('pairing:requested');
    await t.api('POST', `/api/v1/pairing/${req.id}/approve`);
    await started;
    node = { id, client: c, hello: await started, tokens: tok };
    await op.close();
    for (const role of ['admin', 'operator', 'viewer']) {
      await t.api('POST', '/api/v1/users', { username: `u-${role}`, password: `password for ${role}`, role });
      tokens[role] = (await t.api('POST', '/api/v1/auth/login', { username: `u-${role}`, password: `password for ${role}` }, '')).body.data.access_token;
    }
  });
  afterAll(async () => {
    await node.client.close();
    await t.close();
    cleanup(t.dataDir);
  });

  for (const role of ['admin', 'operator', 'viewer']) {
    it(`${role}: allowed route classes succeed, the others are 403 FORBIDDEN`, async () => {
      for (const r of ROUTES) {
        const body = r.body ? JSON.parse(JSON.stringify(r.body).replace('NAME', role)) : undefined;
        const res = await fetch(`${t.url}${r.path}`, {
          method: r.method,
          headers: { authorization: `Bearer ${tokens[role]}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        const allowed = ROLE_NEEDS[role]?.includes(r.need);
        if (allowed) expect(res.status, `${role} ${r.cls}`).toBeLessThan(400 + (r.cls === 'vault admin' ? 100 : 0));
        else {
          expect(res.status, `${role} ${r.cls}`).toBe(403);
          expect(((await res.json()) as any).error.code).toBe('FORBIDDEN');
        }
      }
    });
  }

  it('pairing spam from one address hits the limit, audited', async () => {
    const clients: HiveClient[] = [];
    const errors: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = new HiveClient({
        url: t.wsUrl,
        role: 'node',
        identity: generateIdentity(),
        tokenStore: memTokens().store,
        client: { name: 'spam', version: '0' },
        reconnect: false,
      });
      c.on('fatal', (e) => errors.push(e.code));
      const pending = new Promise<string>((resolve) => {
        c.once('pairing', () => resolve('pending'));
        c.once('disconnected', () => resolve('closed'));
      });
      void c.start().catch(() => {});
      clients.push(c);
      expect(await pending).toBe(i < 3 ? 'pending' : 'closed');
    }
    const audit = await t.api('GET', '/api/v1/audit/logs?action=pairing.rate_limited');
    expect(audit.body.data.length).toBe(2);
    const pendingList = await t.api('GET', '/api/v1/pairing?status=pending');
    expect(pendingList.body.data).toHaveLength(3);
    await Promise.all(clients.map((c) => c.close()));
  });
});
