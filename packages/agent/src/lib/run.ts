import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { HiveError } from './protocol-lite.js';

/** Programs are looked up here only — never in an inherited PATH. */
export const SAFE_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The environment every child gets: nothing inherited from the agent but HOME. */
export function minimalEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SAFE_PATH.join(':'), LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', HOME: process.env.HOME ?? '/', ...extra };
}

/** Absolute path of `program` in SAFE_PATH, or undefined. */
export function findProgram(program: string): string | undefined {
  if (program.includes('/')) return path.isAbsolute(program) ? program : undefined;
  for (const dir of SAFE_PATH) {
    const candidate = path.join(dir, program);
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      /* next dir */
    }
  }
  return undefined;
}

export interface RunOptions {
  timeoutMs: number;
  /** Per stream cap; output beyond it is dropped and flagged. */
  maxOutputBytes: number;
  signal?: AbortSignal | undefined;
  stdin?: string | undefined;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  /** Live output (already within the cap), coalesced to at most one call per stream every 200 ms. */
  onOutput?: ((stream: 'stdout' | 'stderr', data: string) => void) | undefined;
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
  timedOut: boolean;
}

/**
 * Runs a program with an argv array — never a shell — in its own process group with a minimal
 * environment, capped output and a timeout; on timeout or abort the whole group is killed.
 * Rejects only when the program cannot be started.
 */
export function runProgram(program: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], {
      cwd: opts.cwd ?? '/',
      env: opts.env ?? minimalEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
    });
    const cap = opts.maxOutputBytes;
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], n: { stdout: 0, stderr: 0 }, trunc: { stdout: false, stderr: false } };
    const collect = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = cap - out.n[which];
      if (room <= 0) {
        out.trunc[which] = true;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (part.length < chunk.length) out.trunc[which] = true;
      out[which].push(part);
      out.n[which] += part.length;
      if (opts.onOutput) {
        live[which].push(part);
        flushTimer ??= setTimeout(flush, 200);
      }
    };
    // Streamed output is batched so a chatty program does not flood the hub connection.
    const live = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = () => {
      flushTimer = undefined;
      for (const which of ['stdout', 'stderr'] as const) {
        if (live[which].length === 0) continue;
        const data = Buffer.concat(live[which]).toString('utf8');
        live[which] = [];
        opts.onOutput?.(which, data);
      }
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
    let timedOut = false;
    const killTree = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, opts.timeoutMs);
    const onAbort = () => killTree();
    if (opts.signal?.aborted) killTree();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new HiveError('INTERNAL_ERROR', `Could not start ${program}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (flushTimer) clearTimeout(flushTimer);
      flush();
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        exitCode: code,
        signal: sig,
        stdout: Buffer.concat(out.stdout).toString('utf8'),
        stderr: Buffer.concat(out.stderr).toString('utf8'),
        stdoutTruncated: out.trunc.stdout,
        stderrTruncated: out.trunc.stderr,
        durationMs: Date.now() - started,
        timedOut,
      });
    });
  });
}

/** Milliseconds left before the invoke's deadline, bounded by `max`. */
export function remainingMs(deadline: number | undefined, max: number): number {
  if (deadline === undefined) return max;
  return Math.max(100, Math.min(max, deadline - Date.now()));
}
