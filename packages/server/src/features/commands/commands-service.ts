import { ERROR_CODES, type ErrorCode, HiveError, type InvokeParams, isErrorCode, isNodeCommand, NODE_COMMANDS } from '@hive/protocol';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bus } from '../../bus/bus.js';
import { IdMap, InFlightCount } from '../../lib/id-map.js';
import { newId, uuidv7 } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { inProject, requireProject, requireScope, visibleProjects } from '../../lib/principal.js';
import { redact } from '../../lib/redact.js';
import { nowIso, toJson } from '../../store/db.js';
import type { JobState, JobsTable } from '../../store/schema.js';
import { type ApprovalsConfig, approvalReason } from '../approvals/approval-policy.js';
import type { ApprovalsService } from '../approvals/approvals-service.js';
import type { AuditService } from '../audit/audit-service.js';
import type { SatelliteView } from '../devices/devices-store.js';
import { type CommandsStore, FINAL_STATES, type JobView, laterJson, toJobView } from './commands-store.js';
import type { HubSigner } from './hub-key.js';

export interface ExecOptions {
  command: string;
  params: Record<string, unknown>;
  timeout_ms?: number | undefined;
  /** When the satellite is offline: keep the job until this time and run it once it connects. */
  queue_until?: string | undefined;
  /** Return at once with the job; follow it with `job:updated` events or GET /commands/:id. */
  async?: boolean | undefined;
  source?: 'api' | 'schedule' | 'auto_fix' | undefined;
}

export interface ExecRequest extends ExecOptions {
  satellite: string;
}

export interface Target {
  satellites?: string[] | undefined;
  tag?: string | undefined;
  group?: string | undefined;
}

export interface ExecManyRequest extends ExecOptions {
  target: Target;
  /** Jobs dispatched at once; the rest wait for a free slot. */
  concurrency?: number | undefined;
}

export interface TargetResult {
  satellite_id: string;
  slug: string;
  job_id: string | null;
  state: JobState;
  result: unknown;
  error: { code: string; message: string } | null;
}

export interface BatchResult {
  batch_id: string;
  command: string;
  results: TargetResult[];
  summary: {
    total: number;
    succeeded: number;
    failed: number;
    offline: number;
    denied: number;
    timed_out: number;
    pending_approval: number;
    queued: number;
    cancelled: number;
  };
}

/**
 * Takes a fan-out's answer piece by piece (the REST route streams it): `head` once the batch
 * exists, then `results` with every target's result in target order, in runs, as soon as it and
 * all targets before it are known (their audit entries are in the write-ahead log by then). With a
 * sink, the `results` of the returned BatchResult is empty; its summary counts them all.
 */
