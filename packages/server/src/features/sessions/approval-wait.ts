import { HiveError } from '@hive/protocol';
import { type Principal, SYSTEM } from '../../lib/principal.js';
import type { ApprovalsService, ApprovalView, Decision } from '../approvals/approvals-service.js';

/** What a request that waits for a person tells its caller (WS event, HTTP 103 hint, MCP result). */
export interface PendingApproval {
  approval_id: string;
  reason: string;
  expires_at: string;
}

export interface WaitHooks {
  /** Called once the approval exists, before the wait starts. */
  onPendingApproval?: ((a: PendingApproval) => void) | undefined;
  /** Aborting (the requester went away) withdraws the approval: a denial nobody has to make. */
  signal?: AbortSignal | undefined;
}

/** Resolution of an approval withdrawn because its requester left (or the hub stopped). */
export const WENT_AWAY = 'requester went away';

export const pendingOf = (a: ApprovalView): PendingApproval => ({ approval_id: a.id, reason: a.reason, expires_at: a.expires_at });

/**
 * Resolves with the decision on an approval (approvals.wait also hears decisions taken on other
 * hub instances). `timeoutMs` ends the wait with null (the approval stays pending); an aborted
 * `signal` withdraws the approval.
 */
export function awaitDecision(
  deps: { approvals: ApprovalsService },
  id: string,
  opts: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined; withdrawnBy?: string | undefined } = {},
): Promise<Decision | null> {
  return new Promise<Decision | null>((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (d: Decision | null) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(d);
    };
    void deps.approvals.wait(id).then(finish);
    const onAbort = () => {
      void deps.approvals.withdraw(id, opts.withdrawnBy ?? 'system:hub', WENT_AWAY).catch(() => {});
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => finish(null), opts.timeoutMs);
      timer.unref();
    }
    // Decided before we listened (a very fast approver)?
    void deps.approvals
      .get(SYSTEM, id)
      .then((a) => {
        if (a.status !== 'pending') finish({ status: a.status, by: a.resolved_by, resolution: a.resolution });
      })
      .catch(() => {});
  });
}

/** Human words for a decision that is not an approval. */
export function refusalText(d: Decision): string {
  if (d.status === 'expired') return 'approval timed out (no decision)';
  return `denied by ${d.by ?? 'an approver'}${d.resolution ? `: ${d.resolution}` : ''}`;
}

/** Requests an approval and waits for its decision; throws APPROVAL_DENIED unless approved. */
export async function requireApproval(
  deps: { approvals: ApprovalsService },
  p: Principal,
  job: { id: string; satellite_id: string; command: string; params: unknown },
  reason: string,
  hooks: WaitHooks = {},
): Promise<ApprovalView> {
  const approval = await deps.approvals.request(p, job, reason);
  hooks.onPendingApproval?.(pendingOf(approval));
  const d = await awaitDecision(deps, approval.id, { signal: hooks.signal, withdrawnBy: `${p.type}:${p.name}` });
  if (d?.status !== 'approved') {
    const why = d ? refusalText(d) : 'no decision';
    throw new HiveError('APPROVAL_DENIED', `${job.command} ${why}`, { approval_id: approval.id, reason, status: d?.status ?? 'pending' });
  }
  return approval;
}
