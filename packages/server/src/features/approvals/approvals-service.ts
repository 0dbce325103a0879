import { HiveError } from '@hive/protocol';
import type { Bus } from '../../bus/bus.js';
import { newId } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { inProject, requireScope } from '../../lib/principal.js';
import { redact } from '../../lib/redact.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { ApprovalsTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';

export interface ApprovalView {
  id: string;
  job_id: string;
  satellite_id: string;
  command: string;
  params: unknown;
  reason: string;
  requested_by: string;
  status: ApprovalsTable['status'];
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
  resolution: string | null;
}

export type Decision = { status: 'approved' | 'denied' | 'expired'; by: string | null; resolution: string | null };

const toView = (r: ApprovalsTable): ApprovalView => ({
  ...r,
  // approvers see what will run, minus secrets
  params: redact(fromJson(r.params, {})),
});

/**
 * Central approvals: a pending record in the database, broadcast to every operator with
 * `operator.approvals`; the first decision wins atomically (a conditional UPDATE, so also across
 * hub instances); silence until the deadline is a denial with reason `timeout`.
 */
export const approvalsServiceFactory = ({
  db,
  bus,
  audit,
  timeoutMs,
  maxPendingPerRequester = 20,
}: {
  db: Db;
  bus: Bus;
  audit: Pick<AuditService, 'log'>;
  timeoutMs: number;
  maxPendingPerRequester?: number;
}) => {
  const waiters = new Map<string, Set<(d: Decision) => void>>();
  const onDecision: ((approval: ApprovalsTable, d: Decision) => Promise<void>)[] = [];

  function notify(row: ApprovalsTable, d: Decision): void {
    for (const w of waiters.get(row.id) ?? []) w(d);
    waiters.delete(row.id);
    for (const h of onDecision) void h(row, d).catch(() => {});
  }

  // Scale-out: a decision taken on another instance releases the waiters here (the instance that
  // decided runs the onDecision handlers, once).
  bus.subscribe(({ event, payload, origin }) => {
    if (!origin || event !== 'approval.resolved') return;
    const v = payload as { id: string; status: Decision['status']; resolved_by?: string | null; resolution?: string | null };
    for (const w of waiters.get(v.id) ?? []) w({ status: v.status, by: v.resolved_by ?? null, resolution: v.resolution ?? null });
    waiters.delete(v.id);
  });

  async function decide(id: string, status: Decision['status'], by: string | null, resolution: string | null): Promise<ApprovalsTable | null> {
    const r = await db
      .updateTable('approvals')
      .set({ status, resolved_at: nowIso(), resolved_by: by, resolution })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return null;
    const row = await db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    bus.publish('approval.resolved', toView(row));
    notify(row, { status, by, resolution });
    return row;
  }

  return {
    /** Runs after every decision (the commands feature resumes or ends the job). */
    onDecision(h: (approval: ApprovalsTable, d: Decision) => Promise<void>): void {
      onDecision.push(h);
    },

    async request(p: Principal, job: { id: string; satellite_id: string; command: string; params: unknown }, reason: string): Promise<ApprovalView> {
      // Approval prompts interrupt people: one requester cannot flood them (seed 001).
      const [{ n } = { n: 0 }] = await db
        .selectFrom('approvals')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'pending')
        .where('requested_by', '=', `${p.type}:${p.name}`)
        .execute();
      if (Number(n) >= maxPendingPerRequester) {
        audit.log({
          actor: p,
          action: 'approval.rate_limited',
          target: { type: 'satellite', id: job.satellite_id },
          details: { pending: Number(n), command: job.command },
          result: 'failure',
        });
        throw new HiveError('RATE_LIMITED', `${Number(n)} of your requests already wait for approval`, undefined, { action: 'retry', retryAfterMs: 30_000 });
      }
      const now = Date.now();
      const row: ApprovalsTable = {
        id: newId('apr'),
        job_id: job.id,
        satellite_id: job.satellite_id,
        command: job.command,
        params: toJson(job.params),
        reason,
        requested_by: `${p.type}:${p.name}`,
        status: 'pending',
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + timeoutMs).toISOString(),
        resolved_at: null,
        resolved_by: null,
        resolution: null,
      };
      await db.insertInto('approvals').values(row).execute();
      audit.log({
        actor: p,
        action: 'approval.requested',
        target: { type: 'satellite', id: job.satellite_id },
        details: { approval_id: row.id, job_id: job.id, command: job.command, reason },
        result: 'success',
      });
      bus.publish('approval.requested', toView(row));
      return toView(row);
    },

    /** Resolves when the approval is decided (or expires). */
    wait(id: string): Promise<Decision> {
      return new Promise((resolve) => {
        const set = waiters.get(id) ?? new Set();
        set.add(resolve);
        waiters.set(id, set);
      });
    },

    async resolve(p: Principal, id: string, decision: 'approve' | 'deny', reason?: string): Promise<ApprovalView> {
      requireScope(p, 'operator.approvals');
      const existing = await db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst();
      if (!existing) throw new HiveError('NOT_FOUND', `Approval ${id} not found`);
      if (p.projects) {
        const sat = await db.selectFrom('satellites').select('project').where('id', '=', existing.satellite_id).executeTakeFirst();
        if (!sat || !inProject(p, sat.project)) throw new HiveError('NOT_FOUND', `Approval ${id} not found`);
        if (!inProject(p, sat.project, 'approve')) throw new HiveError('FORBIDDEN', `Your role in project ${sat.project} cannot decide approvals`);
      }
      if (existing.status === 'pending' && existing.expires_at < nowIso()) {
        await decide(id, 'expired', null, 'timeout');
        audit.log({
          actor: { type: 'system', id: 'hub', name: 'hub' },
          action: 'approval.expired',
          target: { type: 'approval', id },
          details: { job_id: existing.job_id, reason: 'timeout' },
          result: 'success',
        });
      }
      const status = decision === 'approve' ? 'approved' : 'denied';
      const row = await decide(id, status, `${p.type}:${p.name}`, reason ?? null);
      if (!row) {
        const now = await db.selectFrom('approvals').select('status').where('id', '=', id).executeTakeFirst();
        audit.log({ actor: p, action: `approval.${decision}`, target: { type: 'approval', id }, result: 'failure', error: `already ${now?.status}` });
        throw new HiveError('ALREADY_RESOLVED', `Approval ${id} is already ${now?.status}`, { status: now?.status });
      }
      audit.log({
        actor: p,
        action: decision === 'approve' ? 'approval.approved' : 'approval.denied',
        target: { type: 'approval', id },
        details: { job_id: row.job_id, command: row.command, satellite_id: row.satellite_id, reason },
        result: 'success',
      });
      return toView(row);
    },

    /** A cancelled job (or a requester that went away) withdraws its approval request. */
    async withdraw(id: string, by: string, resolution = 'job cancelled'): Promise<void> {
      await decide(id, 'denied', by, resolution);
    },

    async list(p: Principal, status?: ApprovalsTable['status']): Promise<ApprovalView[]> {
      requireScope(p, 'operator.approvals');
      let q = db.selectFrom('approvals').selectAll();
      if (status) q = q.where('status', '=', status);
      if (p.projects) {
        const projects = [...p.projects.keys()];
        if (projects.length === 0) return [];
        q = q.where('satellite_id', 'in', (eb) => eb.selectFrom('satellites').select('id').where('project', 'in', projects));
      }
      return (await q.orderBy('id', 'desc').limit(500).execute()).map(toView);
    },

    async get(p: Principal, id: string): Promise<ApprovalView> {
      requireScope(p, 'operator.approvals');
      const row = await db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new HiveError('NOT_FOUND', `Approval ${id} not found`);
      return toView(row);
    },

    /** Expires overdue approvals as denials with reason `timeout` (also those left by a restart). */
    async sweep(now = new Date()): Promise<number> {
      const due = await db.selectFrom('approvals').select('id').where('status', '=', 'pending').where('expires_at', '<', now.toISOString()).execute();
      let n = 0;
      for (const { id } of due) {
        const row = await decide(id, 'expired', null, 'timeout');
        if (!row) continue;
        n++;
        audit.log({
          actor: { type: 'system', id: 'hub', name: 'hub' },
          action: 'approval.expired',
          target: { type: 'approval', id },
          details: { job_id: row.job_id, command: row.command, reason: 'timeout' },
          result: 'success',
        });
      }
      return n;
    },
  };
};

export type ApprovalsService = ReturnType<typeof approvalsServiceFactory>;
