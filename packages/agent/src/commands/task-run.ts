import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HiveError, type TaskRunParams, type TaskRunResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { findProgram, minimalEnv, runProgram } from '../lib/run.js';

/**
 * `task.run`: an AI task agent CLI started for the hub's task spawner. Only programs in the
 * agent's `tasks.allow` list; the provider keys arrive inside the signed invoke and go only into
 * the child's environment; the working directory is a fresh private temp dir removed afterwards.
 */
export async function taskRun(
  params: TaskRunParams,
  cfg: AgentConfig,
  signal?: AbortSignal,
  onOutput?: (stream: 'stdout' | 'stderr', data: string) => void,
): Promise<TaskRunResult> {
  if (!cfg.policy.allow_tasks) throw new HiveError('PERMISSION_DENIED', 'task.run is disabled on this satellite (policy.allow_tasks)');
  const name = params.argv[0] as string;
  if (!cfg.tasks.allow.includes(name)) throw new HiveError('PERMISSION_DENIED', `${name} is not in this satellite's tasks.allow list`, { program: name });
  const program = findProgram(name);
  if (!program) throw new HiveError('INVALID_PARAMETERS', `Task program ${name} not found`);
  const cwd = await mkdtemp(path.join(os.tmpdir(), `hive-task-${params.task_id.replace(/[^A-Za-z0-9_-]/g, '')}-`));
  const env = minimalEnv({ ...params.env, HOME: cwd });
  // Output is masked here already: the streamed chunks reach every operator via the hub.
  const secrets = Object.values(params.env).filter((v) => v.length >= 8);
  const mask = (text: string) => secrets.reduce((t, v) => t.split(v).join('[REDACTED]'), text);
  const hold = Math.max(0, ...secrets.map((v) => v.length - 1));
  const pending = { stdout: '', stderr: '' };
  const stream = onOutput
    ? (which: 'stdout' | 'stderr', data: string) => {
        // Keep a tail back so a key split across two chunks is still caught.
        const text = mask(pending[which] + data);
        const cut = Math.max(0, text.length - hold);
        pending[which] = text.slice(cut);
        if (cut > 0) onOutput(which, text.slice(0, cut));
      }
    : undefined;
  try {
    const r = await runProgram(program, params.argv.slice(1), {
      timeoutMs: params.timeoutMs,
      maxOutputBytes: cfg.tasks.max_output_bytes,
      signal,
      cwd,
      env,
      onOutput: stream,
    });
    for (const which of ['stdout', 'stderr'] as const) if (pending[which]) onOutput?.(which, pending[which]);
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      stdout: mask(r.stdout),
      stderr: mask(r.stderr),
      truncated: r.stdoutTruncated || r.stderrTruncated,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
    };
  } finally {
    // The keys live on only in the (finished) child: drop our copies.
    for (const k of Object.keys(env)) delete env[k];
    for (const k of Object.keys(params.env)) delete params.env[k];
    secrets.length = 0;
    await rm(cwd, { recursive: true, force: true });
  }
}
