import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  CLOSE_CODES,
  ConnectParams,
  decodeStreamFrame,
  type ErrorCode,
  Frame,
  HiveError,
  type InvokeParams,
  isMethod,
  type Limits,
  METHODS,
  type MethodName,
  negotiateVersion,
  PROTOCOL_MAX,
  PROTOCOL_MIN,
  type RequestFrame,
  type Scope,
  STREAM_MAX_PER_CONNECTION,
  StreamEndpoint,
  type StreamFrame,
  type StreamHandlers,
  type WireError,
} from '@hive/protocol';
import { parseFrame } from '@hive/sdk';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import type { Bus, NodeLink, StreamOpenOptions, StreamTunnel } from '../bus/bus.js';
import type { AuditService } from '../features/audit/audit-service.js';
import type { Authenticated, DevicesService } from '../features/devices/devices-service.js';
import { InFlightCount } from '../lib/id-map.js';
import { isLoopback } from '../lib/net.js';
import type { Principal } from '../lib/principal.js';
import { inProject } from '../lib/principal.js';

/** Operator method implementations, keyed by method name (thin adapters over services). */
export type MethodHandlers = { [M in MethodName]?: (p: Principal, params: any) => Promise<unknown> };

export interface WsDeps {
  devices: Pick<DevicesService, 'handshake' | 'markOnline' | 'markOffline' | 'heartbeat' | 'flushPresence' | 'recordStatus' | 'projectOf'>;
  /** Public command-signing key, announced to nodes in hello. */
  hubKey: string;
  audit: Pick<AuditService, 'log'>;
  bus: Bus;
  logger: Logger;
  limits: Limits;
  /** Pings a node may miss before it is offline (agents.heartbeat_timeout / heartbeat_interval; default 3). */
  heartbeatMaxMissed?: number;
  hubId: string;
  handlers: MethodHandlers;
  /** Session methods need the calling connection (to attach streams or events); see features/sessions. */
  sessions?: SessionsWsHandler;
}

/** What a session relay may do with an operator connection. */
export interface OperatorSink {
  readonly key: string;
  /** Opens a hub-allocated stream on this connection (the client accepts it by id). */
  openStream(handlers: StreamHandlers, opts?: StreamOpenOptions): StreamEndpoint;
  event(name: string, payload: unknown): void;
  /** Bytes the socket has not written yet (events-mode backpressure). */
  bufferedAmount(): number;
  /** Called once when the connection closes. Returns an unsubscribe. */
  onGone(cb: () => void): () => void;
}

export type SessionsWsHandler = (method: string, principal: Principal, params: any, sink: OperatorSink) => Promise<unknown>;

type State = 'challenge' | 'connecting' | 'pending' | 'ready' | 'closed';

interface PendingInvoke {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** An invoke's correlation id: its output is relayed while it is in flight (see `InFlight.running`). */
  corr?: string;
}

/**
 * The requests a connection has in flight, by id. Nearly always one or none: the first is kept in
 * a field, more in a Map made when needed and dropped once empty. (Per connection, a Map going
 * from one entry to none made a new hash table on every delete, and so did the Set of running
 * correlation ids; each table lived until the node's next command, seconds later, so it was
 * promoted to the old generation: ~270 bytes of garbage there per command, left for a
 * mark-compact. A heap snapshot diff during the 1,000 commands/s bench showed ~9,900 of each.)
 */
class InFlight {
  private firstId: string | undefined;
  private first: PendingInvoke | undefined;
  private more: Map<string, PendingInvoke> | undefined;

