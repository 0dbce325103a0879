import { HiveError, type SystemRunParams, type SystemRunResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { findProgram, runProgram, SAFE_PATH } from '../lib/run.js';
import { blockedArgv } from '../policy.js';

export { SAFE_PATH };

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

/**
 * `system.run`: argv only, never a shell; the blocklist refuses dangerous argv even when the
 * program is allowlisted; the program must match the local allowlist whatever the hub asked;
 * minimal environment; output capped; the whole process group is killed on timeout.
 */
export async function systemRun(
  params: SystemRunParams,
  cfg: AgentConfig,
  signal?: AbortSignal,
  onOutput?: (stream: 'stdout' | 'stderr', data: string) => void,
): Promise<SystemRunResult> {
  const run = cfg.system_run;
  if (!cfg.policy.allow_bash || !run.enabled) throw new HiveError('PERMISSION_DENIED', 'system.run is disabled on this satellite');
  const argv = params.argv;
  const blocked = blockedArgv(argv, cfg.policy.blocked_argv);
  if (blocked) {
    throw new HiveError('PERMISSION_DENIED', `Refused by this satellite's command blocklist: ${blocked.reason}`, { rule: blocked.rule, program: argv[0] });
  }
  if (!matchAllow(argv, run.allow)) {
    throw new HiveError('PERMISSION_DENIED', `${argv[0]} is not allowed by this satellite's allowlist`, { program: argv[0] });
  }
  const name = argv[0] as string;
  if (name.includes('/') && !name.startsWith('/')) throw new HiveError('INVALID_PARAMETERS', 'Program paths must be absolute');
  const program = findProgram(name);
  if (!program) throw new HiveError('INVALID_PARAMETERS', `Program ${name} not found in ${SAFE_PATH.join(':')}`);
  const timeoutMs = Math.min(params.timeoutMs ?? run.default_timeout_ms, run.max_timeout_ms);
  const r = await runProgram(program, argv.slice(1), {
    timeoutMs,
    maxOutputBytes: run.max_output_bytes,
    signal,
    stdin: params.stdin,
    cwd: params.cwd,
    onOutput,
  });
  if (r.timedOut) {
    throw new HiveError('TIMEOUT', `${name} did not finish within ${timeoutMs} ms and was killed`, {
      stdout: r.stdout.slice(-4096),
      stderr: r.stderr.slice(-4096),
    });
  }
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
    durationMs: r.durationMs,
  };
}
