import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mintToken } from '@hive/server';
import { afterAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, freePort, operator, ROOT, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

/** A hub in its own process, so the test can kill it the hard way (no shutdown code runs). */
function hubProcess(dataDir: string, port: number, adminKey: string): { proc: ChildProcess; url: Promise<string> } {
  const file = path.join(dataDir, 'server.yaml');
  writeFileSync(file, '{}');
  const script = `
    import { buildHub, loadConfig } from '@hive/server';
    const config = loadConfig({ file: ${JSON.stringify(file)}, env: { ADMIN_API_KEY: process.env.TEST_ADMIN_KEY }, overrides: { port: ${port}, dataDir: ${JSON.stringify(dataDir)}, host: '127.0.0.1' } });
    const hub = await buildHub(config);
    const { url } = await hub.listen();
    process.stdout.write('LISTENING ' + url + '\\n');
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, TEST_ADMIN_KEY: adminKey, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  const url = new Promise<string>((resolve, reject) => {
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    proc.on('exit', (code) => reject(new Error(`hub process exited ${code}: ${err.slice(-2000)}`)));
  });
  return { proc, url };
}

describe('sessions survive a hub restart in the database', () => {
  const dataDir = tempDir('hive-persist-');
  const adminKey = mintToken('hive').token;
  let agent: AgentProc | undefined;
  let child: ChildProcess | undefined;
  let t: TestHub | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await agent?.kill();
    await t?.close();
    cleanup(dataDir);
  });

  it('a crash leaves live sessions ended with hub_restart at the next start; sessions, lists and recordings answer from the database', async () => {
    const port = await freePort();
    const first = hubProcess(dataDir, port, adminKey);
    child = first.proc;
    const url = await first.url;
    const api = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${url}${p}`, {
        method,
        headers: { 'x-api-key': adminKey, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const wsUrl = `${url.replace('http', 'ws')}/ws`;
    const watcher = await operator({ wsUrl, adminKey } as TestHub);
    agent = spawnAgent(wsUrl, path.join(dataDir, 'agent'), ['--name', 'keeper'], { SHELL: '/bin/sh' });
    const satId = (await watcher.waitEvent('satellite:online')).id as string;
    // One session that ends on its own, one still running when the hub dies.
    const done = await api('POST', '/api/v1/sessions', { satellite: satId, command: 'echo persisted-output; exit 9' });
    expect(done.status).toBe(201);
    const running = await api('POST', '/api/v1/sessions', { satellite: satId, command: 'echo still-here; sleep 1000' });
    expect(running.status).toBe(201);
    await watcher.waitEvent('session:ended', (p) => p.session_id === done.body.data.id);
    await watcher.close();
    // The running one has printed (and its recorder written) before the crash.
    for (let i = 0; i < 200 && !((await api('GET', `/api/v1/sessions/${running.body.data.id}`)).body.data.bytes_out > 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await api('GET', `/api/v1/sessions/${done.body.data.id}`)).body.data).toMatchObject({ status: 'ended', exit_code: 9 });
    expect((await api('GET', `/api/v1/sessions/${running.body.data.id}`)).body.data.status).toBe('active');
    child.kill('SIGKILL');
    await new Promise((r) => child?.once('exit', r));

    // Same data dir, same port: the agent reconnects by itself.
    t = await startHub({ dataDir, port, adminKey });
    const op = await operator(t);
    try {
      const lost = (await t.api('GET', `/api/v1/sessions/${running.body.data.id}`)).body.data;
      expect(lost).toMatchObject({ status: 'ended', end_reason: 'hub_restart', satellite_id: satId, command: 'echo still-here; sleep 1000' });
      const ended = (await t.api('GET', `/api/v1/sessions/${done.body.data.id}`)).body.data;
      expect(ended).toMatchObject({ status: 'ended', end_reason: 'exited', exit_code: 9, actor: { type: 'api_key', name: 'admin' } });
      const list = await t.api('GET', `/api/v1/satellites/${satId}/sessions?state=ended`);
      expect(list.body.data.map((s: any) => s.id).sort()).toEqual([done.body.data.id, running.body.data.id].sort());
      expect(list.body.pagination.total).toBe(2);
      expect((await t.api('GET', '/api/v1/sessions?state=live')).body.data).toEqual([]);
      // Both recordings are still served.
      const cast = await fetch(`${t.url}/api/v1/sessions/${done.body.data.id}/recording`, { headers: { 'x-api-key': adminKey } });
      expect(cast.status).toBe(200);
      expect(await cast.text()).toContain('persisted-output');
      const text = (await t.api('GET', `/api/v1/sessions/${running.body.data.id}/recording?format=text`)).body.data;
      expect(text.text).toContain('still-here');
      expect(text.text).not.toContain('\x1b');
      const audit = (await t.api('GET', `/api/v1/audit/logs?action=session.closed&target_id=${running.body.data.id}`)).body.data[0];
      expect(audit).toMatchObject({ actor: { type: 'system' }, details: { reason: 'hub_restart' } });

      // The satellite is back and takes new sessions.
      await op.waitEvent('satellite:online', (p) => p.id === satId);
      const again = await t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'exit 0' });
      expect(again.status).toBe(201);

      // Retention: a clock past recording_retention_days deletes the files of ended sessions and marks the rows.
      const file = ended.recording as string;
      expect(existsSync(file)).toBe(true);
      await op.waitEvent('session:ended', (p) => p.session_id === again.body.data.id);
      const removed = await t.hub.services.sessions.cleanupRecordings(Date.now() + 31 * 86_400_000);
      expect(removed).toBeGreaterThanOrEqual(3);
      expect(existsSync(file)).toBe(false);
      const after = (await t.api('GET', `/api/v1/sessions/${done.body.data.id}`)).body.data;
      expect(after.recording_deleted_at).toBeTruthy();
      const gone = await t.api('GET', `/api/v1/sessions/${done.body.data.id}/recording`);
      expect(gone.status).toBe(404);
      expect(gone.body.error).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('retention') });
    } finally {
      await op.close();
    }
  });
});