export interface BatchSink {
  head(batchId: string, command: string): void;
  results(run: TargetResult[]): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * Invokes signed together in a fan-out: one Ed25519 signature (~50 µs) per chunk, and each invoke
 * carries a Merkle proof of log2(chunk) steps of ~48 bytes that its node hashes through. 128: a
 * 7-step proof for 79 signatures per 10,000 targets (1,024: 10 steps, ~150 bytes more in every
 * invoke frame and 3 more hashes on every node, for 10 signatures).
 */
const SIGN_CHUNK = 128;
/** Extra time the hub waits beyond the node's own timeout, for the result to travel back. */
const TRANSIT_GRACE_MS = 2_000;
/** A fan-out's held writes wait at most this long for its answer to go out (see `execMany`). */
const ANSWER_HOLD_MAX_MS = 3_000;
const ScriptParams = z.record(z.string(), z.unknown());

/**
 * Runs node commands as persisted jobs: validate on the hub, check the satellite's claims and the
 * approval policy, sign, route through the bus to whoever holds the satellite, record the
 * outcome, audit every step with the job's correlation id.
 */
export const commandsServiceFactory = ({
  store,
  resolveRef,
  resolveTargets,
  bus,
  audit,
  approvals,
  policy,
  signer,
  fanoutConcurrency = 10_000,
  onFinished,
  logger,
}: {
  store: CommandsStore;
  logger?: Pick<Logger, 'error'> | undefined;
  resolveRef: (ref: string) => Promise<SatelliteView>;
  resolveTargets: (t: Target) => Promise<SatelliteView[]>;
  bus: Bus;
  audit: Pick<AuditService, 'log' | 'settleWal' | 'deferWrites'>;
  approvals: ApprovalsService;
  policy: ApprovalsConfig;
  signer: HubSigner;
  fanoutConcurrency?: number;
  /** Metrics: every job that reaches a final state. */
  onFinished?: ((command: string, state: string, durationMs: number | null) => void) | undefined;
}) => {
  // IdMaps, not Maps: jobs come and go thousands of times a second (see lib/id-map.ts).
  const running = new IdMap<JobsTable>();
  const finalWaiters = new IdMap<((v: JobView) => void)[]>();
  const cancelRequested = new IdMap<true>();
  /** Dispatches whose outcome is not recorded yet; shutdown waits for them. */
  const inflight = new InFlightCount();
  let shuttingDown = false;

  function validate(command: string, params: unknown): Record<string, unknown> {
    if (isNodeCommand(command)) {
      const parsed = NODE_COMMANDS[command].params.safeParse(params ?? {});
      if (!parsed.success) {
        throw new HiveError('INVALID_PARAMETERS', `Invalid params for ${command}`, {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        });
      }
      return parsed.data as Record<string, unknown>;
    }
    if (/^script\.[a-z0-9_][a-z0-9_.-]{0,100}$/i.test(command)) {
      // Typed per satellite: the node checks them against the script's declared schema.
      const parsed = ScriptParams.safeParse(params ?? {});
      if (!parsed.success) throw new HiveError('INVALID_PARAMETERS', `Params for ${command} must be an object`);
      return parsed.data;
    }
    throw new HiveError('UNKNOWN_COMMAND', `Unknown command ${command}`, { known: Object.keys(NODE_COMMANDS) });
  }

  function checkClaims(sat: SatelliteView, command: string): void {
    if (!sat.commands.includes(command)) {
      throw new HiveError('UNKNOWN_COMMAND', `Satellite ${sat.slug} does not serve ${command} (not among the commands it claimed)`, { claimed: sat.commands });
    }
    if (!sat.approved_commands.includes(command)) {
      throw new HiveError('CLAIM_NOT_APPROVED', `Satellite ${sat.slug} claims ${command}, but no operator approved that claim yet`, { satellite: sat.id });
    }
  }

  function publish(job: JobsTable): void {
    bus.publish('job:updated', { id: job.id, correlation_id: job.correlation_id, satellite_id: job.satellite_id, batch_id: job.batch_id, state: job.state });
  }

  // The jobs of a fan-out share one params string: parse it once, not once per target.
  let lastParams: { s: string; v: unknown } = { s: '{}', v: {} };
  const parsedParams = (s: string): unknown => {
    if (s !== lastParams.s) lastParams = { s, v: JSON.parse(s) };
    return lastParams.v;
  };

  /**
   * `data`: the node's answer as an object when there is one (`patch.result` is its JSON): not
   * parsed again. `startedMs`: when the job was sent, if the caller knows (saves parsing `started_at`).
   * `inBatch`: a job of a fan-out, which answers once all its jobs are done (its audit entry's
   * write-ahead line may go out with the others of this turn; see `audit.log`).
   */
  async function finish(job: JobsTable, patch: Partial<JobsTable>, data?: unknown, startedMs?: number, inBatch = false): Promise<JobView> {
    const finished = Date.now();
    const full: JobsTable = {
      ...job,
      ...patch,
      payload: null,
      finished_at: new Date(finished).toISOString(),
      duration_ms: finished - (startedMs ?? new Date(job.started_at ?? job.created_at).getTime()),
    };
    running.delete(job.id);
    cancelRequested.delete(job.id);
    // Written behind: on one process the answer does not wait for the disk (every read of jobs
    // waits for queued writes first; the audit entry below is in the write-ahead log). Clustered,
    // it does: the next request may reach another instance, which reads the database, and the
    // job:updated event goes out once the row is stored (other instances read it on that event).
    const patchOf = {
      state: full.state,
      payload: null,
      finished_at: full.finished_at,
      duration_ms: full.duration_ms,
      result: full.result,
      error_code: full.error_code,
      error_message: full.error_message,
    };
    if (bus.clustered) {
      await store.finishIfOpen(job.id, patchOf).then(
        (ok) => {
          if (!ok) logger?.error({ job: job.id, state: full.state }, 'job already ended elsewhere (its instance was declared lost); result not stored');
        },
        (err: Error) => logger?.error({ err: err.message, job: job.id }, 'job result could not be stored'),
      );
      publish(full);
    } else {
      // On one process the event goes out at once: every read here waits for queued writes, and a
      // fan-out's rows wait for its answer (its jobs' events must not). Nothing waits for the
      // write: no promise or closure keeps the finished row alive until then (10,000 of them
      // during a fan-out, copied by every scavenge).
      const id = job.id;
      store.updateBehind(id, patchOf, (err) => logger?.error({ err: (err as Error).message, job: id }, 'job result could not be stored'));
      publish(full);
    }
    onFinished?.(full.command, full.state, full.duration_ms);
    const parsed = data !== undefined ? data : full.result ? JSON.parse(full.result) : null;
    const view = toJobView(full, { params: parsedParams(full.params), result: parsed });
    const res = parsed as { exitCode?: number } | null;
    audit.log(
      {
        actor: { type: job.actor_type, id: job.actor_id, name: job.actor_name, ip: job.source_ip ?? undefined },
        action: 'command.exec',
        target: { type: 'satellite', id: job.satellite_id },
        correlationId: job.correlation_id,
        details: {
          job_id: job.id,
          command: job.command,
          params: parsedParams(job.params),
          state: full.state,
          duration_ms: full.duration_ms,
          source: job.source,
          ...(job.batch_id ? { batch_id: job.batch_id } : {}),
          ...(job.approval_id ? { approval_id: job.approval_id } : {}),
          ...(res && typeof res === 'object' && 'exitCode' in res ? { exit_code: res.exitCode } : {}),
        },
        result: full.state === 'succeeded' ? 'success' : 'failure',
        error: full.error_code ? `${full.error_code}: ${full.error_message ?? ''}` : undefined,
      },
      inBatch ? { batched: true } : undefined,
    );
    const waiters = finalWaiters.get(job.id);
    if (waiters) {
      finalWaiters.delete(job.id);
      for (const w of waiters) w(view);
    }
    return view;
  }

  /** Calls `cb` with the job's view when it ends (here, or on another instance: see the bus handler). */
  function whenFinal(jobId: string, cb: (v: JobView) => void): void {
    const list = finalWaiters.get(jobId);
    if (list) list.push(cb);
    else finalWaiters.set(jobId, [cb]);
  }

  function waitFinal(jobId: string): Promise<JobView> {
    return new Promise((resolve) => whenFinal(jobId, resolve));
  }

  /** The unsigned invoke of a job, issued at `at`. */
  function invokeOf(job: JobsTable, params: Record<string, unknown>, at: number): Omit<InvokeParams, 'sig' | 'proof'> {
    // system.run takes its own timeout; give it the job's.
    const nodeParams = job.command === 'system.run' ? { ...params, timeoutMs: job.timeout_ms } : params;
    return {
      command: job.command,
      params: nodeParams,
      correlationId: job.correlation_id,
      target: job.satellite_id,
      issuedAt: at,
      deadline: at + job.timeout_ms,
    };
  }

  /** Sends a job to its node and records the outcome (`signed`: already signed with its batch). */
  function dispatch(job: JobsTable, params: Record<string, unknown>, signed?: InvokeParams): Promise<JobView> {
    // Signed with its batch: a fan-out's job (see finish).
    const inBatch = signed !== undefined;
    // Dropped once sent: the invoke (its signature and proof) must not stay alive until the
    // result (10,000 of them during a fan-out, copied by every scavenge).
    let presigned = signed;
    const run = (async () => {
      const startedMs = Date.now();
      job.state = 'running';
      job.started_at = new Date(startedMs).toISOString();
      running.set(job.id, job);
      store.started(job.id);
      publish(job);
      try {
        const waitMs = job.timeout_ms + TRANSIT_GRACE_MS;
        const answer = presigned
          ? bus.invokeNode(job.satellite_id, presigned, waitMs)
          : signer.signSoon(invokeOf(job, params, startedMs)).then((invoke) => bus.invokeNode(job.satellite_id, invoke, waitMs));
        presigned = undefined;
        const data = await answer;
        const exitCode = (data as { exitCode?: number | null } | null)?.exitCode;
        const failed = job.command === 'system.run' && exitCode !== 0;
        return await finish(
          job,
          {
            state: failed ? 'failed' : 'succeeded',
            // A fan-out's row waits for its answer: the text is made when it is written.
            result: inBatch && !bus.clustered ? laterJson(data) : toJson(data),
            ...(failed ? { error_code: 'COMMAND_FAILED', error_message: `exit code ${exitCode ?? 'none'}` } : {}),
          },
          data ?? null,
          startedMs,
          inBatch,
        );
      } catch (err) {
        const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
        if (cancelRequested.has(job.id))
          return finish(job, { state: 'cancelled', error_code: 'JOB_CANCELLED', error_message: 'cancelled by an operator' }, undefined, startedMs, inBatch);
        const timedOut = e.code === 'TIMEOUT' || e.code === 'COMMAND_TIMEOUT';
        return finish(
          job,
          { state: timedOut ? 'timed_out' : 'failed', error_code: timedOut ? 'COMMAND_TIMEOUT' : e.code, error_message: e.message },
          undefined,
          startedMs,
          inBatch,
        );
      }
    })();
    inflight.add(run);
    return run;
  }

  function newJob(
    p: Principal,
    sat: SatelliteView,
    command: string,
    params: Record<string, unknown>,
    opts: ExecOptions,
    batchId: string | null,
    paramsJson = toJson(redact(params)),
  ): JobsTable {
    const now = nowIso();
    return {
      id: newId('job'),
      correlation_id: uuidv7(),
      satellite_id: sat.id,
      command,
      params: paramsJson,
      payload: null,
      state: 'running',
      actor_type: p.type,
      actor_id: p.id,
      actor_name: p.name,
      source_ip: p.ip ?? null,
      timeout_ms: opts.timeout_ms ?? DEFAULT_TIMEOUT_MS,
      source: opts.source ?? 'api',
      batch_id: batchId,
      approval_id: null,
      queue_until: null,
      created_at: now,
      started_at: null,
      finished_at: null,
      duration_ms: null,
      result: null,
      error_code: null,
      error_message: null,
      instance_id: bus.instanceId ?? null,
    };
  }

  /**
   * Decides the job's first state (running / pending_approval / queued, or failed when the node
   * is offline without a queue) and persists it. The caller then dispatches running jobs.
   */
  async function admit(
    p: Principal,
    sat: SatelliteView,
    job: JobsTable,
    params: Record<string, unknown>,
    opts: ExecOptions,
  ): Promise<{ job: JobsTable; dispatchNow: boolean }> {
    const reason = approvalReason(policy, { command: job.command, params, satellite: sat, source: job.source });
    const online = bus.isNodeConnected(sat.id);
    if (reason) {
      job.state = 'pending_approval';
      job.payload = toJson(params);
      if (opts.queue_until) job.queue_until = new Date(opts.queue_until).toISOString();
      await store.insert(job);
      let approval: Awaited<ReturnType<typeof approvals.request>>;
      try {
        approval = await approvals.request(p, job, reason);
      } catch (err) {
        // No approval record means nobody could ever decide: end the job now.
        const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
        await finish(job, { state: 'failed', error_code: e.code, error_message: e.message });
        throw e;
      }
      job.approval_id = approval.id;
      await store.update(job.id, { approval_id: approval.id });
      publish(job);
      return { job, dispatchNow: false };
    }
    if (!online) {
      if (opts.queue_until && new Date(opts.queue_until).getTime() > Date.now()) {
        job.state = 'queued';
        job.payload = toJson(params);
        job.queue_until = new Date(opts.queue_until).toISOString();
        await store.insert(job);
        audit.log({
          actor: p,
          action: 'command.queued',
          target: { type: 'satellite', id: sat.id },
          correlationId: job.correlation_id,
          details: { job_id: job.id, command: job.command, queue_until: job.queue_until },
          result: 'success',
        });
        publish(job);
        return { job, dispatchNow: false };
      }
      job.state = 'failed';
      await store.insert(job);
      await finish(job, { state: 'failed', error_code: 'SATELLITE_OFFLINE', error_message: `Satellite ${sat.slug} is not connected` });
      return { job, dispatchNow: false };
    }
    return startRunning(job);
  }

  /**
   * `admit` without a wait, for the common case (an online node, no approval needed; a fan-out
   * admits thousands in one go); null when `admit` must decide.
   */
  function admitNow(sat: SatelliteView, job: JobsTable, params: Record<string, unknown>): { job: JobsTable; dispatchNow: boolean } | null {
    if (!bus.isNodeConnected(sat.id) || approvalReason(policy, { command: job.command, params, satellite: sat, source: job.source })) return null;
    return startRunning(job);
  }

  function startRunning(job: JobsTable): { job: JobsTable; dispatchNow: boolean } {
    job.state = 'running';
    // Not awaited: the row goes out with the next batch; the job's later update queues behind it
    // and reads wait for both.
    const id = job.id;
    store.insertBehind(job, (err) => logger?.error({ err: (err as Error).message, job: id }, 'job row could not be stored'));
    return { job, dispatchNow: true };
  }

  /** Raises the job's failure as a typed error (single-target sync calls answer with it). */
  function raise(view: JobView): JobView {
    const details = { job_id: view.id, correlation_id: view.correlation_id, state: view.state };
    switch (view.state) {
      case 'timed_out':
        throw new HiveError('COMMAND_TIMEOUT', view.error?.message ?? 'Command timed out', details);
      case 'denied':
        throw new HiveError('APPROVAL_DENIED', view.error?.message ?? 'Denied', { ...details, approval_id: view.approval_id });
      case 'cancelled':
        throw new HiveError('JOB_CANCELLED', view.error?.message ?? 'Cancelled', details);
      case 'failed': {
        const code = view.error?.code;
        if (code === 'COMMAND_FAILED') return view; // ran, exited non-zero: a result, not an error
        throw new HiveError(code && isErrorCode(code) ? (code as ErrorCode) : 'INTERNAL_ERROR', view.error?.message ?? 'Command failed', details);
      }
      default:
        return view;
    }
  }

  async function execOne(p: Principal, req: ExecRequest): Promise<JobView> {
    requireScope(p, 'operator.write');
    if (shuttingDown) throw new HiveError('SHUTTING_DOWN', 'Hub is shutting down', undefined, { action: 'retry', retryAfterMs: 5000 });
    const params = validate(req.command, req.params);
    const sat = await resolveRef(req.satellite);
    requireProject(p, sat, 'write');
    checkClaims(sat, req.command);
    const fresh = newJob(p, sat, req.command, params, req, null);
    // Waiting starts before the job exists anywhere: once its approval is requested, another
    // instance may decide, run and finish it before admit() even returns here.
    const final = waitFinal(fresh.id);
    let admitted: Awaited<ReturnType<typeof admit>>;
    try {
      admitted = await admit(p, sat, fresh, params, req);
    } catch (err) {
      finalWaiters.delete(fresh.id);
      throw err;
    }
    const { job, dispatchNow } = admitted;
    if (dispatchNow) void dispatch(job, params);
    if (req.async || job.state === 'queued' || job.state === 'failed') finalWaiters.delete(job.id);
    if (req.async || job.state === 'queued') return toJobView(job);
    if (job.state === 'failed') return raise(toJobView({ ...job, ...((await store.get(job.id)) ?? {}) }));
    return raise(await final);
  }

  /**
   * `afterAnswer`: called with the release of the fan-out's held writes once its result is ready;
   * the caller releases them when the answer has gone out (an HTTP response of megabytes is written
   * over several turns of the event loop, which the database writes would hold up). Without it,
   * or at the latest after ANSWER_HOLD_MAX_MS, they are released when the result is ready.
   */
  async function execMany(p: Principal, req: ExecManyRequest, afterAnswer?: (release: () => void) => void, sink?: BatchSink): Promise<BatchResult> {
    requireScope(p, 'operator.write');
    if (shuttingDown) throw new HiveError('SHUTTING_DOWN', 'Hub is shutting down', undefined, { action: 'retry', retryAfterMs: 5000 });
    const params = validate(req.command, req.params);
    // A restricted principal reaches only satellites of projects where it may act.
    const sats = (await resolveTargets(req.target)).filter((s) => inProject(p, s.project, 'write'));
    if (sats.length === 0) throw new HiveError('SATELLITE_NOT_FOUND', 'The target matches no satellite', { target: req.target });
    const batchId = newId('bat');
    // Until it answers, its rows and audit entries wait for their database writes (the answer
    // goes out first; the entries are in the audit write-ahead log before it).
    store.answering(batchId);
    const releaseAudit = audit.deferWrites();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(cap);
      store.answered(batchId);
      releaseAudit();
    };
    let cap: NodeJS.Timeout | undefined;
    let result: BatchResult;
    try {
      result = await fanOut(p, req, params, sats, batchId, sink);
    } catch (err) {
      release();
      throw err;
    }
    if (afterAnswer) {
      cap = setTimeout(release, ANSWER_HOLD_MAX_MS);
      cap.unref();
      afterAnswer(release);
    } else release();
    return result;
  }

