import { HiveClient } from '@hive/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, runCli, startHub, type TestHub } from './helpers.js';

describe('users: login, JWT, refresh rotation, roles, brute-force limit', () => {
  let t: TestHub;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const call = async (method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(`${t.url}${p}`, {
      method,
      headers: { ...bearer(token), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const login = async (username: string, password: string) => t.api('POST', '/api/v1/auth/login', { username, password }, '');

  beforeAll(async () => {
    t = await startHub({ overrides: { auth: { password_kdf_log_n: 12, login_max_failures: 3 } } });
  });
  afterAll(async () => {
    await t.close();
    cleanup(t.dataDir);
  });

  it('first start creates admin with a one-time password that must be changed', async () => {
    const pw = t.hub.generatedAdminPassword as string;
    expect(pw).toMatch(/^[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){3}$/);
    const s = await login('admin', pw);
    expect(s.status).toBe(200);
    expect(s.body.data).toMatchObject({ token_type: 'Bearer', user: { username: 'admin', role: 'admin', must_change_password: true } });
    const me = await call('GET', '/api/v1/auth/me', s.body.data.access_token);
    expect(me.body.data.username).toBe('admin');
    const changed = await call('POST', '/api/v1/auth/password', s.body.data.access_token, { current_password: pw, new_password: 'a much better passphrase' });
    expect(changed.body.data.must_change_password).toBe(false);
    expect((await login('admin', pw)).status).toBe(401);
    expect((await login('admin', 'a much better passphrase')).status).toBe(200);
    // nothing of the passwords in logs or audit
    const audit = JSON.stringify((await t.api('GET', '/api/v1/audit/logs?per_page=500')).body);
    for (const blob of [audit, t.logs.join('\n')]) {
      expect(blob).not.toContain(pw);
      expect(blob).not.toContain('a much better passphrase');
    }
  });

  it('roles map to scopes: viewer reads, cannot write; operator runs commands; admin manages users', async () => {
    const node = await simNode(t.wsUrl, 'u-node');
    const admin = (await login('admin', 'a much better passphrase')).body.data.access_token;
    expect((await call('POST', '/api/v1/users', admin, { username: 'vera', password: 'viewer password 1', role: 'viewer' })).status).toBe(201);
    expect((await call('POST', '/api/v1/users', admin, { username: 'otto', password: 'operator password 1', role: 'operator' })).status).toBe(201);
    const dup = await call('POST', '/api/v1/users', admin, { username: 'otto', password: 'operator password 1', role: 'operator' });
    expect(dup.body.error.code).toBe('CONFLICT');
    const weak = await call('POST', '/api/v1/users', admin, { username: 'weak', password: 'short' });
    expect(weak.body.error.code).toBe('INVALID_PARAMETERS');
    const viewer = (await login('vera', 'viewer password 1')).body.data.access_token;
    const operatorTok = (await login('otto', 'operator password 1')).body.data.access_token;
    expect((await call('GET', '/api/v1/satellites', viewer)).status).toBe(200);
    const denied = await call('POST', '/api/v1/satellites/u-node/exec', viewer, { command: 'system.info' });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('FORBIDDEN');
    expect((await call('POST', '/api/v1/satellites/u-node/exec', operatorTok, { command: 'system.info' })).status).toBe(200);
    expect((await call('GET', '/api/v1/users', operatorTok)).status).toBe(403);
    expect((await call('GET', '/api/v1/audit/logs', operatorTok)).status).toBe(403);
    // a JWT works on the WebSocket too, with the role's scopes
    const ws = new HiveClient({ url: t.wsUrl, role: 'operator', apiKey: viewer, client: { name: 'jwt-op', version: '0' }, reconnect: false });
    const hello = await ws.start();
    expect(hello.scopes).toEqual(['operator.read']);
    await expect(ws.request('exec', { satellite: 'u-node', command: 'system.info' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await ws.close();
    // demotion takes effect on the next request, and the audit names the user
    await call('PUT', '/api/v1/users/otto', admin, { role: 'viewer' });
    expect((await call('POST', '/api/v1/satellites/u-node/exec', operatorTok, { command: 'system.info' })).status).toBe(403);
    const audit = (await t.api('GET', '/api/v1/audit/logs?action=command.exec')).body.data;
    expect(audit.some((e: any) => e.actor.type === 'user' && e.actor.name === 'otto')).toBe(true);
    await node.client.close();
  });

  it('refresh tokens rotate; reusing a used one revokes the whole family; logout revokes', async () => {
    const s1 = (await login('vera', 'viewer password 1')).body.data;
    const s2 = (await t.api('POST', '/api/v1/auth/refresh', { refresh_token: s1.refresh_token }, '')).body.data;
    expect(s2.refresh_token).not.toBe(s1.refresh_token);
    const reuse = await t.api('POST', '/api/v1/auth/refresh', { refresh_token: s1.refresh_token }, '');
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.message).toMatch(/already used/);
    // the legitimate successor died with the family
    expect((await t.api('POST', '/api/v1/auth/refresh', { refresh_token: s2.refresh_token }, '')).status).toBe(401);
    const s3 = (await login('vera', 'viewer password 1')).body.data;
    await t.api('POST', '/api/v1/auth/logout', { refresh_token: s3.refresh_token }, '');
    expect((await t.api('POST', '/api/v1/auth/refresh', { refresh_token: s3.refresh_token }, '')).status).toBe(401);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=auth.refresh_reuse');
    expect(audit.body.data).toHaveLength(1);
    // a forged or garbage bearer is refused
    expect((await call('GET', '/api/v1/auth/me', `${s3.access_token.slice(0, -4)}AAAA`)).status).toBe(401);
  });

  it('brute force on login hits the limit, audited', async () => {
    for (let i = 0; i < 3; i++) expect((await login('otto', `wrong ${i}`)).status).toBe(401);
    const limited = await login('otto', 'operator password 1');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    const audit = (await t.api('GET', '/api/v1/audit/logs?action=auth.login&result=failure')).body.data;
    expect(audit.length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(audit)).not.toContain('wrong 1');
  });

  it('`hive user` manages users from the CLI', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, HIVE_USER_PASSWORD: 'cli created password' };
    const add = await runCli(['user', 'add', 'carl', '--role', 'operator'], env);
    expect(add.code, add.stderr).toBe(0);
    const list = await runCli(['user', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).map((u: any) => u.username)).toContain('carl');
    expect((await login('carl', 'cli created password')).status).toBe(200);
    expect((await runCli(['user', 'remove', 'carl'], env)).code).toBe(0);
    expect((await login('carl', 'cli created password')).status).toBe(401);
  });

  it('client credentials (seed 000 §4): client_id + secret → 1 h JWT with role and allowed tools; no vault but status, no admin', async () => {
    const created = await t.api('POST', '/api/v1/clients', { client_id: 'laptop-1', role: 'desktop', allowed_tools: ['chat_smart'] });
    expect(created.status).toBe(201);
    const secret = created.body.data.client_secret as string;
    const tok = await t.api('POST', '/v1/auth/client', { client_id: 'laptop-1', client_secret: secret }, '');
    expect(tok.body.data).toMatchObject({ token_type: 'Bearer', expires_in: 3600, role: 'desktop', allowed_tools: ['chat_smart'] });
    const jwt = tok.body.data.access_token as string;
    expect((await call('GET', '/api/v1/satellites', jwt)).status).toBe(200);
    expect((await call('GET', '/api/v1/vault/status', jwt)).status).toBe(200);
    expect((await call('POST', '/api/v1/vault/init', jwt, { password: 'whatever password' })).status).toBe(403);
    expect((await call('GET', '/api/v1/users', jwt)).status).toBe(403);
    const bad = await t.api('POST', '/api/v1/auth/client', { client_id: 'laptop-1', client_secret: 'wrong-secret-value' }, '');
    expect(bad.status).toBe(401);
    await t.api('DELETE', '/api/v1/clients/laptop-1');
    expect((await call('GET', '/api/v1/satellites', jwt)).status).toBe(401);
    const audit = JSON.stringify((await t.api('GET', '/api/v1/audit/logs?action=auth.client')).body.data);
    expect(audit).not.toContain(secret);
    expect((await t.api('GET', '/api/v1/clients')).body.data[0]).toMatchObject({ client_id: 'laptop-1', role: 'desktop' });
  });
});
