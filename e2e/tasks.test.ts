import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, operator, spawnAgent, type TestHub, tempDir } from './helpers.js';
import { STANDINS, startAiHub } from './standins/hub.js';

const AGENT = path.join(STANDINS, 'agent.mjs');
const KEY_A = 'sk-ant-TASKTEST-0123456789abcdefghij';
const KEY_O = 'sk-oai-TASKTEST-9876543210zyxwvutsrq';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Running (a zombie waiting to be reaped by whatever is pid 1 here counts as dead). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('task spawner with stand-in agent CLIs (real hub, real child processes)', () => {
  let t: TestHub;
  let op: Awaited<ReturnType<typeof operator>>;
  const workDir = tempDir('hive-tasks-');

  beforeAll(async () => {
    // Something in the hub's own environment a task must never see.
    process.env.HIVE_TEST_HUB_SECRET = 'hub-env-must-not-leak';
    t = await startAiHub({
      vault: { scrypt_log_n: 15 },
      tasks: {
        work_dir: workDir,
        kill_grace: 500,
        max_output_bytes: 20_000,
        agents: {
          standin: { command: [process.execPath, AGENT, '{prompt}'], format: 'jsonl', providers: [{ provider: 'openai', env: 'OPENAI_API_KEY' }] },
          'claude-standin': {
            command: [process.execPath, AGENT, '{prompt}', '--claude'],
            format: 'claude',
            providers: [{ provider: 'anthropic', env: 'ANTHROPIC_API_KEY' }],
            env: { CLAUDE_CODE_STANDIN: '1' },
          },
          nokeys: { command: [process.execPath, AGENT, '{prompt}'], format: 'jsonl' },
        },
      },
    });
    await t.api('POST', '/api/v1/vault/init', { password: 'task test password' });
    await t.api('POST', '/api/v1/vault/keys', { provider: 'anthropic', value: KEY_A });
    await t.api('POST', '/api/v1/vault/keys', { provider: 'openai', value: KEY_O });
    op = await operator(t);
  });
  afterAll(async () => {
    delete process.env.HIVE_TEST_HUB_SECRET;
    await op?.close();
    await t?.close();
    cleanup(t.dataDir);
    cleanup(workDir);
  });

  const output = async (id: string) =>
    ((await t.api('GET', `/api/v1/tasks/${id}/output`)).body.data.chunks as { data: string; stream: string }[]).map((c) => c.data).join('');

  it('claude stand-in: the child sees exactly its key and a minimal env, never the hub env; events parsed; keys masked', async () => {
    const created = await t.api('POST', '/api/v1/tasks', { agent_type: 'claude-standin', description: 'env' });
    expect(created.status).toBe(201);
    const id = created.body.data.task_id as string;
    expect(created.body.data.keys_used).toEqual(['anthropic/main']);
    const final = await op.waitEvent('task:status', (p) => p.task_id === id && p.status !== 'running');
    expect(final.status).toBe('completed');

    const task = (await t.api('GET', `/api/v1/tasks/${id}`)).body.data;
    const text = await output(id);
    const envLine = JSON.parse(text.split('\n').find((l) => l.includes('"type":"env"')) as string);
    expect(envLine.env_names).toEqual(['ANTHROPIC_API_KEY', 'CLAUDE_CODE_STANDIN', 'HIVE_TASK_ID', 'HOME', 'LANG', 'PATH']);
    expect(envLine.key_sha256).toEqual({ ANTHROPIC_API_KEY: sha(KEY_A) });
    expect(envLine.cwd).toBe(path.join(workDir, id));
    // stored output, the result and the API response carry no key, only the mask
    expect(text).toContain('leak attempt ANTHROPIC_API_KEY=[REDACTED]');
    expect(text).toContain('stderr leak [REDACTED]');
    expect(task.result.text).toBe('done; key is [REDACTED]');
    for (const s of [text, JSON.stringify(task), t.logs.join('\n')]) {
      expect(s).not.toContain('TASKTEST');
      expect(s).not.toContain('hub-env-must-not-leak');
    }
    // progress events from the claude stream-json format reached the operator
    const evs = await op.waitEvent('task:output', (p) => p.task_id === id && p.events.some((e: any) => e.kind === 'tool'));
    expect(evs.events.find((e: any) => e.kind === 'tool').tool).toBe('Bash');
    // the use of the key is audited with the task id
    const audit = (await t.api('GET', `/api/v1/audit/logs?action=vault.key_used&correlation_id=${id}`)).body.data;
    expect(audit).toHaveLength(1);
    expect(audit[0].details).toMatchObject({ provider: 'anthropic', key_id: 'main', purpose: 'task', task_id: id });
    expect(JSON.stringify(audit)).not.toContain('TASKTEST');
  });

  it('remote task on a real agent (claude stand-in): the key travels only in the signed invoke, the child sees a minimal env, output streams back masked', async () => {
    const state = path.join(t.dataDir, 'remote-agent');
    const cfg = path.join(t.dataDir, 'remote-agent.yaml');
    writeFileSync(cfg, `policy:\n  allow_tasks: true\ntasks:\n  allow: [${JSON.stringify(process.execPath)}]\n`);
    const agent = spawnAgent(t.wsUrl, state, ['--name', 'remote-1', '--config', cfg]);
    try {
      const sat = await op.waitEvent('satellite:online', (p) => p.slug === 'remote-1');
      const created = await t.api('POST', '/api/v1/tasks', { agent_type: 'claude-standin', description: 'env', target_satellite: 'remote-1' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.data.task_id as string;
      expect(created.body.data.target_satellite).toBe(sat.id);
      const final = await op.waitEvent('task:status', (p) => p.task_id === id && p.status !== 'running' && p.status !== 'pending');
      expect(final.status, final.error).toBe('completed');
      const text = await output(id);
      const envLine = JSON.parse(text.split('\n').find((l) => l.includes('"type":"env"')) as string);
      // the node's minimal environment plus exactly the task's variables
      expect(envLine.env_names).toEqual(['ANTHROPIC_API_KEY', 'CLAUDE_CODE_STANDIN', 'HIVE_TASK_ID', 'HOME', 'LANG', 'LC_ALL', 'PATH']);
      expect(envLine.key_sha256).toEqual({ ANTHROPIC_API_KEY: sha(KEY_A) });
      expect(envLine.cwd).not.toContain(t.dataDir);
      expect(text).toContain('leak attempt ANTHROPIC_API_KEY=[REDACTED]');
      // the task.run job keeps the variable names, never the values
      const jobs = (await t.api('GET', `/api/v1/commands?satellite=${sat.id}`)).body.data;
      const job = jobs.find((j: any) => j.command === 'task.run');
      expect(job.params.env.ANTHROPIC_API_KEY).toBe('[REDACTED]');
      const audit = (await t.api('GET', `/api/v1/audit/logs?target_id=${sat.id}&per_page=200`)).body.data;
      for (const blob of [JSON.stringify(jobs), JSON.stringify(audit), t.logs.join('\n'), agent.stdout.join('\n')]) expect(blob).not.toContain(KEY_A);
    } finally {
      await agent.kill();
    }
  });

  it('custom stand-in type: streams live (the process waits for a file the test writes after the first event)', async () => {
    const flag = path.join(t.dataDir, 'go-on');
    const created = await t.api('POST', '/api/v1/tasks', { agent_type: 'standin', description: `wait-file ${flag}` });
    const id = created.body.data.task_id as string;
    const first = await op.waitEvent('task:output', (p) => p.task_id === id && p.data.includes('first'));
    expect(first.events[0]).toMatchObject({ kind: 'message', text: 'first' });
    expect((await t.api('GET', `/api/v1/tasks/${id}`)).body.data.status).toBe('running');
    writeFileSync(flag, '');
    const done = await op.waitEvent('task:status', (p) => p.task_id === id && p.status === 'completed');
    expect(done.exit_code).toBe(0);
    const task = (await t.api('GET', `/api/v1/tasks/${id}`)).body.data;
    expect(task.result.text).toBe('finished after the file appeared');
    const list = (await t.api('GET', '/api/v1/tasks?agent_type=standin')).body;
    expect(list.data.map((x: any) => x.task_id)).toContain(id);
  });

  it('cancel kills the whole process tree (SIGTERM, then SIGKILL after the grace)', async () => {
    const created = await t.api('POST', '/api/v1/tasks', { agent_type: 'nokeys', description: 'tree' });
    const id = created.body.data.task_id as string;
    const ev = await op.waitEvent('task:output', (p) => p.task_id === id && p.data.includes('"pids"'));
    const pids = JSON.parse(ev.data.split('\n').find((l: string) => l.includes('"pids"')));
    expect(alive(pids.leader) && alive(pids.grandchild)).toBe(true);
    const res = await t.api('POST', `/api/v1/tasks/${id}/cancel`);
    expect(res.body.data.status).toBe('cancelled');
    expect(alive(pids.leader)).toBe(false);
    expect(alive(pids.grandchild)).toBe(false);
    expect((await t.api('POST', `/api/v1/tasks/${id}/cancel`)).body.error.code).toBe('CONFLICT');
  });

  it('timeout ends the task as timed_out', async () => {
    const created = await t.api('POST', '/api/v1/tasks', { agent_type: 'nokeys', description: 'sleep', timeout_ms: 300 });
    const id = created.body.data.task_id as string;
    const done = await op.waitEvent('task:status', (p) => p.task_id === id && p.status === 'timed_out');
    expect(done.error).toContain('timed out');
  });

  it('output is capped; failures, unknown types, missing keys and a locked vault are typed errors', async () => {
    const flood = (await t.api('POST', '/api/v1/tasks', { agent_type: 'nokeys', description: 'flood 100' })).body.data.task_id;
    await op.waitEvent('task:status', (p) => p.task_id === flood && p.status === 'completed');
    const ft = (await t.api('GET', `/api/v1/tasks/${flood}`)).body.data;
    expect(ft.truncated).toBe(true);
    expect(ft.output_bytes).toBeLessThan(21_000);
    expect(await output(flood)).toContain('[output truncated');

    const fail = (await t.api('POST', '/api/v1/tasks', { agent_type: 'nokeys', description: 'fail' })).body.data.task_id;
    const failed = await op.waitEvent('task:status', (p) => p.task_id === fail && p.status === 'failed');
    expect(failed).toMatchObject({ exit_code: 3, error: 'exited with code 3' });

    const before = (await t.api('GET', '/api/v1/tasks?per_page=500')).body.pagination.total;
    expect((await t.api('POST', '/api/v1/tasks', { agent_type: 'nope', description: 'x' })).body.error.code).toBe('INVALID_PARAMETERS');
    const remote = await t.api('POST', '/api/v1/tasks', { agent_type: 'standin', description: 'x', target_satellite: 'no-such-satellite' });
    expect(remote.body.error).toMatchObject({ code: 'SATELLITE_NOT_FOUND' });
    // built-in codex needs openai/main: present; gemini needs google/main: absent
    const noKey = await t.api('POST', '/api/v1/tasks', { agent_type: 'gemini', description: 'x' });
    expect(noKey.body.error.code).toBe('NO_API_KEY');
    expect(noKey.body.error.details.provider).toBe('google');
    await t.api('POST', '/api/v1/vault/lock');
    const locked = await t.api('POST', '/api/v1/tasks', { agent_type: 'standin', description: 'x' });
    expect(locked.body.error.code).toBe('VAULT_LOCKED');
    // a type that needs no key still runs with the vault locked
    const free = await t.api('POST', '/api/v1/tasks', { agent_type: 'nokeys', description: 'hello' });
    expect(free.status).toBe(201);
    await op.waitEvent('task:status', (p) => p.task_id === free.body.data.task_id && p.status === 'completed');
    expect((await t.api('GET', '/api/v1/tasks?per_page=500')).body.pagination.total).toBe(before + 1);
    await t.api('POST', '/api/v1/vault/unlock', { password: 'task test password' });
  });
});
