import { afterEach, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { backOnline, cleanup, operator, startHub, type TestHub, tempDir } from './helpers.js';

describe('central approvals (real hub, SDK nodes)', () => {
  const hubs: TestHub[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    for (const h of hubs.splice(0)) await h.close();
  });

  it('broadcasts approval.requested to every approver; first decision wins, the late one gets ALREADY_RESOLVED; the command runs only after approval', async () => {
    const t = await startHub();
    hubs.push(t);
    closers.push(async () => cleanup(t.dataDir));
    const ran: string[] = [];
    const node = await simNode(t.wsUrl, 'gw-1', {
      handler: async (_m, p) => {
        ran.push((p as { command: string }).command);
        return { exitCode: 0, signal: null, stdout: 'rebooting\n', stderr: '', stdoutTruncated: false, stderrTruncated: false, durationMs: 1 };
      },
      commands: ['system.run', 'power'],
    });
    closers.push(() => node.client.close());
    const a = await operator(t);
    const b = await operator(t);
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    const pending = t.api('POST', '/api/v1/satellites/gw-1/exec', { command: 'system.run', params: { argv: ['reboot'] } });
    const [ra, rb] = await Promise.all([a.waitEvent('approval.requested'), b.waitEvent('approval.requested')]);
    expect(ra.id).toBe(rb.id);
    expect(ra).toMatchObject({ command: 'system.run', status: 'pending', reason: 'system.run outside the approval-free allowlist' });
    expect(ran).toEqual([]);
    const job = await t.api('GET', `/api/v1/commands/${ra.job_id}`);
    expect(job.body.data.state).toBe('pending_approval');
    const [first, second] = await Promise.allSettled([
      a.request('approval.resolve', { id: ra.id, decision: 'approve' }),
      b.request('approval.resolve', { id: ra.id, decision: 'deny' }),
    ]);
    const outcomes = [first, second].map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code));
    expect(outcomes).toEqual(['ok', 'ALREADY_RESOLVED']);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.data.state).toBe('succeeded');
    expect(ran).toEqual(['system.run']);
    const resolved = await b.waitEvent('approval.resolved', (p) => p.id === ra.id);
    expect(resolved.status).toBe('approved');
    const audit = await t.api('GET', '/api/v1/audit/logs?action=approval.*');
    expect(audit.body.data.map((e: any) => `${e.action}:${e.result}`).sort()).toEqual([
      'approval.approved:success',
      'approval.deny:failure',
      'approval.requested:success',
    ]);
  });

  it('no decision within the timeout denies with reason timeout; REST answers APPROVAL_DENIED', async () => {
    // even a rule saying otherwise cannot waive approval for power
    const t = await startHub({ overrides: { approvals: { timeout: 1500, rules: [{ command: 'power', require: false }] } } });
    hubs.push(t);
    closers.push(async () => cleanup(t.dataDir));
    const ran: string[] = [];
    const node = await simNode(t.wsUrl, 'gw-2', {
      commands: ['power'],
      handler: async () => {
        ran.push('power');
        return {};
      },
    });
    closers.push(() => node.client.close());
    const res = await t.api('POST', '/api/v1/satellites/gw-2/exec', { command: 'power', params: { action: 'reboot' } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('APPROVAL_DENIED');
    expect(res.body.error.message).toMatch(/timed out/);
    expect(ran).toEqual([]);
    const approvals = await t.api('GET', '/api/v1/approvals?status=expired');
    expect(approvals.body.data[0]).toMatchObject({ command: 'power', resolution: 'timeout' });
    const job = await t.api('GET', `/api/v1/commands/${res.body.error.details.job_id}`);
    expect(job.body.data.state).toBe('denied');
  });

  it('a pending approval survives a hub restart and can be approved afterwards; async mode returns at once', async () => {
    const dataDir = tempDir();
    closers.push(async () => cleanup(dataDir));
    const t1 = await startHub({ dataDir });
    const n1 = await simNode(t1.wsUrl, 'gw-3', { commands: ['system.run'] });
    const res = await t1.api('POST', '/api/v1/satellites/gw-3/exec?async=true', { command: 'system.run', params: { argv: ['touch', '/tmp/x'] } });
    expect(res.status).toBe(202);
    expect(res.body.data.state).toBe('pending_approval');
    const jobId = res.body.data.id;
    await t1.close();
    const t2 = await startHub({ dataDir, port: t1.port, adminKey: t1.adminKey });
    hubs.push(t2);
    closers.push(() => n1.client.close());
    const op = await operator(t2);
    closers.push(() => op.close());
    // the node comes back on its own (reconnect with backoff), maybe before this operator subscribed
    await backOnline(t2, op, n1.id.deviceId);
    const pending = await t2.api('GET', '/api/v1/approvals?status=pending');
    expect(pending.body.data).toHaveLength(1);
    expect((await t2.api('GET', `/api/v1/commands/${jobId}`)).body.data.state).toBe('pending_approval');
    const ok = await t2.api('POST', `/api/v1/approvals/${pending.body.data[0].id}/approve`, { reason: 'looks fine' });
    expect(ok.status).toBe(200);
    await op.waitEvent('job:updated', (p) => p.id === jobId && p.state === 'succeeded');
    const job = await t2.api('GET', `/api/v1/commands/${jobId}`);
    expect(job.body.data.result.stdout).toBe('/tmp/x\n');
  });

  it('cancel withdraws a pending approval', async () => {
    const t = await startHub();
    hubs.push(t);
    closers.push(async () => cleanup(t.dataDir));
    const node = await simNode(t.wsUrl, 'gw-4', { commands: ['system.run'] });
    closers.push(() => node.client.close());
    const res = await t.api('POST', '/api/v1/satellites/gw-4/exec', { command: 'system.run', params: { argv: ['rm', 'x'] }, async: true });
    const cancelled = await t.api('POST', `/api/v1/commands/${res.body.data.id}/cancel`);
    expect(cancelled.body.data.state).toBe('cancelled');
    const apr = await t.api('GET', `/api/v1/approvals/${res.body.data.approval_id}`);
    expect(apr.body.data).toMatchObject({ status: 'denied', resolution: 'job cancelled' });
    const late = await t.api('POST', `/api/v1/approvals/${res.body.data.approval_id}/approve`);
    expect(late.body.error.code, JSON.stringify(late.body)).toBe('ALREADY_RESOLVED');
  });

  it('a fix proposed by logs.analyze runs only as a separate, approved job', async () => {
    const t = await startHub();
    hubs.push(t);
    closers.push(async () => cleanup(t.dataDir));
    const ran: string[] = [];
    const node = await simNode(t.wsUrl, 'web-fix', {
      commands: ['logs.analyze', 'system.run'],
      handler: async (_m, p) => {
        const inv = p as { command: string; params: { argv?: string[] } };
        if (inv.command === 'logs.analyze') {
          return {
            source: 'file',
            scanned: 10,
            findings: [
              {
                rule: 'service-failed',
                category: 'service',
                severity: 'error',
                suggestion: 'restart nginx',
                count: 1,
                samples: ['nginx.service failed'],
                proposedFix: {
                  kind: 'fix',
                  command: 'system.run',
                  params: { argv: ['systemctl', 'restart', 'nginx'] },
                  description: 'restart',
                  allowedByLocalPolicy: true,
                },
              },
            ],
            summary: { total: 1, bySeverity: { error: 1 }, byCategory: { service: 1 } },
          };
        }
        ran.push((inv.params.argv ?? []).join(' '));
        return { exitCode: 0, signal: null, stdout: '', stderr: '', stdoutTruncated: false, stderrTruncated: false, durationMs: 1 };
      },
    });
    closers.push(() => node.client.close());
    const analysis = await t.api('POST', '/api/v1/satellites/web-fix/exec', { command: 'logs.analyze', params: { source: 'file', path: '/var/log/x.log' } });
    expect(analysis.status, JSON.stringify(analysis.body)).toBe(200);
    const fix = await t.api('POST', `/api/v1/commands/${analysis.body.data.id}/fixes/0`);
    expect(fix.status).toBe(202);
    expect(fix.body.data).toMatchObject({ state: 'pending_approval', source: 'auto_fix', command: 'system.run' });
    const apr = await t.api('GET', `/api/v1/approvals/${fix.body.data.approval_id}`);
    expect(apr.body.data.reason).toBe('proposed fix from log analysis');
    expect(ran).toEqual([]);
    const op = await operator(t);
    closers.push(() => op.close());
    await t.api('POST', `/api/v1/approvals/${fix.body.data.approval_id}/approve`);
    await op.waitEvent('job:updated', (p) => p.id === fix.body.data.id && p.state === 'succeeded');
    expect(ran).toEqual(['systemctl restart nginx']);
    const none = await t.api('POST', `/api/v1/commands/${analysis.body.data.id}/fixes/5`);
    expect(none.status).toBe(404);
  });

  it('one requester cannot flood approvers: pending approvals per requester are capped (RATE_LIMITED), audited', async () => {
    const t = await startHub({ overrides: { approvals: { max_pending_per_requester: 2 } } });
    hubs.push(t);
    closers.push(async () => cleanup(t.dataDir));
    const node = await simNode(t.wsUrl, 'flood', { commands: ['system.run'] });
    closers.push(() => node.client.close());
    const ask = () => t.api('POST', '/api/v1/satellites/flood/exec', { command: 'system.run', params: { argv: ['rm', 'x'] }, async: true });
    expect((await ask()).status).toBe(202);
    expect((await ask()).status).toBe(202);
    const third = await ask();
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('RATE_LIMITED');
    // the refused job does not linger in a non-final state
    const waiting = await t.api('GET', '/api/v1/commands?state=pending_approval');
    expect(waiting.body.pagination.total).toBe(2);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=approval.rate_limited');
    expect(audit.body.data).toHaveLength(1);
  });
});
