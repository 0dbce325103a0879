import { existsSync } from 'node:fs';
import type { ServiceState, ServiceStatusParams, ServiceStatusResult } from '@hive/protocol';
import { HiveError, UNIT_NAME_RE } from '../lib/protocol-lite.js';
import { findProgram, runProgram } from '../lib/run.js';

/** sd_booted(): systemd is PID 1 exactly when this directory exists. */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

function stateOf(load: string, active: string): ServiceState {
  if (load === 'not-found') return 'not-found';
  switch (active) {
    case 'active':
    case 'reloading':
      return 'running';
    case 'inactive':
      return 'stopped';
    case 'failed':
      return 'failed';
    case 'activating':
      return 'activating';
    case 'deactivating':
      return 'deactivating';
    default:
      return 'unknown';
  }
}

/** `Mon 2024-01-01 12:00:00 UTC` → ISO-8601 when it parses. */
function sinceOf(ts: string | undefined): string | null {
  if (!ts || ts === 'n/a') return null;
  const d = new Date(
    ts
      .replace(/^[A-Za-z]{3} /, '')
      .replace(/ UTC$/, 'Z')
      .replace(' ', 'T'),
  );
  return Number.isNaN(d.getTime()) ? ts : d.toISOString();
}

/**
 * `systemctl show` for the given units (validated names after `--`, execFile, no shell).
 * Without systemd as init: SERVICE_NOT_RUNNING.
 */
export async function serviceStatus(params: ServiceStatusParams, watched: readonly string[], signal?: AbortSignal): Promise<ServiceStatusResult> {
  const units = params.units ?? [...watched];
  if (units.length === 0) throw new HiveError('INVALID_PARAMETERS', 'No units given and the agent config watches none (services.watch)');
  if (!units.every((u) => UNIT_NAME_RE.test(u))) throw new HiveError('INVALID_PARAMETERS', 'invalid unit name');
  const systemctl = findProgram('systemctl');
  if (!systemctl || !systemdRunning()) {
    throw new HiveError('SERVICE_NOT_RUNNING', 'systemd is not running on this satellite (not the init system); service states are unavailable', {
      service: 'systemd',
    });
  }
  const props = 'Id,LoadState,ActiveState,SubState,Description,MainPID,ActiveEnterTimestamp';
  const r = await runProgram(systemctl, ['show', '--no-pager', `--property=${props}`, '--', ...units], {
    timeoutMs: 10_000,
    maxOutputBytes: 1024 * 1024,
    signal,
  });
  if (r.timedOut) throw new HiveError('TIMEOUT', 'systemctl show did not answer in time');
  if (r.exitCode !== 0) throw new HiveError('SERVICE_NOT_RUNNING', `systemctl show failed: ${r.stderr.trim().slice(0, 512)}`, { service: 'systemd' });
  const blocks = r.stdout.trim().split(/\n\s*\n/);
  return {
    units: units.map((name, i) => {
      const kv = new Map<string, string>();
      for (const line of (blocks[i] ?? '').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
      }
      const loadState = kv.get('LoadState') ?? 'unknown';
      const activeState = kv.get('ActiveState') ?? 'unknown';
      const pid = Number(kv.get('MainPID') ?? 0);
      return {
        name,
        status: stateOf(loadState, activeState),
        loadState,
        activeState,
        subState: kv.get('SubState') ?? 'unknown',
        description: (kv.get('Description') ?? '').slice(0, 256),
        mainPid: pid > 0 ? pid : null,
        since: sinceOf(kv.get('ActiveEnterTimestamp')),
      };
    }),
  };
}

/** States of the watched services for status reports; `unknown` for each when systemd is absent. */
export async function watchedServiceStates(units: readonly string[]): Promise<Record<string, ServiceState>> {
  const out: Record<string, ServiceState> = {};
  if (units.length === 0) return out;
  try {
    const r = await serviceStatus({ units: [...units] }, []);
    for (const u of r.units) out[u.name] = u.status;
  } catch {
    for (const u of units) out[u] = 'unknown';
  }
  return out;
}
