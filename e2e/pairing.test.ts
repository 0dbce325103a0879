import { afterEach, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, runCli, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

describe('pairing (real hub, real agent processes)', () => {
  const hubs: TestHub[] = [];
  const agents: AgentProc[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill()));
    for (const h of hubs.splice(0)) await h.close();
    for (const d of dirs.splice(0)) cleanup(d);
  });

  it('pairs silently over loopback, audited as auto-approved, and lists the satellite online', async () => {
    const t = await startHub();
    hubs.push(t);
    dirs.push(t.dataDir);
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, `${t.dataDir}/agent`, ['--name', 'Web Server 01', '--tags', 'web,eu']);
    agents.push(agent);
    const online = await op.waitEvent('satellite:online');
    expect(online.slug).toBe('web-server-01');
    const list = await t.api('GET', '/api/v1/satellites');
    expect(list.status).toBe(200);
    expect(list.body.success).toBe(true);
    expect(list.body.pagination.total).toBe(1);
    const sat = list.body.data[0];
    expect(sat).toMatchObject({ status: 'online', name: 'Web Server 01', tags: ['eu', 'web'], roles: ['node'] });
    expect(sat.id).toMatch(/^[0-9a-f]{64}$/);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=pairing.auto_approved');
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0].target.id).toBe(sat.id);
    await op.close();
  });

  it('non-loopback policy: the device waits, `hive pairing approve` completes it without restart', async () => {
    const t = await startHub({ overrides: { pairing: { auto_approve_loopback: false } } });
    hubs.push(t);
    dirs.push(t.dataDir);
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, `${t.dataDir}/agent`, ['--name', 'edge-7']);
    agents.push(agent);
    const requested = await op.waitEvent('pairing:requested');
    await agent.waitLine((l) => l.msg === 'waiting for an operator to approve pairing');
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const listed = await runCli(['pairing', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    const pending = JSON.parse(listed.stdout);
    expect(pending.map((p: any) => p.id)).toEqual([requested.id]);
    // Nothing is listed as a satellite before approval.
    expect((await t.api('GET', '/api/v1/satellites')).body.pagination.total).toBe(0);
    const approved = await runCli(['pairing', 'approve', requested.id], env);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approved');
    await agent.waitLine((l) => l.msg === 'connected');
    const online = await op.waitEvent('satellite:online');
    expect(online.slug).toBe('edge-7');
    // A second decision is refused.
    const again = await runCli(['pairing', 'reject', requested.id], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ALREADY_RESOLVED');
    const audit = await t.api('GET', '/api/v1/audit/logs?action=pairing.*');
    expect(audit.body.data.map((e: any) => e.action).sort()).toEqual(['pairing.approved', 'pairing.requested']);
    const tokenAudit = await t.api('GET', '/api/v1/audit/logs?action=device.token_issued');
    expect(tokenAudit.body.data).toHaveLength(1);
    expect(JSON.stringify(tokenAudit.body.data)).not.toMatch(/hdt_[A-Za-z0-9]{12}_/);
    await op.close();
  });

  it('reject closes the waiting connection with PAIRING_REJECTED and the agent stops instead of looping', async () => {
    const t = await startHub({ overrides: { pairing: { auto_approve_loopback: false } } });
    hubs.push(t);
    dirs.push(t.dataDir);
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, tempDir());
    agents.push(agent);
    const requested = await op.waitEvent('pairing:requested');
    const res = await t.api('POST', `/api/v1/pairing/${requested.id}/reject`);
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('rejected');
    const exit = await agent.exited;
    expect(exit.code).toBe(1);
    expect(agent.stderr.join('')).toContain('PAIRING_REJECTED');
    expect((await t.api('GET', '/api/v1/satellites')).body.pagination.total).toBe(0);
    await op.close();
  });
});
