import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseAgentConfig } from '../config.js';
import { taskRun } from './task-run.js';

const KEY = 'sk-test-0123456789abcdefghijklmnop';

describe('task.run on the node', () => {
  it('refuses unless allow_tasks and the program is in tasks.allow', async () => {
    const off = parseAgentConfig({});
    await expect(taskRun({ task_id: 't', argv: [process.execPath], env: {}, timeoutMs: 5000 }, off)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const on = parseAgentConfig({ policy: { allow_tasks: true }, tasks: { allow: ['claude'] } });
    await expect(taskRun({ task_id: 't', argv: [process.execPath], env: {}, timeoutMs: 5000 }, on)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  it('masks the keys it was given in streamed chunks (also across chunk boundaries) and in the result', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-taskrun-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const script = path.join(dir, 'leak.mjs');
    // prints the key in two halves with a pause between, so it spans two output batches
    writeFileSync(
      script,
      `const k = process.env.MY_KEY; process.stdout.write('a ' + k.slice(0, 10)); setTimeout(() => process.stdout.write(k.slice(10) + ' b\\n'), 400);`,
    );
    const cfg = parseAgentConfig({ policy: { allow_tasks: true }, tasks: { allow: [process.execPath] } });
    const chunks: string[] = [];
    const r = await taskRun({ task_id: 't1', argv: [process.execPath, script], env: { MY_KEY: KEY }, timeoutMs: 10_000 }, cfg, undefined, (_s, d) =>
      chunks.push(d),
    );
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.join('')).toBe('a [REDACTED] b\n');
    expect(r.stdout).toBe('a [REDACTED] b\n');
    expect(JSON.stringify({ chunks, r })).not.toContain(KEY.slice(0, 10));
  });
});
