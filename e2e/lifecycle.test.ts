import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateIdentity, HiveClient } from '@hive/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentProc, backOnline, cleanup, operator, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

describe('lifecycle: restarts, replacement, heartbeats, deletion, shutdown', () => {
  const hubs: TestHub[] = [];
  const agents: AgentProc[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill()));
    for (const h of hubs.splice(0)) await h.close();
    for (const d of dirs.splice(0)) cleanup(d);
  });

  it('after a hub restart the agent reconnects with token + signature as the same satellite', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const t1 = await startHub({ dataDir });
    // Subscribed before the agent starts: its online event cannot come first.
    const op1 = await operator(t1);
    const agent = spawnAgent(t1.wsUrl, path.join(dataDir, 'agent'), ['--name', 'steady']);
    agents.push(agent);
    const first = await op1.waitEvent('satellite:online');
    await op1.close();
    const port = t1.port;
    await t1.close();
    await agent.waitLine((l) => l.msg === 'disconnected' && l.code === 1012);
    const t2 = await startHub({ dataDir, port, adminKey: t1.adminKey });
    hubs.push(t2);
    const op2 = await operator(t2);
    // The agent may be back before this operator has subscribed (a CI run timed out here waiting
    // for an event that had come and gone).
    await backOnline(t2, op2, first.id);
    const list = await t2.api('GET', '/api/v1/satellites');
    expect(list.body.pagination.total).toBe(1);
    expect(list.body.data[0]).toMatchObject({ id: first.id, slug: 'steady', status: 'online' });
    // Token reuse, not a second pairing.
    const pairings = await t2.api('GET', '/api/v1/pairing?status=approved');
    expect(pairings.body.data).toHaveLength(1);
    const tokens = await t2.api('GET', '/api/v1/audit/logs?action=device.token_issued');
    expect(tokens.body.data).toHaveLength(1);
    await op2.close();
  });

  it('a second live connection of the same device and role replaces the first: one row, still online', async () => {
    const t = await startHub();
    hubs.push(t);
    dirs.push(t.dataDir);
    const state = path.join(t.dataDir, 'agent');
    const op = await operator(t);
    const a1 = spawnAgent(t.wsUrl, state, ['--name', 'twin']);
    agents.push(a1);
    const sat = await op.waitEvent('satellite:online');
    const a2 = spawnAgent(t.wsUrl, state, ['--name', 'twin']);
    agents.push(a2);
    await a2.waitLine((l) => l.msg === 'connected');
    // The replaced agent is told not to reconnect (4006) and stops.
    const exit = await a1.exited;
    expect(exit.code).toBe(1);
    expect(a1.stdout.join('\n')).toContain('"code":4006');
    const list = await t.api('GET', '/api/v1/satellites');
    expect(list.body.pagination.total).toBe(1);
    expect(list.body.data[0]).toMatchObject({ id: sat.id, status: 'online' });
    const res = await t.api('POST', `/api/v1/satellites/${sat.id}/exec`, { command: 'system.info', params: {} });
    expect(res.status).toBe(200);
    await op.close();
  });

  it('a node that stops answering pings is marked offline after 3 missed heartbeats', async () => {
    const t = await startHub({ overrides: { agents: { heartbeat_interval: 100 } } });
    hubs.push(t);
    dirs.push(t.dataDir);
    const op = await operator(t);
    const id = generateIdentity();
    const mem = new Map<string, string>();
    const c = new HiveClient({
      url: t.wsUrl,
      role: 'node',
      identity: id,
      reconnect: false,
      tokenStore: { get: async (r) => mem.get(r), set: async (r, v) => void (v ? mem.set(r, v) : mem.delete(r)) },
      client: { name: 'mute', version: '0', hostname: 'mute' },
      wsOptions: { autoPong: false },
    });
    const closed = new Promise<{ code: number }>((r) => c.once('disconnected', r));
    await c.start();
    await op.waitEvent('satellite:online', (p) => p.id === id.deviceId);
    const off = await op.waitEvent('satellite:offline', (p) => p.id === id.deviceId);
    expect(off.last_seen).toBeTruthy();
    expect([4008, 1006]).toContain((await closed).code);
    const sat = await t.api('GET', `/api/v1/satellites/${id.deviceId}`);
    expect(sat.body.data.status).toBe('offline');
    await op.close();
  });

  it('DELETE revokes the device token and closes its live connection; the agent must pair again', async () => {
    const t = await startHub({ overrides: { pairing: { auto_approve_loopback: false } } });
    hubs.push(t);
    dirs.push(t.dataDir);
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'agent'), ['--name', 'doomed']);
    agents.push(agent);
    const req = await op.waitEvent('pairing:requested');
    await t.api('POST', `/api/v1/pairing/${req.id}/approve`);
    const sat = await op.waitEvent('satellite:online');
    const del = await t.api('DELETE', '/api/v1/satellites/doomed');
    expect(del.status).toBe(200);
    await op.waitEvent('satellite:removed', (p) => p.id === sat.id);
    await agent.waitLine((l) => l.msg === 'disconnected' && l.code === 4007);
    // It asks to pair again instead of getting back in with the old token.
    const second = await op
      .waitEvent('pairing:requested', (p) => p.id !== req.id)
      .catch((e) => {
        throw new Error(`${e.message}\nagent stdout:\n${agent.stdout.join('\n')}\nstderr:${agent.stderr.join('')}`);
      });
    expect(second.device_id).toBe(sat.id);
    expect((await t.api('GET', '/api/v1/satellites')).body.pagination.total).toBe(0);
    const audit = await t.api('GET', `/api/v1/audit/logs?target_id=${sat.id}&action=satellite.deleted`);
    expect(audit.body.data[0].details.revoked_roles).toEqual(['node']);
    await op.close();
  });

  it('graceful shutdown ends in-flight jobs as failed with a reason and tells agents to come back', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const t = await startHub({ dataDir, overrides: { approvals: { rules: [{ command: 'system.run', require: false }] } } });
    const cfg = path.join(dataDir, 'agent.yaml');
    writeFileSync(cfg, 'system_run:\n  allow: [sleep]\n');
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, path.join(dataDir, 'agent'), ['--config', cfg]);
    agents.push(agent);
    const sat = await op.waitEvent('satellite:online');
    const running = t.api('POST', `/api/v1/satellites/${sat.id}/exec`, { command: 'system.run', params: { argv: ['sleep', '20'] }, timeout_ms: 30_000 });
    await op.waitEvent('job:updated', () => true, 2000).catch(() => undefined);
    const closing = t.close();
    const res = await running;
    await closing;
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('SHUTTING_DOWN');
    await agent.waitLine((l) => l.msg === 'disconnected' && l.code === 1012);
    await agent.waitLine((l) => l.msg === 'reconnecting');
    const t2 = await startHub({ dataDir, adminKey: t.adminKey });
    hubs.push(t2);
    const job = await t2.api('GET', `/api/v1/commands/${res.body.error.details.job_id}`);
    expect(job.body.data.state).toBe('failed');
    expect(job.body.data.error.message).toMatch(/shut down/);
    const stopped = await t2.api('GET', '/api/v1/audit/logs?action=hub.stopped');
    expect(stopped.body.data).toHaveLength(1);
  });
});
