import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { HiveClient } from '@hive/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, ROOT, tempDir } from './helpers.js';

function findPid(match: (cmdline: string) => boolean): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (match(cmd)) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

describe("README's first command: `npm start` brings up the hub plus a live local satellite", () => {
  const data = tempDir('hive-start-');
  afterAll(() => cleanup(data));

  it('starts on SQLite under the data dir with no config, shows this machine online, and stops gracefully', async () => {
    const proc = spawn('npm', ['start', '--silent', '--', '--port', '0', '--data', data], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ADMIN_API_KEY: '' },
    });
    let stderr = '';
    const banner = new Promise<{ url: string; key: string; console: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner:\n${stderr}`)), 30_000);
      proc.stderr.on('data', (d) => {
        stderr += d;
        const url = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
        const key = /shown ONCE[^\n]*\n\s+(hive_\S+)/.exec(stderr)?.[1];
        const consoleLink = /#key=(hive_\S+)/.exec(stderr)?.[1];
        if (url && key && consoleLink) {
          clearTimeout(timer);
          resolve({ url, key, console: consoleLink });
        }
      });
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      const { url, key, console: consoleKey } = await banner;
      const op = new HiveClient({
        url: `${url.replace('http', 'ws')}/ws`,
        role: 'operator',
        apiKey: key,
        client: { name: 'start-test', version: '0' },
        reconnect: false,
      });
      const onlineEvent = new Promise((r) => op.on('event', (name: string) => name === 'satellite:online' && r(name)));
      await op.start();
      const list = async () => (await (await fetch(`${url}/api/v1/satellites`, { headers: { 'x-api-key': key } })).json()) as any;
      if (!(await list()).data.some((s: any) => s.status === 'online')) await onlineEvent;
      const body = await list();
      expect(body.data).toHaveLength(1);
      expect(body.data[0].status).toBe('online');
      // the status page and the read-only console key work
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Hive');
      const ro = await fetch(`${url}/api/v1/satellites`, { headers: { 'x-api-key': consoleKey } });
      expect(ro.status).toBe(200);
      const write = await fetch(`${url}/api/v1/satellites/${body.data[0].id}`, { method: 'DELETE', headers: { 'x-api-key': consoleKey } });
      expect(write.status).toBe(403);
      expect(((await (await fetch(`${url}/health/ready`)).json()) as { status: string }).status).toBe('ready');
      await op.close();
      expect(existsSync(path.join(data, 'hive.db'))).toBe(true);
      expect(statSync(path.join(data, 'agent', 'device.json')).mode & 0o777).toBe(0o600);
      // Stop the hub itself (npm, its parent, would just die of the signal) and watch it exit cleanly.
      const hubPid = findPid((cmd) => /^\S*node /.test(cmd) && cmd.includes('hive.js') && cmd.includes(' start') && cmd.includes(data));
      expect(hubPid).toBeGreaterThan(0);
      process.kill(hubPid as number, 'SIGTERM');
      expect(await exited).toBe(0);
      expect(findPid((cmd) => cmd.includes('hive-agent') && cmd.includes(data))).toBeUndefined();
    } finally {
      try {
        process.kill(-(proc.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
});
