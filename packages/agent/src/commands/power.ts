import { HiveError, type PowerParams, type PowerResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { findProgram, runProgram } from '../lib/run.js';
import { systemdRunning } from './service-status.js';

/** The argv that performs the action here: systemctl under systemd, else shutdown(8); undefined if neither exists. */
export function powerArgv(action: PowerParams['action'], env: { systemd: boolean; has: (p: string) => boolean }): string[] | undefined {
  if (env.systemd && env.has('systemctl')) return ['systemctl', action === 'reboot' ? 'reboot' : 'poweroff'];
  if (env.has('shutdown')) return ['shutdown', action === 'reboot' ? '-r' : '-h', 'now'];
  return undefined;
}

let pending: { timer: NodeJS.Timeout; action: string; at: number } | undefined;

/**
 * `power`: refused unless the agent config sets `policy.allow_power: true` (the hub also always
 * asks for approval). The result is sent first; the action runs after `delay_s` (at least 1 s).
 */
export function power(params: PowerParams, cfg: AgentConfig, onError: (err: Error) => void = () => {}): PowerResult {
  if (!cfg.policy.allow_power) throw new HiveError('PERMISSION_DENIED', 'power is disabled on this satellite (policy.allow_power: false)');
  if (pending) throw new HiveError('CONFLICT', `A ${pending.action} is already scheduled for ${new Date(pending.at).toISOString()}`);
  const argv = powerArgv(params.action, { systemd: systemdRunning(), has: (p) => findProgram(p) !== undefined });
  if (!argv) throw new HiveError('SERVICE_NOT_RUNNING', 'Neither systemctl (with systemd) nor shutdown is available on this satellite');
  const program = findProgram(argv[0] as string) as string;
  const delayMs = Math.max(1000, params.delay_s * 1000);
  const at = Date.now() + delayMs;
  const timer = setTimeout(() => {
    pending = undefined;
    runProgram(program, argv.slice(1), { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 })
      .then((r) => {
        if (r.exitCode !== 0) onError(new Error(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim().slice(0, 256)}`));
      })
      .catch(onError);
  }, delayMs);
  timer.unref();
  pending = { timer, action: params.action, at };
  return { action: params.action, scheduledAt: new Date(at).toISOString(), argv };
}