  /** Takes request `id` out (it is answered, failed or closed) and stops its timer. */
  take(id: string): PendingInvoke | undefined {
    const p = id === this.firstId ? this.first : this.more?.get(id);
    if (!p) return undefined;
    this.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  set(id: string, p: PendingInvoke): void {
    if (this.firstId === undefined || this.firstId === id) {
      this.firstId = id;
      this.first = p;
    } else {
      this.more ??= new Map();
      this.more.set(id, p);
    }
  }

  delete(id: string): void {
    if (id === this.firstId) {
      this.firstId = undefined;
      this.first = undefined;
    } else if (this.more?.delete(id) && this.more.size === 0) this.more = undefined;
  }

  /** Whether an invoke with this correlation id is running (its output may be relayed). */
  running(corr: string): boolean {
    if (this.first?.corr === corr) return true;
    if (this.more) for (const p of this.more.values()) if (p.corr === corr) return true;
    return false;
  }

  /** Takes every pending request out and stops their timers. */
  drain(): PendingInvoke[] {
    const all = this.first ? [this.first] : [];
    if (this.more) all.push(...this.more.values());
    this.firstId = undefined;
    this.first = undefined;
    this.more = undefined;
    for (const p of all) clearTimeout(p.timer);
    return all;
  }
}

const WS_PATHS = new Set(['/ws', '/ws/agent', '/ws/ui']);

const InvokeOutput = z.object({ correlationId: z.string().min(1).max(64), stream: z.enum(['stdout', 'stderr']), data: z.string().max(64 * 1024) });

function closeCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'PROTOCOL_VERSION':
      return CLOSE_CODES.PROTOCOL_VERSION.code;
    case 'PAIRING_REJECTED':
      return CLOSE_CODES.PAIRING_REJECTED.code;
    case 'RATE_LIMITED':
      return CLOSE_CODES.RATE_LIMITED.code;
    case 'PAIRING_REQUIRED':
      return CLOSE_CODES.PAIRING_TIMEOUT.code;
    case 'AUTH_INVALID':
    case 'AUTH_REQUIRED':
      return CLOSE_CODES.AUTH_FAILED.code;
    case 'SHUTTING_DOWN':
      return CLOSE_CODES.SERVICE_RESTART.code;
    default:
      return CLOSE_CODES.BAD_FRAME.code;
  }
}

/**
 * The one WebSocket endpoint (`/ws`, aliases `/ws/agent`, `/ws/ui`). Owns the frame loop and
 * the limits; everything else is a call into a feature service.
 */
/** Stream frames per second and burst per connection (64 KiB chunks: far above any link). */
const STREAM_FRAMES_PER_SECOND = 20_000;
const STREAM_FRAME_BURST = 40_000;

/** Bus events that only hub instances exchange (scale-out): never sent to operators. */
const INTERNAL_EVENTS = new Set(['job:cancel', 'session:close', 'permissions:changed']);

