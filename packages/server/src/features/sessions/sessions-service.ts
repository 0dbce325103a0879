import { randomUUID } from 'node:crypto';
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
import { type Principal, requireScope } from '../../lib/principal.js';
import type { OperatorSink } from '../../ws/ws-server.js';
import { type ApprovalsConfig, approvalReason } from '../approvals/approval-policy.js';
import type { AuditService } from '../audit/audit-service.js';
import type { HubSigner } from '../commands/hub-key.js';
import type { SatelliteView } from '../devices/devices-store.js';
import { CastRecorder, cleanupRecordings, ensureDir } from './sessions-recorder.js';
import { createSessionsStore, type SessionRecord, type SessionView } from './sessions-store.js';

export const SESSION_OPEN_COMMAND = 'session.open';
/** Events-mode sinks pause the relay while their socket holds more than this. */
const EVENTS_HIGH_WATER = 512 * 1024;
const OPEN_TIMEOUT_MS = 15_000;
/** How long an ended session's last output may wait for a slow reader's credit. */
const GRACEFUL_END_MS = 10_000;

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
  mode: 'stream' | 'events';
  principal: Principal;
  sink: OperatorSink;
  stream?: StreamEndpoint;
  unGone: () => void;
}

interface Live {
  rec: SessionRecord;
  node: StreamEndpoint;
  pending: Uint8Array[];
  pendingBytes: number;
  sinks: Map<string, Sink>;
  lastActivity: number;
  idleTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  recorder: CastRecorder | undefined;
  bytesOut: number;
  bytesIn: number;
  /** The node stream closed before the open call finished. */
  earlyClose?: { reason: string; aborted: boolean; byPeer: boolean };
}

/**
 * Terminal sessions (seed 003 §7.2 SessionManager). The hub relays between the node's stream
 * (PTY output/input) and the operator connections attached to the session: binary streams (fast
 * path) or `session:output` events with base64 (seed 003 §6.1). Backpressure: node output is
 * granted back to the node only once every attached sink took it, so a slow reader holds the
 * PTY back instead of growing the hub's memory; what the hub buffers per session is bounded by
 * the stream window (see `buffered_bytes`).
 */
