import { randomUUID } from 'node:crypto';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  HiveError,
  SessionAttachParams,
  SessionInputParams,
  SessionOpenParams,
  SessionResizeParams,
  STREAM_MAX_CHUNK,
  type StreamEndpoint,
} from '@hive/protocol';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Bus } from '../../bus/bus.js';
import { newId } from '../../lib/ids.js';
import { inProject, type Principal, requireProject, requireScope, SYSTEM, visibleProjects } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { nowIso } from '../../store/db.js';
import type { OperatorSink } from '../../ws/ws-server.js';
import { type ApprovalsConfig, approvalReason } from '../approvals/approval-policy.js';
import type { ApprovalsService, ApprovalView } from '../approvals/approvals-service.js';
import type { AuditService } from '../audit/audit-service.js';
import type { HubSigner } from '../commands/hub-key.js';
import type { SatelliteView } from '../devices/devices-store.js';
import { awaitDecision, type PendingApproval, pendingOf, refusalText, type WaitHooks, WENT_AWAY } from './approval-wait.js';
import { BoundedText, CastRecorder, cleanupOrphanRecordings, ensureDir, plainText, replayText } from './sessions-recorder.js';
import { type SessionListQuery, type SessionRequest, type SessionRow, type SessionView, sessionsStoreFactory } from './sessions-store.js';

export const SESSION_OPEN_COMMAND = 'session.open';
/** Events-mode sinks pause the relay while their socket holds more than this. */
const EVENTS_HIGH_WATER = 512 * 1024;
const OPEN_TIMEOUT_MS = 15_000;
/** How long an ended session's last output may wait for a slow reader's credit. */
const GRACEFUL_END_MS = 10_000;
/** Runs (`run`): defaults and bounds of the collected output and the run time. */
export const RUN_DEFAULT_MAX_BYTES = 64 * 1024;
export const RUN_MAX_BYTES = 1024 * 1024;
export const RUN_DEFAULT_TIMEOUT_MS = 60_000;
export const RUN_MAX_TIMEOUT_MS = 3_600_000;
/** Recording text (`recordingText`): default and bound. */
export const RECORDING_TEXT_DEFAULT_BYTES = 64 * 1024;
export const RECORDING_TEXT_MAX_BYTES = 1024 * 1024;

export interface SessionsConfig {
  maxPerAgent: number;
  idleTimeoutMs: number;
  record: boolean;
  recordInput: boolean;
  recordingsDir: string;
  retentionDays: number;
}

interface Sink {
  key: string;
  mode: 'stream' | 'events' | 'collect';
  sink?: OperatorSink;
  stream?: StreamEndpoint;
  /** collect mode: takes every output chunk (never blocks). */
  take?: (chunk: Uint8Array) => void;
  unGone: () => void;
}

interface Live {
  rec: SessionRow;
  node: StreamEndpoint;
  pending: Uint8Array[];
  pendingBytes: number;
  sinks: Map<string, Sink>;
  lastActivity: number;
  idleTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  runTimer: NodeJS.Timeout | undefined;
  recorder: CastRecorder | undefined;
  bytesOut: number;
  bytesIn: number;
  /** kind run: raw output kept for the result (bounded). */
  collected?: { chunks: Buffer[]; bytes: number; cap: number; overflow: boolean };
  /** The node stream closed before the open call finished. */
  earlyClose?: { reason: string; aborted: boolean; byPeer: boolean };
  ended: Promise<void>;
  markEnded: () => void;
}

export interface RunParams {
  satellite: string;
  /** A command line for the satellite's shell, or an argv. */
  command: string | string[];
  cols?: number | undefined;
  rows?: number | undefined;
  timeout_ms?: number | undefined;
  max_bytes?: number | undefined;
  /** How long the call waits for the outcome (approval + run); the run goes on after that. */
  wait_ms?: number | undefined;
}

export interface RunResult {
  session: SessionView;
  /** Plain text (escape sequences stripped), bounded by max_bytes; null while it still runs. */
  output: string | null;
  output_truncated: boolean;
  exit_code: number | null;
  pending_approval?: PendingApproval & { session_id: string };
}

/**
 * Terminal sessions (seed 003 §7.2 SessionManager). The hub relays between the node's stream
 * (PTY output/input) and the operator connections attached to the session: binary streams (fast
 * path) or `session:output` events with base64 (seed 003 §6.1). Backpressure: node output is
 * granted back to the node only once every attached sink took it, so a slow reader holds the
 * PTY back instead of growing the hub's memory; what the hub buffers per session is bounded by
 * the stream window (see `buffered_bytes`).
 *
 * Sessions are rows of the `sessions` table (who, where, how it ended, the recording), so they
 * and their recordings stay reachable after a restart; the relay itself lives in this process.
 * Opening waits for an approval when the policy asks for one (`session.open`).
 */