  async function fanOut(
    p: Principal,
    req: ExecManyRequest,
    params: Record<string, unknown>,
    sats: SatelliteView[],
    batchId: string,
    sink: BatchSink | undefined,
  ): Promise<BatchResult> {
    // The same for every job of the batch (redacted once, parsed once for the audit entries).
    const paramsJson = toJson(redact(params));
    audit.log({
      actor: p,
      action: 'command.batch',
      target: { type: 'batch', id: batchId },
      details: { command: req.command, target: req.target, satellites: sats.length },
      result: 'success',
    });
    const results: (TargetResult | undefined)[] = new Array(sats.length);
    const summary = { total: sats.length, succeeded: 0, failed: 0, offline: 0, denied: 0, timed_out: 0, pending_approval: 0, queued: 0, cancelled: 0 };
    // Results are counted, and handed to the sink, in target order: `done` targets so far.
    let done = 0;
    let run: TargetResult[] = [];
    let emitting: NodeJS.Immediate | null = null;
    const emit = () => {
      emitting = null;
      if (run.length === 0) return;
      // What the sink passes on must be in the audit write-ahead log first (once per run, not per result).
      audit.settleWal();
      const out = run;
      run = [];
      sink?.results(out);
    };
    const advance = () => {
      for (;;) {
        const r = done < results.length ? results[done] : undefined;
        if (r === undefined) return;
        if (r.error?.code === 'SATELLITE_OFFLINE') summary.offline++;
        else if (r.state === 'succeeded') summary.succeeded++;
        else if (r.state === 'failed') summary.failed++;
        else if (r.state === 'denied') summary.denied++;
        else if (r.state === 'timed_out') summary.timed_out++;
        else if (r.state === 'pending_approval') summary.pending_approval++;
        else if (r.state === 'queued') summary.queued++;
        else if (r.state === 'cancelled') summary.cancelled++;
        if (sink) {
          // Handed on at the end of this turn, with the others of the turn; not kept until the answer.
          run.push(r);
          results[done] = undefined;
          emitting ??= setImmediate(emit);
        }
        done++;
      }
    };
    const put = (i: number, r: TargetResult) => {
      results[i] = r;
      if (i === done) advance();
    };
    sink?.head(batchId, req.command);
    // The answer waits for every job that is waited for (and for the loop below): a count, not a
    // promise per job.
    let outstanding = 1;
    let allFinal: () => void = () => {};
    const finals = new Promise<void>((resolve) => {
      allFinal = resolve;
    });
    const settleOne = () => {
      if (--outstanding === 0) allFinal();
    };
    /** Stops waiting for job `id` (when it was still waited for). */
    const unwait = (id: string) => {
      if (finalWaiters.delete(id)) settleOne();
    };
    const limit = Math.max(1, Math.min(req.concurrency ?? fanoutConcurrency, 100_000));
    // At most `limit` invokes in flight for this batch; the rest wait in order for a free slot.
    let active = 0;
    const waiting: ([JobsTable, InvokeParams] | undefined)[] = [];
    let nextWaiting = 0;
    const start = (job: JobsTable, invoke: InvokeParams): void => {
      void dispatch(job, params, invoke).then(release, release);
    };
    const release = (): void => {
      const next = waiting[nextWaiting];
      if (next) {
        waiting[nextWaiting++] = undefined;
        start(next[0], next[1]); // hand the slot over
      } else active--;
    };
    // Jobs go out in chunks signed together (one signature per chunk, a Merkle proof each).
    let toSend: JobsTable[] = [];
    const sendChunk = () => {
      if (toSend.length === 0) return;
      const chunk = toSend;
      toSend = [];
      const signed = signer.signMany(chunk.map((job) => invokeOf(job, params, Date.now())));
      chunk.forEach((job, k) => {
        const invoke = signed[k] as InvokeParams;
        if (active < limit) {
          active++;
          start(job, invoke);
        } else waiting.push([job, invoke]);
      });
    };
    for (let i = 0; i < sats.length; i++) {
      const sat = sats[i] as SatelliteView;
      const base = { satellite_id: sat.id, slug: sat.slug };
      try {
        checkClaims(sat, req.command);
      } catch (err) {
        const e = err as HiveError;
        put(i, { ...base, job_id: null, state: 'failed', result: null, error: { code: e.code, message: e.message } });
        continue;
      }
      const fresh = newJob(p, sat, req.command, params, req, batchId, paramsJson);
      const record = (v: JobView) => {
        put(i, { satellite_id: sat.id, slug: sat.slug, job_id: v.id, state: v.state, result: v.result, error: v.error });
      };
      // Registered before admit(): a job needing approval can be decided and finished elsewhere at once.
      if (!req.async) {
        outstanding++;
        whenFinal(fresh.id, (v) => {
          record(v);
          settleOne();
        });
      }
      let admitted: Awaited<ReturnType<typeof admit>>;
      try {
        admitted = admitNow(sat, fresh, params) ?? (await admit(p, sat, fresh, params, req));
      } catch (err) {
        unwait(fresh.id);
        const e = err as HiveError;
        put(i, { ...base, job_id: null, state: 'failed', result: null, error: { code: e.code ?? 'INTERNAL_ERROR', message: e.message } });
        continue;
      }
      const { job, dispatchNow } = admitted;
      if (FINAL_STATES.includes(job.state)) {
        unwait(job.id);
        let row: JobsTable | undefined;
        try {
          row = await store.get(job.id);
        } catch {
          // The job ended here (its state is in hand); only its stored row could not be read back.
        }
        record(toJobView(row ?? job));
        continue;
      }
      if (req.async || job.state === 'queued') {
        unwait(job.id);
        record(toJobView(job));
      }
      if (dispatchNow) toSend.push(job);
      if (toSend.length >= SIGN_CHUNK) {
        sendChunk();
        // A turn of the event loop per chunk: the answers of the chunks sent so far are taken in
        // (and streamed, and let go) while the rest go out, instead of piling up behind one loop
        // over all targets (10,000 took ~0.5 s, holding every job until then); other requests are
        // not held up for that long either.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    sendChunk();
    settleOne();
    await finals;
    // Every result is counted by now (each `put` advances as far as the results go); the last
    // run goes to the sink before the answer ends.
    if (emitting) clearImmediate(emitting);
    emit();
    // Its jobs' audit entries are in the write-ahead log before the answer goes out.
    audit.settleWal();
    return { batch_id: batchId, command: req.command, results: sink ? [] : (results as TargetResult[]), summary };
  }

  // An approval decision resumes or ends its job, whichever hub process made the request.
  approvals.onDecision(async (approval, d) => {
    const job = await store.get(approval.job_id);
    if (job?.state !== 'pending_approval') return;
    if (d.status !== 'approved') {
      const why = d.status === 'expired' ? 'approval timed out (no decision)' : `denied by ${d.by ?? 'an approver'}${d.resolution ? `: ${d.resolution}` : ''}`;
      if (await store.transition(job.id, ['pending_approval'], { state: 'denied' })) {
        await finish({ ...job, state: 'denied' }, { state: 'denied', error_code: 'APPROVAL_DENIED', error_message: why });
      }
      return;
    }
    const params = JSON.parse(job.payload ?? '{}') as Record<string, unknown>;
    if (!bus.isNodeConnected(job.satellite_id)) {
      if (job.queue_until && job.queue_until > nowIso()) {
        if (await store.transition(job.id, ['pending_approval'], { state: 'queued' })) publish({ ...job, state: 'queued' });
        return;
      }
      if (await store.transition(job.id, ['pending_approval'], { state: 'failed' })) {
        await finish(
          { ...job, state: 'failed' },
          { state: 'failed', error_code: 'SATELLITE_OFFLINE', error_message: 'Satellite went offline before the approval' },
        );
      }
      return;
    }
    if (await store.transition(job.id, ['pending_approval'], { state: 'running', started_at: nowIso(), instance_id: bus.instanceId ?? null })) {
      await dispatch({ ...job, state: 'running' }, params);
    }
  });

  // Scale-out: a job waited for here may finish on another instance (approved there, say).
  bus.subscribe(({ event, payload, origin }) => {
    if (origin && event === 'job:cancel') {
      const job = running.get((payload as { id: string }).id);
      if (!job) return;
      cancelRequested.set(job.id, true);
      bus.cancelNode(job.satellite_id, job.correlation_id);
      return;
    }
    if (!origin || event !== 'job:updated') return;
    const v = payload as { id: string; state: JobState };
    if (!FINAL_STATES.includes(v.state) || !finalWaiters.has(v.id)) return;
    void store.get(v.id).then((row) => {
      if (!row) return;
      for (const w of finalWaiters.get(v.id) ?? []) w(toJobView(row));
      finalWaiters.delete(v.id);
    });
  });

  /** Ends jobs whose rows say they run, but on an instance that is gone. */
  async function endOrphans(reason: string, w: { instance?: string; keep?: Set<string> }): Promise<number> {
    const ids = await store.failRunning(reason, w);
    for (const id of ids) {
      const row = await store.get(id);
      if (!row) continue;
      publish(row);
      onFinished?.(row.command, row.state, null);
      audit.log({
        actor: { type: 'system', id: 'hub', name: 'hub' },
        action: 'command.exec',
        target: { type: 'satellite', id: row.satellite_id },
        correlationId: row.correlation_id,
        details: { job_id: id, command: row.command, state: 'failed', reason },
        result: 'failure',
        error: `INTERNAL_ERROR: ${reason}`,
      });
    }
    return ids.length;
  }

  // Queued jobs run once, when their satellite connects (to whichever instance claims them first).
  bus.subscribe(({ event, payload }) => {
    if (event !== 'satellite:online' || shuttingDown) return;
    const satId = (payload as { id?: string }).id;
    if (!satId) return;
    void (async () => {
      for (const job of await store.queuedFor(satId)) {
        if (job.queue_until && job.queue_until < nowIso()) continue;
        if (!(await store.transition(job.id, ['queued'], { state: 'running', started_at: nowIso(), instance_id: bus.instanceId ?? null }))) continue;
        audit.log({
          actor: { type: 'system', id: 'hub', name: 'hub' },
          action: 'command.dequeued',
          target: { type: 'satellite', id: satId },
          correlationId: job.correlation_id,
          details: { job_id: job.id },
          result: 'success',
        });
        void dispatch({ ...job, state: 'running' }, JSON.parse(job.payload ?? '{}') as Record<string, unknown>);
      }
    })().catch(() => {});
  });

  return {
    exec(p: Principal, req: ExecRequest): Promise<JobView> {
      return execOne(p, req);
    },
    execMany,

    /**
     * Runs a fix proposed by a finished `logs.analyze` job as its own job. Proposed fixes come
     * from log text, so they always wait for a person's approval (source `auto_fix`).
     */
    async applyFix(p: Principal, jobId: string, index: number): Promise<JobView> {
      requireScope(p, 'operator.write');
      const job = await store.get(jobId);
      if (!job) throw new HiveError('NOT_FOUND', `Job ${jobId} not found`);
      if (job.command !== 'logs.analyze' || job.state !== 'succeeded')
        throw new HiveError('INVALID_PARAMETERS', 'Only a succeeded logs.analyze job has proposed fixes');
      const findings =
        (JSON.parse(job.result ?? '{}') as { findings?: { proposedFix?: { command: string; params: Record<string, unknown> } | null }[] }).findings ?? [];
      const fix = findings[index]?.proposedFix;
      if (!fix) throw new HiveError('NOT_FOUND', `Finding ${index} of job ${job.id} has no proposed fix`);
      return execOne(p, { satellite: job.satellite_id, command: fix.command, params: fix.params, source: 'auto_fix', async: true });
    },

    async cancel(p: Principal, id: string): Promise<JobView> {
      requireScope(p, 'operator.write');
      const job = await store.get(id);
      if (!job) throw new HiveError('NOT_FOUND', `Job ${id} not found`);
      if (FINAL_STATES.includes(job.state)) throw new HiveError('ALREADY_RESOLVED', `Job ${job.id} is already ${job.state}`, { state: job.state });
      audit.log({
        actor: p,
        action: 'command.cancel',
        target: { type: 'satellite', id: job.satellite_id },
        correlationId: job.correlation_id,
        details: { job_id: job.id, state: job.state },
        result: 'success',
      });
      if (job.state === 'queued' || job.state === 'pending_approval') {
        if (await store.transition(job.id, ['queued', 'pending_approval'], { state: 'cancelled' })) {
          if (job.approval_id) await approvals.withdraw(job.approval_id, `${p.type}:${p.name}`);
          return finish({ ...job, state: 'cancelled' }, { state: 'cancelled', error_code: 'JOB_CANCELLED', error_message: `cancelled by ${p.name}` });
        }
      }
      const live = running.get(job.id);
      if (live) {
        cancelRequested.set(job.id, true);
        const done = waitFinal(job.id);
        bus.cancelNode(job.satellite_id, job.correlation_id);
        return done;
      }
      if (job.state === 'running' && bus.clustered) {
        // Dispatched by another instance: that one records the cancel.
        const done = waitFinal(job.id);
        bus.publish('job:cancel', { id: job.id, satellite_id: job.satellite_id });
        return done;
      }
      const now = await store.get(job.id);
      return toJobView(now ?? job);
    },

    async get(p: Principal, id: string): Promise<JobView> {
      requireScope(p, 'operator.read');
      const row = await store.get(id);
      if (!row) throw new HiveError('NOT_FOUND', `Job ${id} not found`);
      if (p.projects) {
        const sat = await resolveRef(row.satellite_id).catch(() => undefined);
        if (!sat || !inProject(p, sat.project)) throw new HiveError('NOT_FOUND', `Job ${id} not found`);
      }
      return toJobView(row);
    },

    async list(p: Principal, f: { satellite?: string | undefined; state?: string | undefined; batch?: string | undefined; page: number; per_page: number }) {
      requireScope(p, 'operator.read');
      const satellite_id = f.satellite ? (await resolveRef(f.satellite)).id : undefined;
      return store.list({ satellite_id, state: f.state, batch_id: f.batch, page: f.page, per_page: f.per_page, projects: visibleProjects(p) });
    },

    /** Ends queued jobs whose time ran out. */
    async sweep(): Promise<void> {
      for (const id of await store.expireQueued(nowIso())) {
        const row = await store.get(id);
        if (row) {
          publish(row);
          for (const w of finalWaiters.get(id) ?? []) w(toJobView(row));
          finalWaiters.delete(id);
          audit.log({
            actor: { type: 'system', id: 'hub', name: 'hub' },
            action: 'command.exec',
            target: { type: 'satellite', id: row.satellite_id },
            correlationId: row.correlation_id,
            details: { job_id: id, state: 'timed_out', reason: 'queue expired' },
            result: 'failure',
            error: 'COMMAND_TIMEOUT: satellite did not come online before queue_until',
          });
        }
      }
    },

    /**
     * Jobs left running by a previous process that died can never complete: end them. Clustered,
     * only those of instances that are not alive.
     */
    recover: (liveInstances?: Set<string>) =>
      liveInstances
        ? endOrphans('hub instance restarted or lost while the job was running', { keep: liveInstances })
        : store.failRunning('hub restarted while the job was running').then((ids) => ids.length),
    /** Scale-out: the jobs a dead instance was running end as failed with the reason. */
    releaseInstance: (deadInstance: string) => endOrphans(`hub instance ${deadInstance} was lost while the job was running`, { instance: deadInstance }),

    /** Shutdown: refuse new jobs, end the ones in flight with a reason. */
    async shutdown(graceMs = 3000): Promise<number> {
      shuttingDown = true;
      // Connections are closed first, which settles in-flight invokes; wait for their records.
      await Promise.race([inflight.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
      const ids = running.keys();
      running.clear();
      return (await store.failRunning('hub shut down while the job was running', { ids })).length;
    },
  };
};

export type CommandsService = ReturnType<typeof commandsServiceFactory>;
void ERROR_CODES;
