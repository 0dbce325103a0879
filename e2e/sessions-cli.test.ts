import { createRequire } from 'node:module';
import path from 'node:path';
import type * as NodePty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, HIVE_BIN, operator, runCli, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

const pty = createRequire(import.meta.url)('node-pty') as typeof NodePty;

/** Runs `hive …` inside a pseudo-terminal, as a person would. */
function hiveInPty(args: string[], env: Record<string, string>, size = { cols: 90, rows: 20 }) {
  const term = pty.spawn(process.execPath, [HIVE_BIN, ...args], {
    name: 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    cwd: process.cwd(),
    env: { ...(process.env as Record<string, string>), XDG_CONFIG_HOME: tempDir('hive-cli-'), ...env },
  });
  let text = '';
  const waiters = new Set<() => void>();
  term.onData((d) => {
    text += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  return {
    term,
    exited,
    get text() {
      return text;
    },
    until(pred: (t: string) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
      if (pred(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; terminal so far: ${JSON.stringify(text.slice(-600))}`));
        }, timeoutMs);
        const check = () => {
          if (pred(text)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
    },
  };
}

describe('hive ssh and hive sessions play', () => {
  let t: TestHub;
  let agent: AgentProc;
  let satId: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await startHub();
    const op = await operator(t);
    agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'agent'), ['--name', 'sshbox'], { SHELL: '/bin/sh' });
    satId = (await op.waitEvent('satellite:online')).id;
    await op.close();
    env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
  });
  afterAll(async () => {
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('interactive: shows output, forwards the window size (SIGWINCH) and returns the remote exit code', async () => {
    const s = hiveInPty(['ssh', 'sshbox'], env, { cols: 90, rows: 20 });
    s.term.write('stty size; echo marker-$((6*7))\r');
    await s.until((x) => x.includes('marker-42'), 'command output');
    expect(s.text).toContain('20 90');
    s.term.resize(120, 40);
    // The resize travels asynchronously (SIGWINCH → session:resize → node); ask until it shows.
    for (let i = 0; i < 20 && !s.text.includes('40 120'); i++) {
      s.term.write('stty size\r');
      await s.until((x) => x.includes('40 120'), 'the new size', 1000).catch(() => {});
    }
    expect(s.text).toContain('40 120');
    s.term.write('exit 5\r');
    expect(await s.exited).toBe(5);
  });

  it('one command after --: exit status, and the recording plays back the same text', async () => {
    const s = hiveInPty(['ssh', satId, '--', 'sh', '-c', 'echo one-shot-out; exit 3'], env);
    expect(await s.exited).toBe(3);
    expect(s.text).toContain('one-shot-out');
    const list = await runCli(['sessions', 'list', satId, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const sessions = JSON.parse(list.stdout) as { id: string; command: string | null; exit_code: number | null }[];
    const mine = sessions.find((x) => x.command?.includes('one-shot-out'));
    expect(mine?.exit_code).toBe(3);
    const played = await runCli(['sessions', 'play', mine?.id as string, '--speed', '100'], env);
    expect(played.code, played.stderr).toBe(0);
    expect(played.stdout).toContain('one-shot-out');
    const missing = await runCli(['sessions', 'play', 'sess_missing'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SESSION_NOT_FOUND');
  });

  it('a refused session is a clear error with a non-zero status', async () => {
    const r = await runCli(['ssh', 'no-such-satellite', '--', 'true'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SATELLITE_NOT_FOUND');
  });
});