export function sessionsServiceFactory(deps: {
  db: Db;
  bus: Bus;
  audit: Pick<AuditService, 'log'>;
  signer: HubSigner;
  resolveSatellite: (p: Principal, ref: string) => Promise<SatelliteView>;
  policy: ApprovalsConfig;
  approvals: ApprovalsService;
  logger: Logger;
  cfg: SessionsConfig;
  /** This hub instance (recorded per session). */
  hubId?: string | undefined;
}) {
  const { bus, audit, signer, logger, cfg, approvals } = deps;
  const store = sessionsStoreFactory(deps.db);
  const live = new Map<string, Live>();
  let shuttingDown = false;
  /** Aborts the approval waits of requests still waiting when the hub stops. */
  const stopping = new AbortController();

  function view(l: Live | undefined, rec: SessionRow): SessionView {
    const { request: _r, hub_id: _h, output: _o, output_truncated: _t, ...pub } = rec;
    return {
      ...pub,
      buffered_bytes: l ? l.pendingBytes + [...l.sinks.values()].reduce((n, s) => n + (s.stream?.queued ?? 0), 0) : 0,
      attached: l ? [...l.sinks.values()].filter((s) => s.mode !== 'collect').length : 0,
      bytes_out: l?.bytesOut ?? rec.bytes_out,
      bytes_in: l?.bytesIn ?? rec.bytes_in,
    };
  }

  const persist = (id: string, patch: Parameters<typeof store.update>[1]) =>
    store.update(id, patch).catch((err) => logger.error({ err: (err as Error).message, session_id: id }, 'session row not updated'));

  /** The session as this process knows it (live record first), if the caller may see it. */
  async function visible(p: Principal, id: string): Promise<SessionRow> {
    requireScope(p, 'operator.read');
    const rec = live.get(id)?.rec ?? (await store.get(id));
    // Project boundary: outside the caller's projects a session does not exist.
    if (!rec || !inProject(p, rec.project)) throw new HiveError('SESSION_NOT_FOUND', `No session ${id}`);
    return rec;
  }

  function mayAct(p: Principal, rec: SessionRow): void {
    requireScope(p, 'operator.write');
    if (!inProject(p, rec.project, 'write'))
      throw new HiveError('FORBIDDEN', `Your role in project ${rec.project} does not allow this`, { project: rec.project });
  }

  function touch(l: Live): void {
    l.lastActivity = Date.now();
  }

  function armIdle(l: Live): void {
    const left = l.lastActivity + cfg.idleTimeoutMs - Date.now();
    l.idleTimer = setTimeout(
      () => {
        if (l.rec.status !== 'active') return;
        if (Date.now() - l.lastActivity >= cfg.idleTimeoutMs) void terminate(l, 'idle_timeout');
        else armIdle(l);
      },
      Math.max(10, left),
    );
    l.idleTimer.unref();
  }

  function sinkReady(s: Sink): boolean {
    if (s.mode === 'collect') return true;
    if (s.mode === 'stream') return !!s.stream && !s.stream.isClosed && s.stream.queued < STREAM_MAX_CHUNK;
    return (s.sink as OperatorSink).bufferedAmount() < EVENTS_HIGH_WATER;
  }

  function deliver(l: Live, s: Sink, chunk: Uint8Array): void {
    if (s.mode === 'collect') s.take?.(chunk);
    else if (s.mode === 'stream') s.stream?.write(chunk);
    else s.sink?.event('session:output', { session_id: l.rec.id, output: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64') });
  }

  /** Moves node output to every attached sink while all of them can take it; grants the node credit for what moved. */
  function pump(l: Live): void {
    while (l.pending.length > 0 && l.sinks.size > 0) {
      const blocked = [...l.sinks.values()].filter((s) => !sinkReady(s));
      if (blocked.length > 0) {
        // Stream sinks call back on drain; events sinks are polled.
        if (blocked.some((s) => s.mode === 'events') && !l.retryTimer) {
          l.retryTimer = setTimeout(() => {
            l.retryTimer = undefined;
            pump(l);
          }, 20);
        }
        return;
      }
      const chunk = l.pending.shift() as Uint8Array;
      l.pendingBytes -= chunk.length;
      for (const s of l.sinks.values()) deliver(l, s, chunk);
      l.node.consumed(chunk.length);
    }
  }

  function toNode(l: Live, chunk: Uint8Array): void {
    if (l.rec.status !== 'active') return;
    touch(l);
    l.bytesIn += chunk.length;
    if (cfg.recordInput) l.recorder?.input(chunk);
    l.node.write(chunk);
  }

  function detach(l: Live, key: string, why: 'closed' | 'gone'): void {
    const s = l.sinks.get(key);
    if (!s) return;
    l.sinks.delete(key);
    s.unGone();
    if (s.stream && !s.stream.isClosed) s.stream.close('detached');
    // Sessions end when their operator side disconnects (the last attached connection went away).
    if (why === 'gone' && l.sinks.size === 0 && l.rec.status === 'active') void terminate(l, 'operator_disconnected');
    else pump(l);
  }

  function attach(l: Live, sink: OperatorSink, mode: 'stream' | 'events'): { session_id: string; mode: string; stream_id?: number } {
    if (l.sinks.has(sink.key)) detach(l, sink.key, 'closed');
    const s: Sink = { key: sink.key, mode, sink, unGone: () => {} };
    if (mode === 'stream') {
      s.stream = sink.openStream({
        onData: (chunk) => toNode(l, chunk),
        onDrain: () => pump(l),
        onClose: ({ reason, byPeer }) => {
          if (!l.sinks.has(s.key) || l.sinks.get(s.key) !== s) return;
          // The operator closing its stream with `terminate` ends the session; otherwise it only detaches.
          if (byPeer && reason === 'terminate') {
            l.sinks.delete(s.key);
            s.unGone();
            void terminate(l, 'terminated');
            return;
          }
          detach(l, s.key, byPeer ? 'closed' : 'gone');
        },
      });
    }
    s.unGone = sink.onGone(() => detach(l, s.key, 'gone'));
    l.sinks.set(s.key, s);
    pump(l);
    return { session_id: l.rec.id, mode, ...(s.stream ? { stream_id: s.stream.id } : {}) };
  }

  /** kind run: the collected output as bounded plain text. */
  function runOutput(l: Live): { text: string; truncated: boolean } {
    const c = l.collected;
    if (!c) return { text: '', truncated: false };
    const out = new BoundedText(l.rec.request.max_bytes ?? RUN_DEFAULT_MAX_BYTES, 'head');
    out.push(plainText(new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(c.chunks))));
    return { text: out.text(), truncated: out.truncated || c.overflow };
  }

  /** Ends a session. `graceful`: the process ended on its own, so its last output still goes out (bounded wait for the reader's credit). */
  async function finish(l: Live, reason: string, exitCode: number | null, nodeReason: string, graceful = false): Promise<void> {
    if (l.rec.status === 'ended') return;
    l.rec.status = 'ended';
    l.rec.end_reason = reason;
    l.rec.exit_code = exitCode;
    l.rec.ended_at = nowIso();
    l.rec.bytes_out = l.bytesOut;
    l.rec.bytes_in = l.bytesIn;
    if (l.idleTimer) clearTimeout(l.idleTimer);
    if (l.retryTimer) clearTimeout(l.retryTimer);
    if (l.runTimer) clearTimeout(l.runTimer);
    live.delete(l.rec.id);
    if (!l.node.isClosed) l.node.close(reason);
    // Output that arrived before the end still reaches the attached operators, then the close.
    for (const s of l.sinks.values()) {
      s.unGone();
      if (graceful) for (const chunk of l.pending) deliver(l, s, chunk);
      if (s.stream && !s.stream.isClosed) {
        if (graceful) s.stream.end(nodeReason, GRACEFUL_END_MS);
        else s.stream.close(nodeReason);
      }
    }
    l.pending = [];
    l.pendingBytes = 0;
    l.sinks.clear();
    await l.recorder?.close();
    if (l.rec.kind === 'run') {
      const out = runOutput(l);
      l.rec.output = out.text;
      l.rec.output_truncated = out.truncated;
    }
    await persist(l.rec.id, {
      status: 'ended',
      end_reason: reason,
      exit_code: exitCode,
      ended_at: l.rec.ended_at,
      bytes_in: l.bytesIn,
      bytes_out: l.bytesOut,
      cols: l.rec.cols,
      rows: l.rec.rows,
      ...(l.rec.kind === 'run' ? { output: l.rec.output, output_truncated: l.rec.output_truncated ? 1 : 0 } : {}),
    });
    l.markEnded();
    const payload = { session_id: l.rec.id, satellite_id: l.rec.satellite_id, reason, exit_code: exitCode, recording: l.rec.recording };
    bus.publish('session:ended', payload);
    audit.log({
      actor: l.rec.actor,
      action: 'session.closed',
      target: { type: 'session', id: l.rec.id },
      details: {
        satellite_id: l.rec.satellite_id,
        reason,
        exit_code: exitCode,
        recording: l.rec.recording,
        bytes_out: l.bytesOut,
        bytes_in: l.bytesIn,
        duration_ms: Date.parse(l.rec.ended_at) - Date.parse(l.rec.started_at ?? l.rec.created_at),
      },
      result: 'success',
    });
  }

  function terminate(l: Live, reason: string): Promise<void> {
    return finish(l, reason, null, reason);
  }

  function onNodeClose(l: Live, info: { reason: string; aborted: boolean; byPeer: boolean }): void {
    const m = /^exit:(-?\d+)$/.exec(info.reason);
    if (m) {
      void finish(l, 'exited', Number(m[1]), info.reason, true);
      return;
    }
    if (info.reason.startsWith('signal:')) {
      void finish(l, 'killed', null, info.reason, true);
      return;
    }
    const reason = !info.byPeer && info.aborted ? 'satellite_disconnected' : info.reason || 'closed';
    void finish(l, reason, null, reason);
  }

  /** Scope, project, claim and policy checks; the approval reason when one is needed. */
  async function admit(p: Principal, ref: string, request: SessionRequest): Promise<{ sat: SatelliteView; reason: string | null }> {
    requireScope(p, 'operator.write');
    const sat = await deps.resolveSatellite(p, ref);
    requireProject(p, sat, 'write');
    if (!sat.commands.includes(SESSION_OPEN_COMMAND)) {
      throw new HiveError('UNKNOWN_COMMAND', `Satellite ${sat.slug} does not serve terminal sessions (no ${SESSION_OPEN_COMMAND} claim; policy.allow_shell?)`);
    }
    if (!sat.approved_commands.includes(SESSION_OPEN_COMMAND)) {
      throw new HiveError('CLAIM_NOT_APPROVED', `Satellite ${sat.slug} claims ${SESSION_OPEN_COMMAND}, but no operator approved that claim yet`);
    }
    const reason = approvalReason(deps.policy, {
      command: SESSION_OPEN_COMMAND,
      params: { command: request.argv ?? request.command },
      satellite: sat,
      source: 'api',
    });
    checkCapacity(sat);
    if (bus.clustered) {
      // Other instances relay sessions to this satellite too: the limit is the satellite's.
      const active = await store.countActive(sat.id);
      if (active >= cfg.maxPerAgent) {
        throw new HiveError('SESSION_LIMIT', `Satellite ${sat.slug} already has ${active} active sessions (max_sessions_per_agent ${cfg.maxPerAgent})`, {
          max: cfg.maxPerAgent,
        });
      }
    }
    return { sat, reason };
  }

  function checkCapacity(sat: SatelliteView): void {
    if (shuttingDown) throw new HiveError('SHUTTING_DOWN', 'The hub is shutting down');
    if (!bus.isNodeConnected(sat.id)) throw new HiveError('SATELLITE_OFFLINE', `Satellite ${sat.slug} is not connected`);
    const active = [...live.values()].filter((l) => l.rec.satellite_id === sat.id).length;
    if (active >= cfg.maxPerAgent) {
      throw new HiveError('SESSION_LIMIT', `Satellite ${sat.slug} already has ${active} active sessions (max_sessions_per_agent ${cfg.maxPerAgent})`, {
        max: cfg.maxPerAgent,
      });
    }
    if (!bus.openNodeStream) throw new HiveError('SERVICE_NOT_RUNNING', 'This hub cannot carry streams to satellites');
  }

  async function createRow(p: Principal, sat: SatelliteView, kind: SessionRow['kind'], request: SessionRequest, cols: number, rows: number, pending: boolean) {
    const id = newId('sess', 16);
    const rec: SessionRow = {
      id,
      satellite_id: sat.id,
      satellite_slug: sat.slug,
      project: sat.project,
      kind,
      status: pending ? 'pending_approval' : 'opening',
      cols,
      rows,
      command: request.argv ? request.argv.join(' ') : (request.command ?? null),
      actor: { type: p.type, id: p.id, name: p.name, ...(p.ip ? { ip: p.ip } : {}) },
      approval_id: null,
      created_at: nowIso(),
      started_at: null,
      ended_at: null,
      end_reason: null,
      exit_code: null,
      pid: null,
      recording: null,
      recording_deleted_at: null,
      bytes_out: 0,
      bytes_in: 0,
      request,
      hub_id: deps.hubId ?? null,
      output: null,
      output_truncated: false,
    };
    await store.insert(rec);
    return rec;
  }

  /** Ends a session that never started (refused, denied, failed to open). */
  async function endUnstarted(rec: SessionRow, reason: string, from: SessionRow['status'][]): Promise<boolean> {
    const at = nowIso();
    const moved = await store.transition(rec.id, from, { status: 'ended', end_reason: reason, ended_at: at });
    if (moved) {
      rec.status = 'ended';
      rec.end_reason = reason;
      rec.ended_at = at;
      bus.publish('session:ended', { session_id: rec.id, satellite_id: rec.satellite_id, reason, exit_code: null, recording: null });
    }
    return moved;
  }

  /** Requests the approval for a session row and records its id. */
  async function requestApproval(p: Principal, rec: SessionRow, reason: string): Promise<ApprovalView> {
    let approval: ApprovalView;
    try {
      approval = await approvals.request(
        p,
        {
          id: rec.id,
          satellite_id: rec.satellite_id,
          command: SESSION_OPEN_COMMAND,
          params: { session_id: rec.id, kind: rec.kind, command: rec.request.argv ?? rec.request.command ?? null, cols: rec.cols, rows: rec.rows },
        },
        reason,
      );
    } catch (err) {
      await endUnstarted(rec, `approval_failed: ${err instanceof HiveError ? err.code : 'INTERNAL_ERROR'}`, ['pending_approval']);
      throw err;
    }
    rec.approval_id = approval.id;
    await store.update(rec.id, { approval_id: approval.id });
    return approval;
  }

  function refusedByApproval(p: Principal, rec: SessionRow, why: string, reason: string, status: string): HiveError {
    audit.log({
      actor: p,
      action: 'session.refused',
      target: { type: 'session', id: rec.id },
      details: { satellite_id: rec.satellite_id, approval_id: rec.approval_id, reason, decision: status },
      result: 'failure',
      error: why,
    });
    return new HiveError('APPROVAL_DENIED', `Opening a session on ${rec.satellite_slug}: ${why}`, {
      session_id: rec.id,
      approval_id: rec.approval_id,
      reason,
      status,
    });
  }

  /** Opens the PTY for a row in state `opening`: node stream, signed invoke, recorder. */
  async function launch(p: Principal, rec: SessionRow, sat: SatelliteView): Promise<Live> {
    let endedResolve: () => void = () => {};
    const ended = new Promise<void>((r) => {
      endedResolve = r;
    });
    const l: Live = {
      rec,
      node: undefined as unknown as StreamEndpoint,
      pending: [],
      pendingBytes: 0,
      sinks: new Map(),
      lastActivity: Date.now(),
      idleTimer: undefined,
      retryTimer: undefined,
      runTimer: undefined,
      recorder: undefined,
      bytesOut: 0,
      bytesIn: 0,
      ended,
      markEnded: endedResolve,
    };
    try {
      checkCapacity(sat);
      l.node = (bus.openNodeStream as NonNullable<Bus['openNodeStream']>)(
        sat.id,
        {
          onData: (chunk) => {
            touch(l);
            l.bytesOut += chunk.length;
            l.recorder?.output(chunk);
            l.pending.push(chunk);
            l.pendingBytes += chunk.length;
            pump(l);
          },
          onClose: (info) => {
            if (l.rec.status === 'opening') {
              l.earlyClose = info; // handled once the open call has its answer
              return;
            }
            onNodeClose(l, info);
          },
        },
        { manualCredit: true },
      );
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
      await endUnstarted(rec, `open_failed: ${e.code}`, ['opening']);
      l.markEnded();
      throw e;
    }
    live.set(rec.id, l);
    const started = Date.now();
    const { argv, command } = rec.request;
    const invoke = signer.sign({
      command: SESSION_OPEN_COMMAND,
      params: { session_id: rec.id, stream_id: l.node.id, cols: rec.cols, rows: rec.rows, ...(argv ? { argv } : command ? { command } : {}) },
      correlationId: randomUUID(),
      target: sat.id,
      issuedAt: started,
      deadline: started + OPEN_TIMEOUT_MS,
    });
    try {
      if (cfg.record) {
        await ensureDir(cfg.recordingsDir);
        rec.recording = path.join(cfg.recordingsDir, `${rec.id}.cast`);
        l.recorder = new CastRecorder(rec.recording, { width: rec.cols, height: rec.rows, command: rec.command ?? undefined, title: `${sat.slug} ${rec.id}` });
      }
      const res = (await bus.invokeNode(sat.id, invoke, OPEN_TIMEOUT_MS + 5000)) as { pid?: number } | null;
      rec.pid = typeof res?.pid === 'number' ? res.pid : null;
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
      live.delete(rec.id);
      if (!l.node.isClosed) l.node.close('open failed');
      await l.recorder?.close();
      await persist(rec.id, { recording: rec.recording });
      await endUnstarted(rec, `open_failed: ${e.code}`, ['opening']);
      l.markEnded();
      audit.log({
        actor: p,
        action: 'session.opened',
        target: { type: 'session', id: rec.id },
        details: { satellite_id: sat.id },
        result: 'failure',
        error: e.message,
      });
      throw e;
    }
    rec.status = 'active';
    rec.started_at = nowIso();
    await persist(rec.id, { status: 'active', pid: rec.pid, started_at: rec.started_at, recording: rec.recording, hub_id: deps.hubId ?? null });
    armIdle(l);
    audit.log({
      actor: p,
      action: 'session.opened',
      target: { type: 'session', id: rec.id },
      details: {
        satellite_id: sat.id,
        satellite: sat.slug,
        kind: rec.kind,
        cols: rec.cols,
        rows: rec.rows,
        command: rec.command,
        recording: rec.recording,
        ...(rec.approval_id ? { approval_id: rec.approval_id } : {}),
      },
      result: 'success',
    });
    return l;
  }

  function requestOf(command: string | string[] | undefined): SessionRequest {
    return command === undefined ? {} : Array.isArray(command) ? { argv: command } : { command };
  }

  async function open(p: Principal, raw: z.input<typeof SessionOpenParams>, sink?: OperatorSink, hooks: WaitHooks = {}) {
    const params = SessionOpenParams.parse(raw);
    const request = requestOf(params.command);
    const { sat, reason } = await admit(p, params.satellite, request);
    const rec = await createRow(p, sat, 'interactive', request, params.cols, params.rows, !!reason);
    if (reason) {
      const approval = await requestApproval(p, rec, reason);
      hooks.onPendingApproval?.(pendingOf(approval));
      const signal = hooks.signal ? AbortSignal.any([hooks.signal, stopping.signal]) : stopping.signal;
      const d = await awaitDecision({ approvals }, approval.id, { signal, withdrawnBy: `${p.type}:${p.name}` });
      if (d?.status !== 'approved') {
        const status = d?.status ?? 'pending';
        const why = status === 'expired' ? 'approval_timeout' : d?.resolution === WENT_AWAY ? 'operator_disconnected' : 'approval_denied';
        await endUnstarted(rec, why, ['pending_approval']).catch(() => false);
        throw refusedByApproval(p, rec, d ? refusalText(d) : 'no decision', reason, status);
      }
      if (!(await store.transition(rec.id, ['pending_approval'], { status: 'opening' }))) {
        throw new HiveError('SESSION_NOT_FOUND', `Session ${rec.id} ended while it waited for approval`);
      }
      rec.status = 'opening';
    }
    const l = await launch(p, rec, sat);
    const attached = sink ? attach(l, sink, params.attach ?? 'stream') : undefined;
    const result = { session: view(l, rec), ...(attached ? { attach: attached } : {}) };
    // A process that already ended (e.g. a short command) ends the session now; its output still reaches the sink.
    if (l.earlyClose) onNodeClose(l, l.earlyClose);
    return result;
  }

  /** Starts a run (kind run): output collected (bounded), ended by exit or its timeout. */
  async function startRun(p: Principal, rec: SessionRow, sat: SatelliteView): Promise<Live> {
    const max = rec.request.max_bytes ?? RUN_DEFAULT_MAX_BYTES;
    const l = await launch(p, rec, sat);
    // Raw bytes carry escape sequences the plain text drops: keep a few times the budget.
    l.collected = { chunks: [], bytes: 0, cap: Math.min(4 * max, 4 * RUN_MAX_BYTES), overflow: false };
    const c = l.collected;
    const s: Sink = {
      key: `run:${rec.id}`,
      mode: 'collect',
      take: (chunk) => {
        if (c.bytes >= c.cap) {
          c.overflow = true;
          return;
        }
        const part = Buffer.from(chunk.subarray(0, c.cap - c.bytes));
        if (part.length < chunk.length) c.overflow = true;
        c.chunks.push(part);
        c.bytes += part.length;
      },
      unGone: () => {},
    };
    l.sinks.set(s.key, s);
    const timeout = rec.request.timeout_ms ?? RUN_DEFAULT_TIMEOUT_MS;
    l.runTimer = setTimeout(() => void terminate(l, 'timeout'), timeout);
    l.runTimer.unref();
    pump(l);
    if (l.earlyClose) onNodeClose(l, l.earlyClose);
    return l;
  }

  /** Waits until the session ends (here or on another instance), at most `ms`. */
  function untilEnded(id: string, ms: number): Promise<void> {
    const l = live.get(id);
    return new Promise<void>((resolve) => {
      let done = false;
      const finishWait = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(finishWait, Math.max(0, ms));
      timer.unref();
      const off = bus.subscribe(({ event, payload }) => {
        if (event === 'session:ended' && (payload as { session_id?: string }).session_id === id) finishWait();
      });
      void l?.ended.then(finishWait);
      // Ended before we listened?
      void store
        .get(id)
        .then((r) => {
          if (r?.status === 'ended') finishWait();
        })
        .catch(() => {});
    });
  }

  async function runResult(id: string, pending?: PendingApproval): Promise<RunResult> {
    const l = live.get(id);
    const rec = l?.rec ?? ((await store.get(id)) as SessionRow);
    const ended = rec.status === 'ended';
    const partial = !ended && l ? runOutput(l) : undefined;
    return {
      session: view(l, rec),
      output: ended ? (rec.output ?? '') : (partial?.text ?? null),
      output_truncated: ended ? rec.output_truncated : (partial?.truncated ?? false),
      exit_code: rec.exit_code,
      ...(pending && rec.status === 'pending_approval' ? { pending_approval: { ...pending, session_id: id } } : {}),
    };
  }

  /**
   * Runs one command in a PTY and returns its output and exit code (MCP `session_run`). Under
   * an approval policy the run waits for the decision; when none came within `wait_ms` the call
   * returns the pending approval and the run starts once approved (see `session_get`).
   */
  async function run(p: Principal, q: RunParams): Promise<RunResult> {
    const request: SessionRequest = {
      ...requestOf(q.command),
      timeout_ms: Math.min(q.timeout_ms ?? RUN_DEFAULT_TIMEOUT_MS, RUN_MAX_TIMEOUT_MS),
      max_bytes: Math.min(q.max_bytes ?? RUN_DEFAULT_MAX_BYTES, RUN_MAX_BYTES),
    };
    const waitMs = q.wait_ms ?? (request.timeout_ms as number) + 5000;
    const deadline = Date.now() + waitMs;
    const { sat, reason } = await admit(p, q.satellite, request);
    const rec = await createRow(p, sat, 'run', request, q.cols ?? 200, q.rows ?? 50, !!reason);
    let pending: PendingApproval | undefined;
    if (reason) {
      // The decision starts the run (onRunDecision), whenever it comes.
      pending = pendingOf(await requestApproval(p, rec, reason));
      const d = await awaitDecision({ approvals }, pending.approval_id, { timeoutMs: Math.max(0, deadline - Date.now()) });
      if (d && d.status !== 'approved') {
        await untilEnded(rec.id, 5000);
        throw refusedByApproval(p, rec, refusalText(d), reason, d.status);
      }
      if (!d) return runResult(rec.id, pending);
    } else {
      await startRun(p, rec, sat);
    }
    await untilEnded(rec.id, deadline - Date.now());
    return runResult(rec.id, pending);
  }

  /** An approval decision on a pending run starts or ends it (on whichever instance sees it first). */
  async function onRunDecision(a: ApprovalView): Promise<void> {
    if (shuttingDown) return;
    const rec = await store.get(a.job_id);
    if (rec?.kind !== 'run' || rec.status !== 'pending_approval') return;
    if (a.status !== 'approved') {
      await endUnstarted(rec, a.status === 'expired' ? 'approval_timeout' : 'approval_denied', ['pending_approval']);
      return;
    }
    if (!(await store.transition(rec.id, ['pending_approval'], { status: 'opening' }))) return;
    rec.status = 'opening';
    try {
      const sat = await deps.resolveSatellite(SYSTEM, rec.satellite_id);
      const actor: Principal = { type: rec.actor.type as Principal['type'], id: rec.actor.id, name: rec.actor.name, scopes: new Set(), ip: rec.actor.ip };
      await startRun(actor, rec, sat);
    } catch (err) {
      await endUnstarted(rec, `open_failed: ${err instanceof HiveError ? err.code : 'INTERNAL_ERROR'}`, ['opening']);
      logger.warn({ session_id: rec.id, err: (err as Error).message }, 'approved run did not start');
    }
  }

  const unsubscribe = bus.subscribe(({ event, payload, origin }) => {
    if (event === 'session:close') {
      const l = origin ? live.get((payload as { session_id?: string }).session_id ?? '') : undefined;
      if (l) void terminate(l, 'terminated').catch((err) => logger.error({ err: (err as Error).message }, 'remote close failed'));
      return;
    }
    const a = payload as ApprovalView | null;
    if (event !== 'approval.resolved' || a?.command !== SESSION_OPEN_COMMAND || !a.job_id?.startsWith('sess_')) return;
    void onRunDecision(a).catch((err) => logger.error({ err: (err as Error).message }, 'run decision failed'));
  });

  /** Scale-out: sessions a lost instance relayed end with `hub_lost` (run once, by one survivor). */
  bus.onInstanceLost?.(async (dead) => {
    for (const rec of await store.liveLeftovers()) {
      if (rec.hub_id !== dead) continue;
      if (await store.transition(rec.id, ['pending_approval', 'opening', 'active'], { status: 'ended', end_reason: 'hub_lost', ended_at: nowIso() })) {
        if (rec.approval_id && rec.status === 'pending_approval') await approvals.withdraw(rec.approval_id, 'system:hub', 'hub instance lost').catch(() => {});
        bus.publish('session:ended', { session_id: rec.id, satellite_id: rec.satellite_id, reason: 'hub_lost', exit_code: null, recording: rec.recording });
      }
    }
  });

  function liveFor(id: string): Live {
    const l = live.get(id);
    if (!l) throw new HiveError('SESSION_NOT_FOUND', `Session ${id} is not active`);
    return l;
  }

  async function resize(p: Principal, id: string, cols: number, rows: number) {
    mayAct(p, await visible(p, id));
    const l = liveFor(id);
    touch(l);
    await bus.requestNode(l.rec.satellite_id, 'session.resize', { session_id: id, cols, rows }, 10_000);
    l.rec.cols = cols;
    l.rec.rows = rows;
    l.recorder?.resize(cols, rows);
    return { session_id: id, cols, rows };
  }

  async function input(p: Principal, id: string, data: Uint8Array) {
    mayAct(p, await visible(p, id));
    toNode(liveFor(id), data);
    return { session_id: id, bytes: data.length };
  }

  async function close(p: Principal, id: string): Promise<SessionView> {
    const rec = await visible(p, id);
    mayAct(p, rec);
    const l = live.get(id);
    if (l) await terminate(l, 'terminated');
    else if (bus.clustered && rec.hub_id && rec.hub_id !== deps.hubId && (rec.status === 'active' || rec.status === 'opening')) {
      // Relayed by another instance: that one ends it; we wait for its session:ended.
      bus.publish('session:close', { session_id: id, by: `${p.type}:${p.name}` });
      await untilEnded(id, 10_000);
    } else if (rec.status === 'pending_approval') {
      // Withdrawing the approval ends the wait (and the row) wherever it waits.
      if (rec.approval_id) await approvals.withdraw(rec.approval_id, `${p.type}:${p.name}`, 'session closed by an operator');
      await endUnstarted(rec, 'cancelled', ['pending_approval']);
    }
    return view(undefined, (await store.get(id)) ?? rec);
  }

  /** Retention: deletes the recordings of sessions that ended before the cutoff (and marks the rows), then orphan files. */
  async function cleanupRecordings(now = Date.now()): Promise<number> {
    const cutoff = new Date(now - cfg.retentionDays * 86_400_000).toISOString();
    let removed = 0;
    for (;;) {
      const due = await store.recordingsEndedBefore(cutoff);
      if (due.length === 0) break;
      for (const r of due) {
        try {
          await unlink(r.recording);
          removed++;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err: (err as Error).message, file: r.recording }, 'recording not deleted');
        }
      }
      await store.markRecordingDeleted(due.map((r) => r.id));
      if (due.length < 500) break;
    }
    removed += await cleanupOrphanRecordings(cfg.recordingsDir, cfg.retentionDays, (f) => store.trackedRecording(f), now);
    return removed;
  }

  const retention = setInterval(
    () => void cleanupRecordings().catch((err) => logger.warn({ err: (err as Error).message }, 'recording cleanup failed')),
    3_600_000,
  );
  retention.unref();

  async function recordingFile(p: Principal, id: string): Promise<string> {
    const rec = await visible(p, id);
    if (!rec.recording) throw new HiveError('NOT_FOUND', `Session ${id} was not recorded`);
    if (rec.recording_deleted_at) throw new HiveError('NOT_FOUND', `Recording of ${id} was deleted by the retention (${rec.recording_deleted_at})`);
    try {
      await stat(rec.recording);
    } catch {
      throw new HiveError('NOT_FOUND', `Recording of ${id} is gone`);
    }
    return rec.recording;
  }

  return {
    open: (p: Principal, params: z.input<typeof SessionOpenParams>, hooks?: WaitHooks) =>
      open(p, { ...params, attach: undefined }, undefined, hooks).then((r) => r.session),
    run,
    async get(p: Principal, id: string): Promise<SessionView> {
      const rec = await visible(p, id);
      return view(live.get(id), rec);
    },
    /** A run's result (output, exit code) as `run` returns it. */
    async result(p: Principal, id: string): Promise<RunResult> {
      await visible(p, id);
      return runResult(id);
    },
    async list(p: Principal, satelliteRef: string | undefined, q: Omit<SessionListQuery, 'satellite_id' | 'projects'>) {
      requireScope(p, 'operator.read');
      const sat = satelliteRef ? await deps.resolveSatellite(p, satelliteRef) : undefined;
      const r = await store.list({ ...q, satellite_id: sat?.id, projects: visibleProjects(p) });
      return { items: r.items.map((rec) => view(live.get(rec.id), live.get(rec.id)?.rec ?? rec)), total: r.total };
    },
    close,
    resize,
    input,
    /** Path of a recording the caller may read (NOT_FOUND once the retention deleted it). */
    recording: recordingFile,
    /** The recording replayed as plain text (escape sequences stripped), bounded. */
    async recordingText(p: Principal, id: string, opts: { max_bytes?: number | undefined; from?: 'start' | 'end' | undefined } = {}) {
      const file = await recordingFile(p, id);
      const maxBytes = Math.min(opts.max_bytes ?? RECORDING_TEXT_DEFAULT_BYTES, RECORDING_TEXT_MAX_BYTES);
      const r = await replayText(file, { maxBytes, from: opts.from ?? 'end' });
      return { session_id: id, from: opts.from ?? 'end', max_bytes: maxBytes, ...r };
    },
    /** Operator WebSocket methods (`session.*`, `session:*`), with the calling connection. */
    async handleWs(method: string, p: Principal, params: unknown, sink: OperatorSink): Promise<unknown> {
      switch (method) {
        case 'session.open': {
          const q = SessionOpenParams.parse(params);
          // The requester learns at once that it waits (and for which approval); leaving withdraws it.
          const ac = new AbortController();
          const off = sink.onGone(() => ac.abort());
          try {
            return await open(p, { ...q, attach: q.attach ?? 'stream' }, sink, {
              signal: ac.signal,
              onPendingApproval: (a) => sink.event('session:pending_approval', { ...a, satellite: q.satellite }),
            });
          } finally {
            off();
          }
        }
        case 'session.attach': {
          const q = SessionAttachParams.parse(params);
          mayAct(p, await visible(p, q.session_id));
          return attach(liveFor(q.session_id), sink, q.mode);
        }
        case 'session:input': {
          const q = SessionInputParams.parse(params);
          return input(p, q.session_id, Buffer.from(q.input, 'base64'));
        }
        case 'session:resize': {
          const q = SessionResizeParams.parse(params);
          return resize(p, q.session_id, q.cols, q.rows);
        }
        case 'session.close':
          return close(p, (params as { session_id: string }).session_id);
        default:
          throw new HiveError('UNKNOWN_METHOD', `Unknown method ${method}`);
      }
    },
    activeCount: () => live.size,
    /**
     * At start: sessions a previous run left live end with `hub_restart` (their PTYs died with the
     * relay); approvals they waited for are withdrawn. Then the first retention pass.
     */
    async recover(liveInstances?: Set<string>): Promise<number> {
      const left = await store.liveLeftovers();
      let n = 0;
      for (const rec of left) {
        if (live.has(rec.id)) continue;
        // Clustered: sessions other live instances relay are theirs.
        if (liveInstances && rec.hub_id && rec.hub_id !== deps.hubId && liveInstances.has(rec.hub_id)) continue;
        if (rec.approval_id && rec.status === 'pending_approval') await approvals.withdraw(rec.approval_id, 'system:hub', 'hub restarted').catch(() => {});
        if (await store.transition(rec.id, ['pending_approval', 'opening', 'active'], { status: 'ended', end_reason: 'hub_restart', ended_at: nowIso() })) {
          n++;
          audit.log({
            actor: { type: 'system', id: 'hub', name: 'hub' },
            action: 'session.closed',
            target: { type: 'session', id: rec.id },
            details: { satellite_id: rec.satellite_id, reason: 'hub_restart', recording: rec.recording },
            result: 'success',
          });
        }
      }
      void cleanupRecordings().catch((err) => logger.warn({ err: (err as Error).message }, 'recording cleanup failed'));
      return n;
    },
    cleanupRecordings,
    async shutdown(): Promise<void> {
      shuttingDown = true;
      stopping.abort();
      unsubscribe();
      clearInterval(retention);
      await Promise.all([...live.values()].map((l) => terminate(l, 'hub_shutdown')));
    },
  };
}

export type SessionsService = ReturnType<typeof sessionsServiceFactory>;
