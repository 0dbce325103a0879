import { createApp, routeTables } from '@hive/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startHub, type TestHub } from './helpers.js';

describe('access control: every route declares a scope; denials are audited; per-key rate limit', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ overrides: { limits: { api_requests_per_minute: 60 } } });
  });
  afterAll(async () => {
    await t.close();
    cleanup(t.dataDir);
  });

  it('walks the route table: no /api route without a scope; only login/refresh/logout are public', () => {
    const table = routeTables.get(t.hub.app) ?? [];
    const api = table.filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD');
    expect(api.length).toBeGreaterThan(40);
    expect(api.filter((r) => !r.scope)).toEqual([]);
    expect(
      api
        .filter((r) => r.scope === 'public')
        .map((r) => r.url)
        .sort(),
    ).toEqual(['/api/v1/auth/client', '/api/v1/auth/login', '/api/v1/auth/logout', '/api/v1/auth/refresh']);
  });

  it('an /api route without a scope cannot even be registered', async () => {
    const pino = (await import('pino')).default;
    const app = createApp({ logger: pino({ level: 'silent' }), auth: { verifyApiKey: async () => Promise.reject(new Error('unused')) } });
    expect(() => app.get('/api/v1/naked', async () => 'x')).toThrow(/declares no scope/);
    expect(() => app.get('/api/v1/dressed', { config: { scope: 'operator.read' } }, async () => 'x')).not.toThrow();
  });

  it('denied requests are audited with who, what and why; no key material in the entry', async () => {
    const created = await t.api('POST', '/api/v1/apikeys', { name: 'ro', scopes: ['operator.read'] });
    const ro = created.body.data.key as string;
    expect((await t.api('DELETE', '/api/v1/satellites/x', undefined, ro)).status).toBe(403);
    expect((await t.api('GET', '/api/v1/satellites', undefined, 'hive_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB')).status).toBe(401);
    const audit = (await t.api('GET', '/api/v1/audit/logs?action=access.denied')).body.data;
    const forbidden = audit.find((e: any) => e.details.code === 'FORBIDDEN');
    expect(forbidden).toMatchObject({
      actor: { id: created.body.data.id, name: 'ro' },
      details: { method: 'DELETE', route: '/api/v1/satellites/:id', required: 'operator.write' },
    });
    expect(audit.find((e: any) => e.details.code === 'AUTH_INVALID').actor.id).toBe('AAAAAAAAAAAA');
    expect(JSON.stringify(audit)).not.toContain(ro);
  });

  it('a credential over its request rate gets RATE_LIMITED with Retry-After; others are unaffected', async () => {
    const created = await t.api('POST', '/api/v1/apikeys', { name: 'busy', scopes: ['operator.read'] });
    const key = created.body.data.key as string;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await t.api('GET', '/api/v1/tags', undefined, key)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses[11]).toBe(429);
    const res = await fetch(`${t.url}/api/v1/tags`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await res.json()) as any).error.code).toBe('RATE_LIMITED');
    const other = await t.api('POST', '/api/v1/apikeys', { name: 'calm', scopes: ['operator.read'] });
    expect((await t.api('GET', '/api/v1/tags', undefined, other.body.data.key)).status).toBe(200);
  });
});
