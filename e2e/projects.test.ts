import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, operator, runCli, startHub, type TestHub } from './helpers.js';

describe('projects: per-project roles isolate list, get, exec, jobs, approvals and audit', () => {
  let t: TestHub;
  const nodes: Awaited<ReturnType<typeof simNode>>[] = [];
  let blueKey = '';
  let blueKeyId = '';
  let reviewerKey = '';
  beforeAll(async () => {
    t = await startHub();
    nodes.push(await simNode(t.wsUrl, 'blue-1', { tags: ['x'] }), await simNode(t.wsUrl, 'red-1', { tags: ['x'] }));
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    for (const p of ['blue', 'red']) expect((await runCli(['project', 'add', p], env)).code).toBe(0);
    expect((await t.api('PUT', '/api/v1/satellites/blue-1', { project: 'blue' })).body.data.project).toBe('blue');
    expect((await t.api('PUT', '/api/v1/satellites/red-1', { project: 'red' })).body.data.project).toBe('red');
    const k = (await t.api('POST', '/api/v1/apikeys', { name: 'blue-team', scopes: ['operator.read', 'operator.write', 'operator.approvals'] })).body.data;
    blueKey = k.key;
    blueKeyId = k.id;
    const g = await runCli(['permission', 'grant', '--principal', `api_key:${k.id}`, '--project', 'blue', '--role', 'member'], env);
    expect(g.code, g.stderr).toBe(0);
    const r = (await t.api('POST', '/api/v1/apikeys', { name: 'blue-review', scopes: ['operator.read', 'operator.write', 'operator.approvals'] })).body.data;
    reviewerKey = r.key;
    await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: r.id, project: 'blue', role: 'reviewer' });
    // some activity on red that blue must never see
    expect((await t.api('POST', '/api/v1/satellites/red-1/exec', { command: 'system.info' })).status).toBe(200);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.client.close()));
    await t.close();
    cleanup(t.dataDir);
  });

  it('lists and gets only its own project, without leaking other rows or counts', async () => {
    const list = await t.api('GET', '/api/v1/satellites', undefined, blueKey);
    expect(list.body.data.map((s: any) => s.slug)).toEqual(['blue-1']);
    expect(list.body.pagination.total).toBe(1);
    const other = await t.api('GET', '/api/v1/satellites/red-1', undefined, blueKey);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('SATELLITE_NOT_FOUND');
    const projects = await t.api('GET', '/api/v1/projects', undefined, blueKey);
    expect(projects.body.data.map((p: any) => p.id)).toEqual(['blue']);
    expect((await t.api('GET', '/api/v1/projects')).body.data.map((p: any) => p.id)).toEqual(['blue', 'default', 'red']);
  });

  it('exec only inside the project; a tag fan-out reaches only its satellites; reviewers cannot exec', async () => {
    expect((await t.api('POST', '/api/v1/satellites/blue-1/exec', { command: 'system.info' }, blueKey)).status).toBe(200);
    const red = await t.api('POST', '/api/v1/satellites/red-1/exec', { command: 'system.info' }, blueKey);
    expect(red.status).toBe(404);
    const fan = await t.api('POST', '/api/v1/exec', { target: { tag: 'x' }, command: 'system.info' }, blueKey);
    expect(fan.body.data.results.map((r: any) => r.slug)).toEqual(['blue-1']);
    const rev = await t.api('POST', '/api/v1/satellites/blue-1/exec', { command: 'system.info' }, reviewerKey);
    expect(rev.status).toBe(403);
    expect(rev.body.error.code).toBe('FORBIDDEN');
    expect((await t.api('GET', '/api/v1/satellites/blue-1', undefined, reviewerKey)).status).toBe(200);
  });

  it('jobs and audit queries show only its project (and its own actions)', async () => {
    const jobs = await t.api('GET', '/api/v1/commands?per_page=100', undefined, blueKey);
    const sats = new Set(jobs.body.data.map((j: any) => j.satellite_id));
    expect([...sats]).toEqual([nodes[0]?.id.deviceId]);
    const all = await t.api('GET', '/api/v1/commands?per_page=100');
    const redJob = all.body.data.find((j: any) => j.satellite_id === nodes[1]?.id.deviceId);
    expect((await t.api('GET', `/api/v1/commands/${redJob.id}`, undefined, blueKey)).status).toBe(404);
    // audit needs operator.admin: give the blue key an admin role in its project via a new admin-scoped key
    const adminBlue = (await t.api('POST', '/api/v1/apikeys', { name: 'blue-admin', scopes: ['operator.admin'] })).body.data;
    await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: adminBlue.id, project: 'blue', role: 'admin' });
    const audit = await t.api('GET', '/api/v1/audit/logs?per_page=500', undefined, adminBlue.key);
    const targets = new Set(audit.body.data.map((e: any) => e.target?.id).filter(Boolean));
    expect(targets.has(nodes[1]?.id.deviceId)).toBe(false);
    expect(targets.has(nodes[0]?.id.deviceId)).toBe(true);
    // a project admin cannot manage projects, permissions or move satellites
    expect(
      (await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: blueKeyId, project: 'red', role: 'admin' }, adminBlue.key)).status,
    ).toBe(403);
    expect((await t.api('PUT', '/api/v1/satellites/blue-1', { project: 'red' }, adminBlue.key)).status).toBe(403);
  });

  it('the last project role cannot be revoked (that would widen access); revocations are audited', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const last = await runCli(['permission', 'revoke', '--principal', `api_key:${blueKeyId}`, '--project', 'blue'], env);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('CONFLICT');
    await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: blueKeyId, project: 'red', role: 'reviewer' });
    const res = await runCli(['permission', 'revoke', '--principal', `api_key:${blueKeyId}`, '--project', 'blue'], env);
    expect(res.code, res.stderr).toBe(0);
    const list = await t.api('GET', '/api/v1/satellites', undefined, blueKey);
    expect(list.body.data.map((s: any) => s.slug)).toEqual(['red-1']);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=permission.*');
    expect(audit.body.data.map((e: any) => e.action)).toEqual(expect.arrayContaining(['permission.granted', 'permission.revoked']));
    const bad = await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: 'x', project: 'nope', role: 'member' });
    expect(bad.body.error.code).toBe('NOT_FOUND');
  });

  it('a key without any project role works in the default project only', async () => {
    const plain = (await t.api('POST', '/api/v1/apikeys', { name: 'plain', scopes: ['operator.read'] })).body.data.key;
    expect((await t.api('GET', '/api/v1/satellites', undefined, plain)).body.pagination.total).toBe(0);
    expect((await t.api('GET', '/api/v1/projects', undefined, plain)).body.data.map((p: any) => p.id)).toEqual(['default']);
  });

  it('AI identities join projects only by permission, with one hashed, expiring token', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const add = await runCli(['ai', 'add', 'claude-reviewer', '--nickname', 'Rev', '--expertise', 'go,sql', '--ai-version', '4', '--json'], env);
    expect(add.code, add.stderr).toBe(0);
    const id = JSON.parse(add.stdout).id as string;
    const tok = await runCli(['token', 'create', '--ai-id', 'claude-reviewer', '--expires', '30d', '--json'], env);
    expect(tok.code, tok.stderr).toBe(0);
    const token = JSON.parse(tok.stdout).token as string;
    expect(token).toMatch(/^hai_/);
    // no project yet: sees nothing
    expect((await t.api('GET', '/api/v1/satellites', undefined, token)).body.pagination.total).toBe(0);
    await runCli(['permission', 'grant', '--principal', `ai:${id}`, '--project', 'red', '--role', 'member'], env);
    expect((await t.api('GET', '/api/v1/satellites', undefined, token)).body.data.map((s: any) => s.slug)).toEqual(['red-1']);
    const run = await t.api('POST', '/api/v1/satellites/red-1/exec', { command: 'system.info' }, token);
    expect(run.status).toBe(200);
    const audit = await t.api('GET', `/api/v1/audit/logs?actor_id=${id}&action=command.exec`);
    expect(audit.body.data[0].actor).toMatchObject({ type: 'ai', name: 'claude-reviewer' });
    // a new token replaces the old one
    const again = JSON.parse((await runCli(['token', 'create', '--ai-id', id, '--json'], env)).stdout).token;
    expect((await t.api('GET', '/api/v1/satellites', undefined, token)).status).toBe(401);
    expect((await t.api('GET', '/api/v1/satellites', undefined, again)).status).toBe(200);
    expect(JSON.stringify((await t.api('GET', '/api/v1/audit/logs?action=ai_identity.*')).body)).not.toContain(again);
  });

  it('a restricted operator connection hears only events about its projects', async () => {
    const k = (await t.api('POST', '/api/v1/apikeys', { name: 'blue-watch', scopes: ['operator.read'] })).body.data;
    await t.api('POST', '/api/v1/permissions', { principal_type: 'api_key', principal_id: k.id, project: 'blue', role: 'reviewer' });
    const blue = await operator(t, k.key);
    const all = await operator(t);
    await t.api('PUT', '/api/v1/satellites/red-1', { tags: ['x', 'red-touched'] });
    await t.api('PUT', '/api/v1/satellites/blue-1', { tags: ['x', 'blue-touched'] });
    // the unrestricted admin sees both updates, in order; the blue watcher only the blue one
    await all.waitEvent('satellite:updated', (p) => p.slug === 'blue-1');
    const seen = await blue.waitEvent('satellite:updated', (p) => p.slug === 'blue-1');
    expect(seen.tags).toContain('blue-touched');
    // Events arrive in order on one connection: a red event would already be in the buffer.
    await expect(blue.waitEvent('satellite:updated', (p) => p.slug === 'red-1', 1)).rejects.toThrow(/timed out/);
    await blue.close();
    await all.close();
  });

  it('`hive apikey create --project` makes a key restricted from its first use', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const res = await runCli(['apikey', 'create', 'red-ci', '--scopes', 'operator.read,operator.write', '--project', 'red', '--expires', '30d', '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const key = JSON.parse(res.stdout).key;
    expect((await t.api('GET', '/api/v1/satellites', undefined, key)).body.data.map((s: any) => s.slug)).toEqual(['red-1']);
    const bad = await t.api('POST', '/api/v1/apikeys', { name: 'nowhere', scopes: ['operator.read'], project: 'no-such-project' });
    expect(bad.body.error.code).toBe('NOT_FOUND');
    const keys = (await t.api('GET', '/api/v1/apikeys')).body.data;
    expect(keys.find((k: any) => k.name === 'nowhere').revoked_at).toBeTruthy();
  });
});