export function createWsServer(deps: WsDeps) {
  const { limits, logger, bus, devices, audit } = deps;
  const maxMissed = deps.heartbeatMaxMissed ?? 3;
  const wss = new WebSocketServer({
    noServer: true,
    // Hard cap: frames above it are cut by ws with 1009. Between maxFrameBytes and this cap we
    // still answer FRAME_TOO_LARGE with a typed error before anything else.
    maxPayload: limits.maxFrameBytes * 2,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const conns = new Set<Conn>();
  const nodes = new Map<string, Conn>();
  const operators = new Set<Conn>();
  /** Work started by frames (a node's requests, connects, presence writes); close waits for it. */
  const background = new InFlightCount();
  let shuttingDown = false;
  let nextConnId = 1;

  const track = (p: Promise<unknown>) => {
    background.add(p.catch((err) => logger.error({ err: (err as Error).message }, 'background task failed')));
  };

  class Conn implements NodeLink {
    readonly id = nextConnId++;
    readonly nonce = randomBytes(24).toString('base64url');
    seq = 0;
    state: State = 'challenge';
    auth: Authenticated | undefined;
    params: ConnectParams | undefined;
    tokens: number = limits.messageBurst;
    lastRefill = Date.now();
    violations = 0;
    inflight = 0;
    missed = 0;
    /** A frame came in since the last heartbeat: the connection is alive without a ping. */
    heard = false;
    nextInvoke = 1;
    /** Requests in flight to this connection; an invoke's output is relayed while it is here. */
    readonly invokes = new InFlight();
    handshakeTimer: NodeJS.Timeout | undefined;
    cancelPairing: (() => void) | undefined;
    /** Counted as a live node/operator (so the close must undo it). */
    registered = false;
    /** Close already requested by the hub; ignore further input. */
    closing = false;
    /** Binary streams on this connection; the hub allocates even ids. */
    readonly streams = new Map<number, StreamEndpoint>();
    /** Stream ids lent to another hub instance: raw frames pass through (scale-out). */
    readonly taps = new Map<number, { forward: (frame: Uint8Array) => void; end: (reason: string) => void }>();
    nextStreamId = 2;
    readonly gone = new Set<() => void>();

    constructor(
      readonly ws: WebSocket,
      readonly ip: string,
      readonly forwarded: boolean,
    ) {}

    get loopback(): boolean {
      return !this.forwarded && isLoopback(this.ip);
    }

    send(frame: unknown): void {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    }
    event(event: string, payload: unknown): void {
      this.send({ type: 'event', event, payload, seq: ++this.seq });
    }
    error(id: string | undefined, err: WireError): void {
      if (id) this.send({ type: 'res', id, ok: false, error: err });
      else this.event('error', err);
    }
    close(code: number, reason: string): void {
      this.closing = true;
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
        // Close reasons are limited to 123 bytes.
        let r = reason;
        while (Buffer.byteLength(r) > 120) r = r.slice(0, -1);
        this.ws.close(code, r);
        // A peer that never completes the closing handshake is cut off.
        setTimeout(() => this.ws.terminate(), 2000).unref();
      }
    }

    invoke(params: InvokeParams, timeoutMs: number): Promise<unknown> {
      if (!this.registered || this.state === 'closed') return Promise.reject(new HiveError('SATELLITE_OFFLINE', 'Satellite is not connected'));
      const id = `h${this.nextInvoke++}`;
      const corr = params.correlationId;
      const answer = this.answerTo(id, timeoutMs, corr, () => new HiveError('COMMAND_TIMEOUT', `No result within ${timeoutMs} ms`));
      return this.sendRequest(id, 'invoke', params, answer);
    }

    request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
      const id = `h${this.nextInvoke++}`;
      const answer = this.answerTo(id, timeoutMs, undefined, () => new HiveError('TIMEOUT', `No answer to ${method} within ${timeoutMs} ms`));
      return this.sendRequest(id, method, params, answer);
    }

    /**
     * The answer to request `id`, failed with `timeout()` after `timeoutMs`. Made apart from the
     * request's params: the timer's closure must not keep them (a fan-out's 10,000 signed invokes,
     * proofs included, stayed alive until their results, and every scavenge copied them).
     */
    private answerTo(id: string, timeoutMs: number, corr: string | undefined, timeout: () => HiveError): Promise<unknown> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.invokes.delete(id);
          reject(timeout());
        }, timeoutMs);
        this.invokes.set(id, corr === undefined ? { resolve, reject, timer } : { resolve, reject, timer, corr });
      });
    }

    private sendRequest(id: string, method: string, params: unknown, answer: Promise<unknown>): Promise<unknown> {
      try {
        this.send({ type: 'req', id, method, params });
      } catch (err) {
        // Not sent (params that do not serialize): nothing will answer it.
        this.invokes.take(id)?.reject(err as Error);
      }
      return answer;
    }

    openStream(handlers: StreamHandlers, opts: StreamOpenOptions = {}): StreamEndpoint {
      if (!this.registered || this.state === 'closed') throw new HiveError('SATELLITE_OFFLINE', 'Connection is closed');
      if (this.streams.size >= STREAM_MAX_PER_CONNECTION) {
        throw new HiveError('RATE_LIMITED', `At most ${STREAM_MAX_PER_CONNECTION} streams per connection`, undefined, { action: 'retry', retryAfterMs: 1000 });
      }
      const id = this.nextStreamId;
      this.nextStreamId = this.nextStreamId >= 0xfffffffe ? 2 : this.nextStreamId + 2;
      const ep: StreamEndpoint = new StreamEndpoint(
        {
          id,
          opener: true,
          send: (frame) => {
            if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
          },
          onFinish: () => {
            if (this.streams.get(id) === ep) this.streams.delete(id);
          },
          ...(opts.manualCredit ? { manualCredit: true } : {}),
          ...(opts.window ? { window: opts.window } : {}),
        },
        handlers,
      );
      this.streams.set(id, ep);
      return ep;
    }

    tunnelStream(id: number, toOpener: (frame: Uint8Array) => void, onGone: (reason: string) => void): StreamTunnel {
      if (!this.registered || this.state === 'closed') throw new HiveError('SATELLITE_OFFLINE', 'Connection is closed');
      if (this.streams.size + this.taps.size >= STREAM_MAX_PER_CONNECTION) {
        throw new HiveError('RATE_LIMITED', `At most ${STREAM_MAX_PER_CONNECTION} streams per connection`, undefined, { action: 'retry', retryAfterMs: 1000 });
      }
      if (this.streams.has(id) || this.taps.has(id)) throw new HiveError('CONFLICT', `Stream ${id} is in use`);
      let done = false;
      const end = (reason: string) => {
        if (done) return;
        done = true;
        if (this.taps.get(id) === tap) this.taps.delete(id);
        onGone(reason);
      };
      const tap = { forward: toOpener, end };
      this.taps.set(id, tap);
      const isFinal = (frame: Uint8Array) => {
        const k = decodeStreamFrame(frame)?.kind;
        return k === 'close' || k === 'abort';
      };
      return {
        send: (frame) => {
          if (done) return;
          if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
          if (isFinal(frame)) end('closed by the opener');
        },
        close: () => {
          if (done) return;
          done = true;
          if (this.taps.get(id) === tap) this.taps.delete(id);
        },
      };
    }

    sink(): OperatorSink {
      return {
        key: `conn:${this.id}`,
        openStream: (h, o) => this.openStream(h, o),
        event: (name, payload) => this.event(name, payload),
        bufferedAmount: () => this.ws.bufferedAmount,
        onGone: (cb) => {
          this.gone.add(cb);
          return () => this.gone.delete(cb);
        },
      };
    }

    cancel(correlationId: string): void {
      this.send({ type: 'req', id: `h${this.nextInvoke++}`, method: 'invoke.cancel', params: { correlationId } });
    }

    streamTokens = STREAM_FRAME_BURST;
    lastStreamRefill = Date.now();
    /** Token bucket of stream frames (see onMessage). */
    admitStreamFrame(): boolean {
      const now = Date.now();
      this.streamTokens = Math.min(STREAM_FRAME_BURST, this.streamTokens + ((now - this.lastStreamRefill) * STREAM_FRAMES_PER_SECOND) / 1000);
      this.lastStreamRefill = now;
      if (this.streamTokens >= 1) {
        this.streamTokens -= 1;
        return true;
      }
      return false;
    }

    /** Token bucket; true when the message may be processed. */
    admit(): boolean {
      const now = Date.now();
      this.tokens = Math.min(limits.messageBurst, this.tokens + ((now - this.lastRefill) * limits.messagesPerSecond) / 1000);
      this.lastRefill = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return true;
      }
      return false;
    }
  }

  function onConnection(ws: WebSocket, req: IncomingMessage): void {
    // Behind a proxy on the same host every peer looks like loopback: forwarded requests never count as local.
    const forwarded = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined;
    const conn = new Conn(ws, req.socket.remoteAddress ?? '', forwarded);
    conns.add(conn);
    conn.handshakeTimer = setTimeout(() => {
      if (conn.state === 'challenge' || conn.state === 'connecting') {
        conn.error(undefined, { code: 'HANDSHAKE_TIMEOUT', message: `No connect within ${limits.handshakeTimeoutMs} ms`, hint: { action: 'retry' } });
        conn.close(CLOSE_CODES.HANDSHAKE_TIMEOUT.code, 'handshake timeout');
      }
    }, limits.handshakeTimeoutMs);
    ws.on('message', (data, isBinary) => onMessage(conn, data as Buffer, isBinary));
    ws.on('pong', () => alive(conn));
    ws.on('close', (code) => onClose(conn, code));
    ws.on('error', (err) => logger.debug({ conn: conn.id, err: err.message }, 'socket error'));
    conn.event('connect.challenge', { nonce: conn.nonce, ts: Date.now(), protocol: { min: PROTOCOL_MIN, max: PROTOCOL_MAX } });
  }

  function routeStreamFrame(conn: Conn, data: Buffer, sf: StreamFrame): void {
    const tap = conn.taps.get(sf.id);
    if (tap) {
      tap.forward(data);
      if (sf.kind === 'close' || sf.kind === 'abort') tap.end('closed by the satellite');
      return;
    }
    conn.streams.get(sf.id)?.handleFrame(sf);
  }

  function onMessage(conn: Conn, data: Buffer, isBinary: boolean): void {
    if (conn.state === 'closed' || conn.closing) return;
    conn.heard = true;
    // Frames of an open stream are paced by its credit window, not by the message bucket: a
    // dropped credit frame would stall a transfer for good. They get a bucket of their own, far
    // above any real transfer; beyond it the stream is aborted (visibly), never left hanging.
    const sf = isBinary && conn.state === 'ready' ? decodeStreamFrame(data) : null;
    if (sf && (conn.streams.has(sf.id) || conn.taps.has(sf.id)) && data.length <= limits.maxFrameBytes) {
      if (!conn.admitStreamFrame()) {
        conn.violations++;
        conn.streams.get(sf.id)?.abort('stream frame rate exceeded');
        conn.taps.get(sf.id)?.end('stream frame rate exceeded');
        if (conn.violations > limits.maxViolations) conn.close(CLOSE_CODES.RATE_LIMITED.code, 'rate limit exceeded');
        return;
      }
      routeStreamFrame(conn, data, sf);
      return;
    }
    if (!conn.admit()) {
      conn.violations++;
      if (conn.violations > limits.maxViolations) {
        audit.log({ actor: actorOf(conn), action: 'connection.rate_limited', details: { violations: conn.violations }, result: 'failure', sourceIp: conn.ip });
        conn.close(CLOSE_CODES.RATE_LIMITED.code, 'rate limit exceeded');
        return;
      }
      conn.error(undefined, {
        code: 'RATE_LIMITED',
        message: `More than ${limits.messagesPerSecond} messages/s`,
        hint: { action: 'retry', retryAfterMs: 1000 },
      });
      return;
    }
    if (data.length > limits.maxFrameBytes) {
      conn.error(undefined, { code: 'FRAME_TOO_LARGE', message: `Frame of ${data.length} bytes exceeds ${limits.maxFrameBytes}` });
      return;
    }
    if (isBinary) {
      const stream = sf ? conn.streams.get(sf.id) : undefined;
      // Credit/close/abort for a stream that just ended are benign races of the two ends: dropped quietly.
      if (sf && !stream && sf.kind !== 'data' && conn.state === 'ready') return;
      if (!sf || !stream) {
        conn.error(undefined, {
          code: 'BAD_FRAME',
          message: sf ? `Binary frames need an open stream (no stream ${sf.id})` : 'Binary frames need an open stream',
        });
        return;
      }
      routeStreamFrame(conn, data, sf);
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString('utf8'));
    } catch {
      conn.error(undefined, { code: 'BAD_FRAME', message: 'Frame is not valid JSON' });
      return;
    }
    // The SDK's hand-made check of the same schema (pinned to it by a differential test): zod's
    // union parse of every frame was a visible share of the hub's time in a fan-out. zod only
    // words what is wrong with a frame that fails.
    const frame = parseFrame(raw);
    if (!frame) {
      const parsed = Frame.safeParse(raw);
      const pendingId = raw && typeof raw === 'object' && (raw as { type?: unknown }).type === 'res' ? (raw as { id?: unknown }).id : undefined;
      // A node's broken answer still ends its command, instead of leaving it to time out.
      if (typeof pendingId === 'string') conn.invokes.take(pendingId)?.reject(new HiveError('BAD_FRAME', 'Satellite answered with a malformed response'));
      const id =
        raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id.slice(0, 64) || undefined : undefined;
      conn.error(id, {
        code: 'BAD_FRAME',
        message: 'Frame does not match the protocol',
        details: { issues: parsed.success ? [] : parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) },
      });
      return;
    }
    if (frame.type === 'res') {
      const p = conn.invokes.take(frame.id);
      if (!p) return; // late answer to a timed-out invoke
      if (frame.ok) p.resolve(frame.result);
      else p.reject(HiveError.fromWire(frame.error as WireError));
      return;
    }
    if (frame.type === 'event') {
      if (frame.event === 'invoke.output' && conn.auth?.role === 'node' && conn.registered) {
        const out = InvokeOutput.safeParse(frame.payload);
        // Only output for a command this hub sent to this node is relayed.
        if (out.success && conn.invokes.running(out.data.correlationId)) {
          bus.publish('job:output', { correlation_id: out.data.correlationId, satellite_id: conn.auth.deviceId, stream: out.data.stream, data: out.data.data });
          return;
        }
        conn.error(undefined, { code: 'BAD_FRAME', message: 'invoke.output for no running command' });
        return;
      }
      conn.error(undefined, { code: 'UNKNOWN_METHOD', message: `Unknown client event ${frame.event}` });
      return;
    }
    if (frame.method === 'connect') {
      if (conn.state !== 'challenge') {
        conn.error(frame.id, { code: 'CONFLICT', message: 'connect was already sent on this connection' });
        return;
      }
      conn.state = 'connecting';
      track(handleConnect(conn, frame));
      return;
    }
    if (conn.state !== 'ready') {
      conn.error(frame.id, { code: 'HANDSHAKE_REQUIRED', message: 'Send connect and wait for hello first' });
      return;
    }
    track(dispatch(conn, frame));
  }

  async function handleConnect(conn: Conn, frame: RequestFrame): Promise<void> {
    const fail = (err: HiveError) => {
      conn.error(frame.id, err.toWire());
      conn.close(closeCodeFor(err.code), err.message);
    };
    if (shuttingDown) return fail(new HiveError('SHUTTING_DOWN', 'Hub is shutting down', undefined, { action: 'retry', retryAfterMs: 2000 }));
    const parsed = ConnectParams.safeParse(frame.params);
    if (!parsed.success) {
      return fail(
        new HiveError(
          'INVALID_PARAMETERS',
          'Invalid connect params',
          { issues: parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`) },
          { action: 'abort' },
        ),
      );
    }
    const params = parsed.data;
    const version = negotiateVersion(params.protocol);
    if (version === null) {
      audit.log({
        actor: { type: 'device', id: 'unknown', name: params.client.name },
        action: 'connection.protocol_mismatch',
        details: { client: params.protocol },
        result: 'failure',
        sourceIp: conn.ip,
      });
      return fail(
        new HiveError(
          'PROTOCOL_VERSION',
          `Client speaks protocol ${params.protocol.min}-${params.protocol.max}, hub speaks ${PROTOCOL_MIN}-${PROTOCOL_MAX}`,
          { server: { min: PROTOCOL_MIN, max: PROTOCOL_MAX } },
          { action: 'upgrade' },
        ),
      );
    }
    conn.params = params;
    let outcome: Awaited<ReturnType<WsDeps['devices']['handshake']>>;
    try {
      outcome = await devices.handshake({ params, nonce: conn.nonce, ip: conn.ip, loopback: conn.loopback });
      if (outcome.kind === 'pending') {
        clearTimeout(conn.handshakeTimer);
        conn.state = 'pending';
        conn.cancelPairing = outcome.cancel;
        conn.event('pairing.pending', { requestId: outcome.requestId, deviceId: outcome.deviceId, expiresAt: outcome.expiresAt });
        outcome = await outcome.decision;
      }
    } catch (err) {
      if (conn.state === 'closed') return;
      return fail(err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', 'Handshake failed', undefined, { action: 'retry', retryAfterMs: 5000 }));
    }
    if (conn.state === 'closed' || conn.ws.readyState !== WebSocket.OPEN) return;
    clearTimeout(conn.handshakeTimer);
    conn.auth = outcome;
    conn.registered = true;
    if (outcome.role === 'node' && outcome.deviceId) {
      const prev = nodes.get(outcome.deviceId);
      nodes.set(outcome.deviceId, conn);
      if (prev && prev !== conn) {
        prev.close(CLOSE_CODES.REPLACED.code, 'replaced by a newer connection of this device');
      }
      bus.registerNode(outcome.deviceId, conn);
      await devices.markOnline(outcome, params, conn.ip);
    } else {
      operators.add(conn);
      audit.log({
        actor: outcome.principal,
        action: 'operator.connected',
        details: { scopes: outcome.scopes, client: params.client.name },
        result: 'success',
        sourceIp: conn.ip,
      });
    }
    // The socket may have closed while we were recording it; onClose has undone the registration.
    if ((conn.state as State) === 'closed') return;
    conn.state = 'ready';
    conn.send({
      type: 'res',
      id: frame.id,
      ok: true,
      result: {
        type: 'hello',
        protocol: version,
        deviceId: outcome.deviceId,
        slug: outcome.satellite?.slug ?? null,
        role: outcome.role,
        scopes: outcome.scopes,
        heartbeatMs: limits.heartbeatMs,
        limits,
        hubId: deps.hubId,
        ...(outcome.role === 'node' ? { hubKey: deps.hubKey } : {}),
        ...(outcome.token ? { token: outcome.token } : {}),
      },
    });
  }

  async function dispatch(conn: Conn, frame: RequestFrame): Promise<void> {
    const auth = conn.auth as Authenticated;
    if (!isMethod(frame.method)) {
      conn.error(frame.id, { code: 'UNKNOWN_METHOD', message: `Unknown method ${frame.method}` });
      return;
    }
    const spec = METHODS[frame.method];
    if (!(spec.roles as readonly string[]).includes(auth.role)) {
      conn.error(frame.id, { code: 'FORBIDDEN', message: `Method ${frame.method} is not available to role ${auth.role}` });
      return;
    }
    if (spec.scope && !auth.scopes.includes(spec.scope as Scope) && !auth.scopes.includes('operator.admin')) {
      conn.error(frame.id, { code: 'FORBIDDEN', message: `Method ${frame.method} needs scope ${spec.scope}` });
      return;
    }
    if (conn.inflight >= limits.maxInflight) {
      conn.error(frame.id, {
        code: 'TOO_MANY_INFLIGHT',
        message: `At most ${limits.maxInflight} requests in flight`,
        hint: { action: 'retry', retryAfterMs: 100 },
      });
      return;
    }
    const params = spec.params.safeParse(frame.params);
    if (!params.success) {
      conn.error(frame.id, {
        code: 'INVALID_PARAMETERS',
        message: `Invalid params for ${frame.method}`,
        details: { issues: params.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`) },
      });
      return;
    }
    if (frame.method === 'ping') {
      conn.send({ type: 'res', id: frame.id, ok: true, result: { ts: Date.now() } });
      return;
    }
    if (frame.method === 'node.status') {
      try {
        conn.send({ type: 'res', id: frame.id, ok: true, result: await devices.recordStatus(auth, params.data as Record<string, unknown>) });
      } catch (err) {
        conn.error(frame.id, (err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', 'status not stored')).toWire());
      }
      return;
    }
    if (frame.method.startsWith('session.') || frame.method.startsWith('session:')) {
      const sessions = deps.sessions;
      if (!sessions) {
        conn.error(frame.id, { code: 'UNKNOWN_METHOD', message: `Method ${frame.method} is not served by this hub` });
        return;
      }
      conn.inflight++;
      try {
        conn.send({ type: 'res', id: frame.id, ok: true, result: await sessions(frame.method, auth.principal, params.data, conn.sink()) });
      } catch (err) {
        const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', 'Internal error');
        if (!(err instanceof HiveError)) logger.error({ err: (err as Error).message, method: frame.method }, 'method failed');
        conn.error(frame.id, e.toWire());
      } finally {
        conn.inflight--;
      }
      return;
    }
    const handler = deps.handlers[frame.method];
    if (!handler) {
      conn.error(frame.id, { code: 'UNKNOWN_METHOD', message: `Method ${frame.method} is not served by this hub` });
      return;
    }
    conn.inflight++;
    try {
      const result = await handler(auth.principal, params.data);
      conn.send({ type: 'res', id: frame.id, ok: true, result });
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', 'Internal error');
      if (!(err instanceof HiveError)) logger.error({ err: (err as Error).message, method: frame.method }, 'method failed');
      conn.error(frame.id, e.toWire());
    } finally {
      conn.inflight--;
    }
  }

  function actorOf(conn: Conn) {
    if (conn.auth) return conn.auth.principal;
    return { type: 'connection', id: `conn:${conn.id}`, name: conn.params?.client.name ?? 'unknown', ip: conn.ip };
  }

  function onClose(conn: Conn, code: number): void {
    if (conn.state === 'closed' && !conn.registered && !conns.has(conn)) return;
    conn.state = 'closed';
    conns.delete(conn);
    operators.delete(conn);
    clearTimeout(conn.handshakeTimer);
    conn.cancelPairing?.();
    const reason = shuttingDown ? 'hub_shutdown' : `closed_${code}`;
    for (const p of conn.invokes.drain()) {
      p.reject(
        shuttingDown
          ? new HiveError('SHUTTING_DOWN', 'Hub shut down while the command was running')
          : new HiveError('SATELLITE_OFFLINE', `Satellite disconnected (${code}) while the command was running`),
      );
    }
    const streams = [...conn.streams.values()];
    conn.streams.clear();
    for (const st of streams) st.dropped(shuttingDown ? 'hub_shutdown' : 'connection closed');
    const taps = [...conn.taps.values()];
    conn.taps.clear();
    for (const t of taps) t.end(shuttingDown ? 'hub_shutdown' : 'connection closed');
    const gone = [...conn.gone];
    conn.gone.clear();
    for (const cb of gone) {
      try {
        cb();
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'connection close callback failed');
      }
    }
    const auth = conn.auth;
    if (!conn.registered || !auth) return;
    conn.registered = false;
    if (auth.role === 'node' && auth.deviceId) {
      // A replaced connection closing must not mark its successor offline.
      if (nodes.get(auth.deviceId) !== conn) return;
      nodes.delete(auth.deviceId);
      bus.unregisterNode(auth.deviceId, conn);
      track(devices.markOffline(auth, reason));
    } else {
      audit.log({ actor: auth.principal, action: 'operator.disconnected', details: { code }, result: 'success', sourceIp: conn.ip });
    }
  }

  const unsubscribe = bus.subscribe(({ event, payload }) => {
    // Requests between hub instances, not news for operators.
    if (INTERNAL_EVENTS.has(event)) return;
    if (event === 'credentials:revoked') {
      const id = (payload as { principal_id?: string }).principal_id;
      for (const op of operators) if (op.auth?.principal.id === id) op.close(CLOSE_CODES.REVOKED.code, 'credentials revoked');
      return;
    }
    if (operators.size === 0) return;
    const scope: Scope = event.startsWith('pairing:') ? 'operator.pairing' : event.startsWith('approval.') ? 'operator.approvals' : 'operator.read';
    // Operators restricted to projects hear only about satellites of their projects.
    const p = payload as { id?: string; satellite_id?: string } | null;
    const satId = event.startsWith('satellite:') ? p?.id : p?.satellite_id;
    // New devices land in the default project, so pairing news belongs there.
    const project = satId ? devices.projectOf(satId) : event.startsWith('pairing:') ? 'default' : undefined;
    for (const op of operators) {
      const s = op.auth?.scopes ?? [];
      if (!s.includes(scope) && !s.includes('operator.admin')) continue;
      const principal = op.auth?.principal;
      if (principal?.projects && !(project !== undefined && inProject(principal, project))) continue;
      op.event(event, payload);
    }
  });

  /** A sign of life (a pong, or any frame since the last beat): no beats missed, last_seen moves. */
  function alive(conn: Conn): void {
    conn.missed = 0;
    if (conn.auth?.role === 'node' && conn.auth.deviceId) devices.heartbeat(conn.auth.deviceId);
  }
  const beat = (conn: Conn) => {
    if (conn.state === 'closed' || conn.closing || conn.state === 'challenge' || conn.state === 'connecting') return;
    if (conn.heard) {
      // It spoke since the last beat (a result, a status report): as good as a pong, and no
      // ping to write (a fan-out's results make the next round of 10,000 pings unnecessary).
      conn.heard = false;
      alive(conn);
      return;
    }
    if (conn.missed >= maxMissed) {
      conn.close(CLOSE_CODES.HEARTBEAT_TIMEOUT.code, `missed ${maxMissed} heartbeats`);
      return;
    }
    conn.missed++;
    try {
      conn.ws.ping();
    } catch {
      /* closing */
    }
  };
  // Each connection gets one beat per interval, spread evenly over it: a tick every
  // interval/HEARTBEAT_TICKS beats the next share of the round. (All 10,000 pings in one go froze
  // the hub for ~0.4 s, and even in slices of 500 stalled it ~50 ms at a time: latency spikes.)
  const HEARTBEAT_TICKS = Math.max(1, Math.min(100, Math.floor(limits.heartbeatMs / 50)));
  let round: Conn[] = [];
  let at = 0;
  let ticks = 0;
  const heartbeat = setInterval(() => {
    if (ticks === 0) {
      round = [...conns];
      at = 0;
    }
    ticks++;
    const end = ticks >= HEARTBEAT_TICKS ? round.length : Math.ceil((round.length * ticks) / HEARTBEAT_TICKS);
    // last_seen is stored for this tick's share too (all 10,000 at the end of a round was a burst
    // of writes that showed as latency spikes).
    const seen: string[] = [];
    for (; at < end; at++) {
      const c = round[at] as Conn;
      beat(c);
      if (c.auth?.role === 'node' && c.auth.deviceId && c.state !== 'closed') seen.push(c.auth.deviceId);
    }
    if (seen.length) track(devices.flushPresence(seen));
    if (ticks >= HEARTBEAT_TICKS) {
      ticks = 0;
      round = [];
    }
  }, limits.heartbeatMs / HEARTBEAT_TICKS);
  heartbeat.unref();

  return {
    /** Upgrade handler for the HTTP server. Returns false when the path is not ours. */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (!WS_PATHS.has(path)) return false;
      if (shuttingDown) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
      return true;
    },
    stats() {
      let streams = 0;
      let streamBuffered = 0;
      for (const c of conns) {
        streams += c.streams.size;
        for (const st of c.streams.values()) streamBuffered += st.queued + st.unconsumed;
      }
      return { connections: conns.size, nodes: nodes.size, operators: operators.size, streams, stream_buffered_bytes: streamBuffered };
    },
    /** Tells every peer to reconnect later (1012), then waits for their records to settle. */
    async shutdown(timeoutMs = 3000): Promise<void> {
      shuttingDown = true;
      clearInterval(heartbeat);
      unsubscribe();
      for (const conn of conns) {
        conn.event('shutdown', { reconnect: true });
        conn.close(CLOSE_CODES.SERVICE_RESTART.code, 'hub restarting');
      }
      const deadline = Date.now() + timeoutMs;
      while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const conn of conns) {
        conn.ws.terminate();
        onClose(conn, 1006);
      }
      await background.idle();
      wss.close();
    },
  };
}

export type WsServer = ReturnType<typeof createWsServer>;
