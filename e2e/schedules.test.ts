import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, operator, runCli, startHub, type TestHub } from './helpers.js';

describe('schedules and status reports (real hub, injectable clock)', () => {
  let t: TestHub;
  let clock = new Date('2026-11-27T10:00:30Z');
  const nodes: Awaited<ReturnType<typeof simNode>>[] = [];
  beforeAll(async () => {
    t = await startHub({ build: { now: () => clock, manualSchedules: true } });
    for (const n of ['cron-a', 'cron-b']) nodes.push(await simNode(t.wsUrl, n, { tags: ['cron'] }));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.client.close()));
    await t.close();
    cleanup(t.dataDir);
  });

  it('fires at the expected minute in the given time zone, exactly once per due run', async () => {
    // 11:05 in Berlin (UTC+1 in November) is 10:05 UTC
    const res = await t.api('POST', '/api/v1/schedules', {
      name: 'five-past',
      cron: '5 11 * * *',
      timezone: 'Europe/Berlin',
      target: { tag: 'cron' },
      command: 'system.info',
      params: {},
    });
    expect(res.status).toBe(201);
    expect(res.body.data.next_run_at).toBe('2026-11-27T10:05:00.000Z');
    const sched = t.hub.services.schedules;
    expect(await sched.tick(new Date('2026-11-27T10:04:59Z'))).toEqual([]);
    const op = await operator(t);
    clock = new Date('2026-11-27T10:05:10Z');
    expect(await sched.tick(clock)).toEqual([res.body.data.id]);
    // a second tick in the same minute (or a second instance) does not fire again
    expect(await sched.tick(new Date('2026-11-27T10:05:20Z'))).toEqual([]);
    const list = await t.api('GET', '/api/v1/schedules');
    expect(list.body.data[0]).toMatchObject({ last_run_at: '2026-11-27T10:05:10.000Z', next_run_at: '2026-11-28T10:05:00.000Z' });
    const batch = list.body.data[0].last_batch_id;
    await op.waitEvent('job:updated', (p) => p.batch_id === batch && p.state === 'succeeded');
    const jobs = await t.api('GET', `/api/v1/commands?batch=${batch}`);
    expect(jobs.body.pagination.total).toBe(2);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=schedule.fired');
    expect(audit.body.data).toHaveLength(1);
    await op.close();
  });

  it('refuses bad cron expressions and unknown zones, and the CLI manages schedules', async () => {
    const bad = await t.api('POST', '/api/v1/schedules', { name: 'x', cron: 'every minute', timezone: 'UTC', target: { tag: 'cron' }, command: 'system.info' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_PARAMETERS');
    const zone = await t.api('POST', '/api/v1/schedules', {
      name: 'x',
      cron: '* * * * *',
      timezone: 'Mars/Olympus',
      target: { tag: 'cron' },
      command: 'system.info',
    });
    expect(zone.body.error.message).toMatch(/time zone/);
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    const add = await runCli(['schedule', 'add', 'disk', '--cron', '0 3 * * *', '--tz', 'UTC', '--target', 'tag:cron', '--', 'df', '-h'], env);
    expect(add.code, add.stderr).toBe(0);
    const list = await runCli(['schedule', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).map((s: any) => s.name)).toContain('disk');
    expect((await runCli(['schedule', 'rm', 'disk'], env)).code).toBe(0);
  });

  it('stores status reports as latest + history and emits satellite:metrics', async () => {
    const op = await operator(t);
    const n = nodes[0];
    if (!n) throw new Error('no node');
    const report = {
      health: { status: 'healthy', uptime_seconds: 10, memory_usage_mb: 20, cpu_usage_percent: 0.3 },
      system: { cpu_percent: 5, memory_percent: 40, disk_usage_percent: 20, load_average: [0.1, 0.2, 0.3] },
    };
    expect(await n.client.request('node.status', report)).toEqual({ stored: true });
    const ev = await op.waitEvent('satellite:metrics', (p) => p.id === n.id.deviceId);
    expect(ev.metrics.system.cpu_percent).toBe(5);
    await n.client.request('node.status', { ...report, system: { ...report.system, cpu_percent: 7 } });
    const m = await t.api('GET', `/api/v1/satellites/${n.id.deviceId}/metrics?limit=10`);
    expect(m.body.data.latest.report.system.cpu_percent).toBe(7);
    expect(m.body.data.history).toHaveLength(2);
    // operators cannot send status reports
    await expect(op.request('node.status', report)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await op.close();
  });
});
