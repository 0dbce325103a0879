import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { HiveError, type SystemRunParams, type SystemRunResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';

/** Programs are looked up here only — never in an inherited PATH. */
export const SAFE_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function splitEntry(entry: string): string[] {
  return entry.split(/\s+/).filter(Boolean);
}

/** The allowlist entry that permits argv, if any (entries are argv prefixes). */
export function matchAllow(argv: readonly string[], allow: readonly string[]): string | undefined {
  for (const entry of allow) {
    const prefix = splitEntry(entry);
    if (prefix.length === 0 || prefix.length > argv.length) continue;
    if (prefix.every((tok, i) => argv[i] === tok)) return entry;
  }
  return undefined;
}

function resolveProgram(program: string): string {
  if (program.includes('/')) {
    if (!path.isAbsolute(program)) throw new HiveError('INVALID_PARAMETERS', 'Program paths must be absolute');
    return program;
  }
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
  throw new HiveError('INVALID_PARAMETERS', `Program ${program} not found in ${SAFE_PATH.join(':')}`);
}

/**
 * `system.run`: argv only, never a shell; program must match the local allowlist whatever the
 * hub asked; minimal environment; output capped; the whole process group is killed on timeout.
 */
export function systemRun(params: SystemRunParams, cfg: AgentConfig['system_run'], signal?: AbortSignal): Promise<SystemRunResult> {
  if (!cfg.enabled) throw new HiveError('PERMISSION_DENIED', 'system.run is disabled on this satellite');
  const argv = params.argv;
  if (!matchAllow(argv, cfg.allow)) {
    throw new HiveError('PERMISSION_DENIED', `${argv[0]} is not allowed by this satellite's allowlist`, { program: argv[0] });
  }
  const program = resolveProgram(argv[0] as string);
  const timeoutMs = Math.min(params.timeoutMs ?? cfg.default_timeout_ms, cfg.max_timeout_ms);
  const cap = cfg.max_output_bytes;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(program, argv.slice(1), {
      cwd: params.cwd ?? '/',
      env: { PATH: SAFE_PATH.join(':'), LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', HOME: process.env.HOME ?? '/' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
    });
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
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    child.stdin.on('error', () => {});
    child.stdin.end(params.stdin ?? '');
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
    }, timeoutMs);
    const onAbort = () => killTree();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(new HiveError('INTERNAL_ERROR', `Could not start ${argv[0]}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const result: SystemRunResult = {
        exitCode: code,
        signal: sig,
        stdout: Buffer.concat(out.stdout).toString('utf8'),
        stderr: Buffer.concat(out.stderr).toString('utf8'),
        stdoutTruncated: out.trunc.stdout,
        stderrTruncated: out.trunc.stderr,
        durationMs: Date.now() - started,
      };
      if (timedOut) {
        reject(
          new HiveError('TIMEOUT', `${argv[0]} did not finish within ${timeoutMs} ms and was killed`, {
            stdout: result.stdout.slice(-4096),
            stderr: result.stderr.slice(-4096),
          }),
        );
        return;
      }
      resolve(result);
    });
  });
}
