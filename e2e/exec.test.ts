import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, runCli, spawnAgent, startHub, type TestHub } from './helpers.js';

describe('exec through the hub to a real agent process', () => {
  let t: TestHub;
  let agent: AgentProc;
  let satId: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // The hub's approval policy is opened up here: these tests are about what the agent refuses.
    t = await startHub({ overrides: { approvals: { rules: [{ command: 'system.run', require: false }] } } });
    const state = path.join(t.dataDir, 'agent');
    const cfg = path.join(t.dataDir, 'agent.yaml');
    // The default allowlist plus `sleep` (for the timeout case) and `cat`; nothing else.
    writeFileSync(cfg, 'system_run:\n  allow: [echo, uname, ls, sleep, "systemctl status", cat]\n  max_output_bytes: 4096\n');
    const op = await operator(t);
    agent = spawnAgent(t.wsUrl, state, ['--name', 'runner', '--config', cfg]);
    satId = (await op.waitEvent('satellite:online')).id;
    await op.close();
    env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
  });
  afterAll(async () => {
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('runs an allowlisted argv and records a succeeded job with a correlation id, audited', async () => {
    const res = await t.api('POST', `/api/v1/satellites/runner/exec`, { command: 'system.run', params: { argv: ['echo', 'hello', 'hive'] } });
    expect(res.status).toBe(200);
    const job = res.body.data;
    expect(job).toMatchObject({ state: 'succeeded', satellite_id: satId, command: 'system.run' });
    expect(job.result.exitCode).toBe(0);
    expect(job.result.stdout).toBe('hello hive\n');
    expect(job.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof job.duration_ms).toBe('number');
    const stored = await t.api('GET', `/api/v1/commands/${job.id}`);
    expect(stored.body.data.state).toBe('succeeded');
    const audit = await t.api('GET', `/api/v1/audit/logs?correlation_id=${job.correlation_id}`);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0]).toMatchObject({ action: 'command.exec', result: 'success', target: { type: 'satellite', id: satId } });
    expect(audit.body.data[0].details.exit_code).toBe(0);
    expect(audit.body.data[0].source_ip).toMatch(/127\.0\.0\.1/);
  });

  it('relays the output of a running program to operators as job:output events', async () => {
    const op = await operator(t);
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv: ['echo', 'streamed'] }, async: true });
    const out = await op.waitEvent('job:output', (p) => p.correlation_id === res.body.data.correlation_id);
    expect(out).toMatchObject({ stream: 'stdout', data: 'streamed\n', satellite_id: satId });
    await op.close();
  });

  it('system.info returns typed facts', async () => {
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.info', params: {} });
    expect(res.status).toBe(200);
    expect(res.body.data.result.cpus).toBeGreaterThan(0);
    expect(res.body.data.result.agent.version).toBe('0.1.0');
  });

  it('`hive exec` prints output and exits with the remote exit code', async () => {
    const ok = await runCli(['exec', 'runner', '--', 'echo', 'from-cli'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('from-cli\n');
    const bad = await runCli(['exec', 'runner', '--', 'ls', '/definitely/not/here'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('No such file');
    const job = await t.api('GET', '/api/v1/commands?state=failed');
    expect(job.body.data[0].result.exitCode).toBe(2);
  });

  it('shell metacharacters and newlines are plain argv, never interpreted', async () => {
    const marker = path.join(t.dataDir, 'pwned');
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, {
      command: 'system.run',
      params: { argv: ['echo', `; touch ${marker}`, `$(touch ${marker})`, `a\ntouch ${marker}`, '`id`'] },
    });
    expect(res.body.data.result.stdout).toBe(`; touch ${marker} $(touch ${marker}) a\ntouch ${marker} \`id\`\n`);
    const check = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv: ['ls', marker] } });
    expect(check.body.data.result.exitCode).not.toBe(0);
  });

  it('a program outside the agent allowlist is refused by the agent with PERMISSION_DENIED', async () => {
    for (const argv of [
      ['rm', '-rf', '/tmp/x'],
      ['systemctl', 'stop', 'ssh'],
      ['/bin/sh', '-c', 'id'],
      ['../echo', 'x'],
    ]) {
      const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv } });
      expect(res.status, argv.join(' ')).toBe(403);
      expect(res.body.error.code).toBe('PERMISSION_DENIED');
      expect(res.body.error.details.job_id).toMatch(/^job_/);
    }
    const audit = await t.api('GET', '/api/v1/audit/logs?action=command.exec&result=failure');
    expect(audit.body.data.length).toBeGreaterThanOrEqual(4);
  });

  it('times out: the process is killed, the job ends timed_out, REST answers COMMAND_TIMEOUT 504', async () => {
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv: ['sleep', '30'] }, timeout_ms: 500 });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('COMMAND_TIMEOUT');
    const job = await t.api('GET', `/api/v1/commands/${res.body.error.details.job_id}`);
    expect(job.body.data.state).toBe('timed_out');
    expect(job.body.data.duration_ms).toBeLessThan(10_000);
  });

  it('caps output at the agent limit and says so', async () => {
    const big = 'x'.repeat(3000);
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv: ['echo', big, big] } });
    expect(res.body.data.result.stdout.length).toBe(4096);
    expect(res.body.data.result.stdoutTruncated).toBe(true);
  });

  it('bad input is refused on the hub with a typed error and creates no job', async () => {
    const before = (await t.api('GET', '/api/v1/commands')).body.pagination.total;
    const cases = [
      { command: 'system.run', params: { argv: [] } },
      { command: 'system.run', params: { argv: ['echo'], extra: 1 } },
      { command: 'nope.cmd', params: {} },
    ];
    for (const body of cases) {
      const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, body);
      expect(res.status).toBe(400);
      expect(['INVALID_PARAMETERS', 'UNKNOWN_COMMAND']).toContain(res.body.error.code);
    }
    const bodyErr = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', timeout_ms: 'soon' });
    expect(bodyErr.status).toBe(400);
    expect(bodyErr.body.error.code).toBe('INVALID_PARAMETERS');
    expect((await t.api('GET', '/api/v1/commands')).body.pagination.total).toBe(before);
    const missing = await t.api('POST', '/api/v1/satellites/nope/exec', { command: 'system.info' });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('SATELLITE_NOT_FOUND');
  });

  it('REST needs an API key and answers in the envelope', async () => {
    const none = await fetch(`${t.url}/api/v1/satellites`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ success: false, error: { code: 'AUTH_REQUIRED', message: expect.any(String) } });
    const bad = await t.api('GET', '/api/v1/satellites', undefined, 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('AUTH_INVALID');
    const bearer = await fetch(`${t.url}/api/v1/satellites`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(bearer.status).toBe(200);
  });

  it('an offline satellite answers SATELLITE_OFFLINE 503 and the failed job is kept', async () => {
    const op = await operator(t);
    await agent.kill();
    await op.waitEvent('satellite:offline', (p) => p.id === satId);
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.info', params: {} });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('SATELLITE_OFFLINE');
    const job = await t.api('GET', `/api/v1/commands/${res.body.error.details.job_id}`);
    expect(job.body.data.state).toBe('failed');
    const sat = await t.api('GET', `/api/v1/satellites/${satId}`);
    expect(sat.body.data.status).toBe('offline');
    expect(sat.body.data.last_seen).toBeTruthy();
    // secrets never reach the hub's logs
    expect(t.logs.join('\n')).not.toContain(t.adminKey);
    await op.close();
  });
});
