import { randomUUID } from 'node:crypto';
import { HiveError, isNodeCommand, NODE_COMMANDS } from '@hive/protocol';
import type { Bus } from '../../bus/bus.js';
import { newId } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import { redact } from '../../lib/redact.js';
import { toJson } from '../../store/db.js';
import type { JobsTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { DevicesService } from '../devices/devices-service.js';
import { type CommandsStore, type JobView, toJobView } from './commands-store.js';

export interface ExecRequest {
  satellite: string;
  command: string;
  params: Record<string, unknown>;
  timeout_ms?: number | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Extra time the hub waits beyond the node's own timeout, for the result to travel back. */
const TRANSIT_GRACE_MS = 2_000;

/**
 * Runs node commands as persisted jobs: validate on the hub, route through the bus to whoever
 * holds the satellite, record the outcome, audit every exec with its correlation id.
 */
export const commandsServiceFactory = ({
  store,
  devices,
  bus,
  audit,
}: {
  store: CommandsStore;
  devices: Pick<DevicesService, 'resolveRef'>;
  bus: Bus;
  audit: Pick<AuditService, 'log'>;
}) => {
  const running = new Set<string>();
  const inflight = new Set<Promise<unknown>>();
  let shuttingDown = false;

  async function finish(job: JobsTable, patch: Partial<JobsTable>): Promise<JobView> {
    const finished = new Date();
    const full: JobsTable = {
      ...job,
      ...patch,
      finished_at: finished.toISOString(),
      duration_ms: finished.getTime() - new Date(job.started_at ?? job.created_at).getTime(),
    };
    running.delete(job.id);
    await store.update(job.id, {
      state: full.state,
      finished_at: full.finished_at,
      duration_ms: full.duration_ms,
      result: full.result,
      error_code: full.error_code,
      error_message: full.error_message,
    });
    bus.publish('job:updated', { id: job.id, correlation_id: job.correlation_id, satellite_id: job.satellite_id, state: full.state });
    return toJobView(full);
  }

  async function execJob(p: Principal, req: ExecRequest): Promise<JobView> {
    requireScope(p, 'operator.write');
    if (shuttingDown) throw new HiveError('SHUTTING_DOWN', 'Hub is shutting down', undefined, { action: 'retry', retryAfterMs: 5000 });
    if (!isNodeCommand(req.command)) {
      throw new HiveError('UNKNOWN_COMMAND', `Unknown command ${req.command}`, { known: Object.keys(NODE_COMMANDS) });
    }
    const parsed = NODE_COMMANDS[req.command].params.safeParse(req.params ?? {});
    if (!parsed.success) {
      throw new HiveError('INVALID_PARAMETERS', `Invalid params for ${req.command}`, {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    const sat = await devices.resolveRef(req.satellite);
    const timeoutMs = req.timeout_ms ?? DEFAULT_TIMEOUT_MS;
    const now = new Date();
    const job: JobsTable = {
      id: newId('job'),
      correlation_id: randomUUID(),
      satellite_id: sat.id,
      command: req.command,
      params: toJson(redact(parsed.data)),
      state: 'running',
      actor_type: p.type,
      actor_id: p.id,
      timeout_ms: timeoutMs,
      created_at: now.toISOString(),
      started_at: now.toISOString(),
      finished_at: null,
      duration_ms: null,
      result: null,
      error_code: null,
      error_message: null,
    };
    await store.insert(job);
    running.add(job.id);
    const auditBase = {
      actor: p,
      action: 'command.exec',
      target: { type: 'satellite', id: sat.id },
      correlationId: job.correlation_id,
    };
    // system.run takes its own timeout; give it the job's.
    const nodeParams = req.command === 'system.run' ? { ...parsed.data, timeoutMs } : parsed.data;
    let view: JobView;
    try {
      const data = await bus.invokeNode(
        sat.id,
        { command: req.command, params: nodeParams, correlationId: job.correlation_id, issuedAt: now.getTime(), deadline: now.getTime() + timeoutMs },
        timeoutMs + TRANSIT_GRACE_MS,
      );
      const exitCode = (data as { exitCode?: number | null } | null)?.exitCode;
      const failed = req.command === 'system.run' && exitCode !== 0;
      view = await finish(job, {
        state: failed ? 'failed' : 'succeeded',
        result: toJson(data),
        ...(failed ? { error_code: 'COMMAND_FAILED', error_message: `exit code ${exitCode ?? 'none'}` } : {}),
      });
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
      const timedOut = e.code === 'TIMEOUT' || e.code === 'COMMAND_TIMEOUT';
      view = await finish(job, { state: timedOut ? 'timed_out' : 'failed', error_code: timedOut ? 'COMMAND_TIMEOUT' : e.code, error_message: e.message });
      audit.log({
        ...auditBase,
        details: { command: req.command, params: parsed.data, state: view.state, duration_ms: view.duration_ms, job_id: job.id },
        result: 'failure',
        error: `${e.code}: ${e.message}`,
      });
      const code = timedOut ? 'COMMAND_TIMEOUT' : e.code;
      throw new HiveError(code, e.message, { job_id: job.id, correlation_id: job.correlation_id, state: view.state });
    }
    const res = view.result as { exitCode?: number } | null;
    audit.log({
      ...auditBase,
      details: {
        command: req.command,
        params: parsed.data,
        state: view.state,
        duration_ms: view.duration_ms,
        job_id: job.id,
        ...(res && 'exitCode' in res ? { exit_code: res.exitCode } : {}),
      },
      result: view.state === 'succeeded' ? 'success' : 'failure',
    });
    return view;
  }

  return {
    exec(p: Principal, req: ExecRequest): Promise<JobView> {
      const run = execJob(p, req);
      inflight.add(run);
      void run.catch(() => {}).finally(() => inflight.delete(run));
      return run;
    },

    async get(p: Principal, id: string): Promise<JobView> {
      requireScope(p, 'operator.read');
      const row = await store.get(id);
      if (!row) throw new HiveError('NOT_FOUND', `Job ${id} not found`);
      return toJobView(row);
    },

    async list(p: Principal, f: { satellite?: string | undefined; state?: string | undefined; page: number; per_page: number }) {
      requireScope(p, 'operator.read');
      const satellite_id = f.satellite ? (await devices.resolveRef(f.satellite)).id : undefined;
      return store.list({ satellite_id, state: f.state, page: f.page, per_page: f.per_page });
    },

    /** Jobs left running by a previous process that died can never complete: end them. */
    recover: () => store.failUnfinished('hub restarted while the job was running'),

    /** Shutdown: refuse new jobs, end the ones in flight with a reason. */
    async shutdown(graceMs = 3000): Promise<number> {
      shuttingDown = true;
      // Connections are closed first, which settles in-flight invokes; wait for their records.
      await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, graceMs).unref())]);
      const ids = [...running];
      running.clear();
      return store.failUnfinished('hub shut down while the job was running', ids);
    },
  };
};

export type CommandsService = ReturnType<typeof commandsServiceFactory>;