export function sessionsServiceFactory(deps: {
  bus: Bus;
  audit: Pick<AuditService, 'log'>;
  signer: HubSigner;
  resolveSatellite: (p: Principal, ref: string) => Promise<SatelliteView>;
  approvals: ApprovalsConfig;
  logger: Logger;
  cfg: SessionsConfig;
}) {
  const { bus, audit, signer, logger, cfg } = deps;
  const store = createSessionsStore();
  const live = new Map<string, Live>();

  function view(l: Live | undefined, rec: SessionRecord): SessionView {
    return {
      ...rec,
      buffered_bytes: l ? l.pendingBytes + [...l.sinks.values()].reduce((n, s) => n + (s.stream?.queued ?? 0), 0) : 0,
      attached: l ? l.sinks.size : 0,
      bytes_out: l?.bytesOut ?? rec.bytes_out,
      bytes_in: l?.bytesIn ?? rec.bytes_in,
    };
  }

  async function visible(p: Principal, id: string): Promise<SessionRecord> {
    requireScope(p, 'operator.read');
    const rec = store.get(id);
    if (!rec) throw new HiveError('SESSION_NOT_FOUND', `No session ${id}`);
    // Project boundary: the caller must be able to see the satellite.
    await deps.resolveSatellite(p, rec.satellite_id);
    return rec;
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
    if (s.mode === 'stream') return !!s.stream && !s.stream.isClosed && s.stream.queued < STREAM_MAX_CHUNK;
    return s.sink.bufferedAmount() < EVENTS_HIGH_WATER;
  }

  function deliver(l: Live, s: Sink, chunk: Uint8Array): void {
    if (s.mode === 'stream') s.stream?.write(chunk);
    else s.sink.event('session:output', { session_id: l.rec.id, output: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64') });
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

  function attach(l: Live, p: Principal, sink: OperatorSink, mode: 'stream' | 'events'): { session_id: string; mode: string; stream_id?: number } {
    if (l.sinks.has(sink.key)) detach(l, sink.key, 'closed');
    const s: Sink = { key: sink.key, mode, principal: p, sink, unGone: () => {} };
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

  /** Ends a session. `graceful`: the process ended on its own, so its last output still goes out (bounded wait for the reader's credit). */
  async function finish(l: Live, reason: string, exitCode: number | null, nodeReason: string, graceful = false): Promise<void> {
    if (l.rec.status === 'ended') return;
    l.rec.status = 'ended';
    l.rec.end_reason = reason;
    l.rec.exit_code = exitCode;
    l.rec.ended_at = new Date().toISOString();
    l.rec.bytes_out = l.bytesOut;
    l.rec.bytes_in = l.bytesIn;
    if (l.idleTimer) clearTimeout(l.idleTimer);
    if (l.retryTimer) clearTimeout(l.retryTimer);
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
        duration_ms: Date.parse(l.rec.ended_at) - Date.parse(l.rec.created_at),
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

  async function open(p: Principal, raw: z.input<typeof SessionOpenParams>, sink?: OperatorSink) {
    requireScope(p, 'operator.write');
    const params = SessionOpenParams.parse(raw);
    const sat = await deps.resolveSatellite(p, params.satellite);
    if (!sat.commands.includes(SESSION_OPEN_COMMAND)) {
      throw new HiveError('UNKNOWN_COMMAND', `Satellite ${sat.slug} does not serve terminal sessions (no ${SESSION_OPEN_COMMAND} claim; policy.allow_shell?)`);
    }
    if (!sat.approved_commands.includes(SESSION_OPEN_COMMAND)) {
      throw new HiveError('CLAIM_NOT_APPROVED', `Satellite ${sat.slug} claims ${SESSION_OPEN_COMMAND}, but no operator approved that claim yet`);
    }
    const command = params.command;
    const reason = approvalReason(deps.approvals, { command: SESSION_OPEN_COMMAND, params: { command }, satellite: sat, source: 'api' });
    if (reason) {
      audit.log({ actor: p, action: 'session.refused', target: { type: 'satellite', id: sat.id }, details: { reason }, result: 'failure', error: reason });
      throw new HiveError('APPROVAL_DENIED', `Opening a shell on ${sat.slug} needs approval (${reason}); approval-gated sessions are not available yet`, {
        reason,
      });
    }
    if (!bus.isNodeConnected(sat.id)) throw new HiveError('SATELLITE_OFFLINE', `Satellite ${sat.slug} is not connected`);
    const active = [...live.values()].filter((l) => l.rec.satellite_id === sat.id).length;
    if (active >= cfg.maxPerAgent) {
      throw new HiveError('SESSION_LIMIT', `Satellite ${sat.slug} already has ${active} active sessions (max_sessions_per_agent ${cfg.maxPerAgent})`, {
        max: cfg.maxPerAgent,
      });
    }
    if (!bus.openNodeStream) throw new HiveError('SERVICE_NOT_RUNNING', 'This hub cannot carry streams to satellites');
    const id = newId('sess', 16);
    const now = new Date();
    const rec: SessionRecord = {
      id,
      satellite_id: sat.id,
      satellite_slug: sat.slug,
      status: 'opening',
      cols: params.cols,
      rows: params.rows,
      command: command === undefined ? null : Array.isArray(command) ? command.join(' ') : command,
      actor: { type: p.type, id: p.id, name: p.name, ...(p.ip ? { ip: p.ip } : {}) },
      created_at: now.toISOString(),
      ended_at: null,
      end_reason: null,
      exit_code: null,
      pid: null,
      recording: cfg.record ? path.join(cfg.recordingsDir, `${id}.cast`) : null,
      bytes_out: 0,
      bytes_in: 0,
    };
    const l: Live = {
      rec,
      node: undefined as unknown as StreamEndpoint,
      pending: [],
      pendingBytes: 0,
      sinks: new Map(),
      lastActivity: Date.now(),
      idleTimer: undefined,
      retryTimer: undefined,
      recorder: undefined,
      bytesOut: 0,
      bytesIn: 0,
    };
    l.node = bus.openNodeStream(
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
    store.add(rec);
    live.set(id, l);
    const started = Date.now();
    const invoke = signer.sign({
      command: SESSION_OPEN_COMMAND,
      params: {
        session_id: id,
        stream_id: l.node.id,
        cols: params.cols,
        rows: params.rows,
        ...(Array.isArray(command) ? { argv: command } : command ? { command } : {}),
      },
      correlationId: randomUUID(),
      target: sat.id,
      issuedAt: started,
      deadline: started + OPEN_TIMEOUT_MS,
    });
    try {
      if (cfg.record && rec.recording) {
        await ensureDir(cfg.recordingsDir);
        l.recorder = new CastRecorder(rec.recording, {
          width: params.cols,
          height: params.rows,
          command: rec.command ?? undefined,
          title: `${sat.slug} ${id}`,
        });
      }
      const res = (await bus.invokeNode(sat.id, invoke, OPEN_TIMEOUT_MS + 5000)) as { pid?: number } | null;
      rec.pid = typeof res?.pid === 'number' ? res.pid : null;
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
      live.delete(id);
      rec.status = 'ended';
      rec.end_reason = `open_failed: ${e.code}`;
      rec.ended_at = new Date().toISOString();
      if (!l.node.isClosed) l.node.close('open failed');
      await l.recorder?.close();
      audit.log({
        actor: p,
        action: 'session.opened',
        target: { type: 'session', id },
        details: { satellite_id: sat.id },
        result: 'failure',
        error: e.message,
      });
      throw e;
    }
    rec.status = 'active';
    armIdle(l);
    audit.log({
      actor: p,
      action: 'session.opened',
      target: { type: 'session', id },
      details: { satellite_id: sat.id, satellite: sat.slug, cols: params.cols, rows: params.rows, command: rec.command, recording: rec.recording },
      result: 'success',
    });
    const attached = sink ? attach(l, p, sink, params.attach ?? 'stream') : undefined;
    const result = { session: view(l, rec), ...(attached ? { attach: attached } : {}) };
    // A process that already ended (e.g. a short command) ends the session now; its output still reaches the sink.
    if (l.earlyClose) onNodeClose(l, l.earlyClose);
    return result;
  }

  function liveFor(id: string): Live {
    const l = live.get(id);
    if (!l) throw new HiveError('SESSION_NOT_FOUND', `Session ${id} is not active`);
    return l;
  }

  async function resize(p: Principal, id: string, cols: number, rows: number) {
    requireScope(p, 'operator.write');
    await visible(p, id);
    const l = liveFor(id);
    touch(l);
    await bus.requestNode(l.rec.satellite_id, 'session.resize', { session_id: id, cols, rows }, 10_000);
    l.rec.cols = cols;
    l.rec.rows = rows;
    l.recorder?.resize(cols, rows);
    return { session_id: id, cols, rows };
  }

  async function input(p: Principal, id: string, data: Uint8Array) {
    requireScope(p, 'operator.write');
    await visible(p, id);
    toNode(liveFor(id), data);
    return { session_id: id, bytes: data.length };
  }

  async function close(p: Principal, id: string): Promise<SessionView> {
    requireScope(p, 'operator.write');
    const rec = await visible(p, id);
    const l = live.get(id);
    if (l) await terminate(l, 'terminated');
    return view(undefined, rec);
  }

  const retention = setInterval(
    () => void cleanupRecordings(cfg.recordingsDir, cfg.retentionDays).catch((err) => logger.warn({ err: (err as Error).message }, 'recording cleanup failed')),
    3_600_000,
  );
  retention.unref();
  void cleanupRecordings(cfg.recordingsDir, cfg.retentionDays).catch(() => {});

  return {
    open: (p: Principal, params: z.input<typeof SessionOpenParams>) => open(p, { ...params, attach: undefined }).then((r) => r.session),
    async get(p: Principal, id: string): Promise<SessionView> {
      const rec = await visible(p, id);
      return view(live.get(id), rec);
    },
    async list(p: Principal, satelliteRef: string): Promise<SessionView[]> {
      requireScope(p, 'operator.read');
      const sat = await deps.resolveSatellite(p, satelliteRef);
      return store.bySatellite(sat.id).map((r) => view(live.get(r.id), r));
    },
    close,
    resize,
    input,
    /** Path of a recording the caller may read. */
    async recording(p: Principal, id: string): Promise<string> {
      const rec = await visible(p, id);
      if (!rec.recording) throw new HiveError('NOT_FOUND', `Session ${id} was not recorded`);
      return rec.recording;
    },
    /** Operator WebSocket methods (`session.*`, `session:*`), with the calling connection. */
    async handleWs(method: string, p: Principal, params: unknown, sink: OperatorSink): Promise<unknown> {
      switch (method) {
        case 'session.open': {
          const q = SessionOpenParams.parse(params);
          return open(p, { ...q, attach: q.attach ?? 'stream' }, sink);
        }
        case 'session.attach': {
          requireScope(p, 'operator.write');
          const q = SessionAttachParams.parse(params);
          await visible(p, q.session_id);
          return attach(liveFor(q.session_id), p, sink, q.mode);
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
    async shutdown(): Promise<void> {
      clearInterval(retention);
      await Promise.all([...live.values()].map((l) => terminate(l, 'hub_shutdown')));
    },
  };
}

export type SessionsService = ReturnType<typeof sessionsServiceFactory>;
