import { EventEmitter } from 'node:events';
import type { ConnectParamsInput, HelloResult, InvokeParams, RequestFrame, Role, Scope, StreamFrame, StreamHandlers, WireError } from '@hive/protocol';
import WebSocket from 'ws';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { type DeviceIdentity, signConnect, verifySignature } from './identity.js';
import { merkleRootB64u } from './merkle.js';
import {
  CLOSE_CODES,
  closeNameFor,
  decodeStreamFrame,
  HiveError,
  invokeRootPayload,
  invokeSigningPayload,
  isChallenge,
  PROTOCOL_MAX,
  PROTOCOL_MIN,
  parseFrame,
  parseHello,
  parseInvoke,
  parseInvokeCancel,
  STREAM_MAX_PER_CONNECTION,
  StreamEndpoint,
} from './protocol-lite.js';
import { type HubTrust, normalizeFingerprint, secureConnector, type TlsSeen } from './tls.js';

export interface TokenStoreLike {
  get(role: Role): Promise<string | undefined>;
  set(role: Role, token: string | undefined): Promise<void>;
  /** The hub's command-signing key pinned at pairing (nodes refuse invokes not signed by it). */
  getHubKey?(): Promise<string | undefined>;
  setHubKey?(key: string | undefined): Promise<void>;
  /** How the hub's TLS certificate is trusted after first use: its fingerprint, or `ca`. */
  getHubTls?(): Promise<string | undefined>;
  setHubTls?(value: string | undefined): Promise<void>;
}

/** Trust in the hub's TLS certificate (wss:// URLs). See docs/protocol.md §1.1. */
export interface HubTlsOptions {
  /** Pin: the SHA-256 fingerprint of the hub's certificate (`sha256:AB:CD:…`); no CA check. */
  fingerprint?: string | undefined;
  /** Verify against this CA (PEM) instead of the system CAs. */
  ca?: string | Buffer | undefined;
  /**
   * With nothing pinned, given or stored: accept the certificate seen at the first successful
   * handshake and store it (`TokenStoreLike.setHubTls`), then require it on every later connect.
   * A certificate the system CAs verify is stored as `ca` (renewals keep working, a self-signed
   * impostor does not). Off: verify with the system CAs.
   */
  tofu?: boolean | undefined;
}

/** Invokes issued more than this far from the node's clock are refused as stale. */
export const INVOKE_SKEW_MS = 120_000;

export interface RequestContext {
  /** Aborted when the connection drops while the request is being handled. */
  signal: AbortSignal;
  /**
   * Streams partial output of a running invoke to the hub (`invoke.output` events), which relays
   * it to operators as `job:output`. Coalesce: each call is one frame under the message rate limit.
   */
  output(stream: 'stdout' | 'stderr', data: string): void;
  /** Accepts a binary stream the hub opened for this request (its id travels in the params). */
  acceptStream(id: number, handlers?: StreamHandlers, opts?: StreamOptions): StreamEndpoint;
}

export interface StreamOptions {
  /** Grant credit only when the consumer calls `consumed(n)` (slow readers hold the sender back). */
  manualCredit?: boolean;
  window?: number;
}

export type RequestHandler = (method: string, params: unknown, ctx: RequestContext) => Promise<unknown>;

export interface HiveClientOptions {
  /** WebSocket URL of the hub, e.g. ws://127.0.0.1:7420/ws */
  url: string;
  role: Role;
  scopes?: Scope[];
  client: ConnectParamsInput['client'];
  identity?: DeviceIdentity;
  tokenStore?: TokenStoreLike;
  apiKey?: string;
  enrollToken?: string;
  tags?: string[];
  caps?: string[];
  commands?: string[];
  /** Reconnect after a drop (default true). */
  reconnect?: boolean;
  backoff?: Partial<BackoffOptions>;
  requestTimeoutMs?: number;
  /** Handles requests the hub sends to this client (e.g. `invoke` for nodes). */
  onRequest?: RequestHandler;
  /** The node's effective local policy, reported at connect so operators see it on the hub. */
  policy?: Record<string, unknown>;
  /** Protocol versions offered (default: what this build speaks). */
  protocol?: { min: number; max: number };
  /** Extra options for the ws client (e.g. localAddress). */
  wsOptions?: WebSocket.ClientOptions;
  /** Trust in the hub's TLS certificate for wss:// URLs: pin, CA, or trust on first use. */
  tls?: HubTlsOptions;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Batch roots whose hub signature this process has checked. A process that hosts several nodes
 * (a gateway, the bench's simulated fleet) receives one fan-out's root once per node; Ed25519
 * verification is deterministic, so a root, key and signature that verified once verify again.
 * Each node still checks its own Merkle proof up to the root. Only successes are kept.
 */
const verifiedRoots = new Set<string>();
function verifiedRoot(hubKey: string, payload: string, sig: string): boolean {
  const key = `${hubKey} ${sig} ${payload}`;
  if (verifiedRoots.has(key)) return true;
  if (!verifySignature(hubKey, payload, sig)) return false;
  if (verifiedRoots.size >= 256) verifiedRoots.clear();
  verifiedRoots.add(key);
  return true;
}

/**
 * What aborts a hub request's handler. Its AbortController is made when the handler first reads
 * `signal` (most never do; making one per invoke was ~5% of a node's CPU per invoke in a fan-out);
 * an abort that came before is applied to it then.
 */
class RequestAbort {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** As AbortController.abort: the first reason stays. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/**
 * A connection to the hub speaking protocol v1: handshake (challenge → connect → hello),
 * request/response, events, hub-initiated requests, and reconnect with jittered backoff that
 * obeys the hub's recovery hints.
 *
 * Events: `hello` (HelloResult), `event` (name, payload, seq), `pairing` (payload),
 * `disconnected` ({code, reason}), `reconnecting` (delayMs), `fatal` (HiveError), `token` (role),
 * `tls-pinned` ({fingerprint, mode}) when trust on first use stored the hub's certificate.
 */
export class HiveClient extends EventEmitter {
  readonly opts: HiveClientOptions;
  private ws: WebSocket | undefined;
  private hello: HelloResult | undefined;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private attempt = 0;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff: BackoffOptions;
  private readonly inflight = new Map<string, RequestAbort>();
  /** Running invokes by correlation id, for `invoke.cancel`. */
  private readonly running = new Map<string, RequestAbort>();
  /** Correlation ids already accepted, kept until their deadline passes (replay protection). */
  private readonly seen = new Map<string, number>();
  private seenPrunedAt = 0;
  private hubKey: string | undefined;
  private outSeq = 0;
  /** Binary streams open on the current connection, by id. */
  private readonly streams = new Map<number, StreamEndpoint>();
  /**
   * Close/abort frames for ids not accepted yet: the hub may end a stream (e.g. an upload that
   * failed its checksum) before the handler that accepts it got to run. Bounded.
   */
  private readonly earlyEnds = new Map<number, StreamFrame>();
  private nextStreamId = 1;
  private nextDelayOverride: number | undefined;
  /** Set when a handshake error's hint already decided what to do after the close. */
  private decided = false;
  /** TLS trust stored at first use (`sha256:…` or `ca`), read once. */
  private storedTls: string | undefined | null = null;
  /** The certificate each live socket presented, for trust on first use. */
  private readonly tlsSeen = new WeakMap<WebSocket, TlsSeen>();

  constructor(opts: HiveClientOptions) {
    super();
    this.opts = opts;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  get connected(): boolean {
    return this.hello !== undefined && this.ws?.readyState === WebSocket.OPEN;
  }

  get helloResult(): HelloResult | undefined {
    return this.hello;
  }

  /** Connects; resolves with the first hello, rejects on a fatal error (no reconnect helps). */
  start(): Promise<HelloResult> {
    this.stopped = false;
    return new Promise<HelloResult>((resolve, reject) => {
      const onHello = (h: HelloResult) => {
        this.off('fatal', onFatal);
        resolve(h);
      };
      const onFatal = (e: HiveError) => {
        this.off('hello', onHello);
        reject(e);
      };
      this.once('hello', onHello);
      this.once('fatal', onFatal);
      this.open();
    });
  }

  /** Closes for good: no reconnect. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(CLOSE_CODES.NORMAL.code, 'client closing');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }

  /** Sends a request and waits for its response. Throws HiveError with the hub's code. */
  request<T = unknown>(method: string, params?: unknown, timeoutMs = this.opts.requestTimeoutMs ?? 30_000): Promise<T> {
    const ws = this.ws;
    if (!ws || !this.hello || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new HiveError('SATELLITE_OFFLINE', 'Not connected to the hub'));
    }
    return this.sendRequest<T>(ws, method, params, timeoutMs);
  }

  private sendRequest<T>(ws: WebSocket, method: string, params: unknown, timeoutMs: number): Promise<T> {
    const id = `c${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HiveError('TIMEOUT', `No response to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      ws.send(JSON.stringify({ type: 'req', id, method, params }));
    });
  }

  /**
   * How this connection trusts the hub's certificate: configured pin, configured CA, stored
   * first-use trust, first use, or the system CAs. A plaintext URL while anything is pinned is
   * refused: never fall back to plaintext.
   */
  private async resolveTrust(): Promise<HubTrust | undefined> {
    const t = this.opts.tls ?? {};
    if (this.storedTls === null) this.storedTls = (await this.opts.tokenStore?.getHubTls?.()) ?? undefined;
    const pinned = t.fingerprint ?? t.ca ?? this.storedTls;
    if (!/^wss:/i.test(this.opts.url)) {
      if (pinned) {
        throw new HiveError(
          'TLS_UNTRUSTED',
          `The hub URL ${this.opts.url} is plaintext but a TLS ${t.ca ? 'CA' : 'fingerprint'} is ${t.fingerprint || t.ca ? 'configured' : 'pinned from an earlier connection'}; refusing to fall back to plaintext. Use wss://.`,
          undefined,
          { action: 'abort' },
        );
      }
      return undefined;
    }
    if (t.fingerprint) return { mode: 'pin', fingerprint: normalizeFingerprint(t.fingerprint) };
    if (t.ca) return { mode: 'ca', ca: t.ca };
    if (this.storedTls === 'ca') return { mode: 'ca' };
    if (this.storedTls) return { mode: 'pin', fingerprint: normalizeFingerprint(this.storedTls) };
    return t.tofu ? { mode: 'tofu' } : { mode: 'ca' };
  }

  private open(): void {
    if (this.stopped) return;
    this.resolveTrust().then(
      (trust) => this.openSocket(trust),
      (err: Error) => this.fatal(err instanceof HiveError ? err : new HiveError('INVALID_PARAMETERS', err.message)),
    );
  }

  private openSocket(trust: HubTrust | undefined): void {
    if (this.stopped) return;
    this.hello = undefined;
    this.decided = false;
    let ws: WebSocket;
    const secure = trust
      ? {
          createConnection: secureConnector(trust, (seen) => {
            if (ws) this.tlsSeen.set(ws, seen);
          }) as unknown as WebSocket.ClientOptions['createConnection'],
        }
      : {};
    ws = new WebSocket(this.opts.url, { perMessageDeflate: false, ...this.opts.wsOptions, ...secure });
    this.ws = ws;
    let challenged = false;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.onBinary(ws, data as Buffer);
        return;
      }
      let frame: ReturnType<typeof parseFrame>;
      try {
        frame = parseFrame(JSON.parse(data.toString()));
      } catch {
        return; // not JSON
      }
      if (!frame) return; // a hub never sends these; ignore rather than crash
      if (frame.type === 'event') {
        if (frame.event === 'connect.challenge' && !challenged) {
          challenged = true;
          this.handshake(ws, frame.payload).catch((err: Error) => this.fatal(new HiveError('INTERNAL_ERROR', `Handshake failed: ${err.message}`)));
          return;
        }
        if (frame.event === 'pairing.pending') this.emit('pairing', frame.payload);
        this.emit('event', frame.event, frame.payload, frame.seq);
        return;
      }
      if (frame.type === 'res') {
        const p = this.pending.get(frame.id);
        if (!p) return;
        this.pending.delete(frame.id);
        clearTimeout(p.timer);
        if (frame.ok) p.resolve(frame.result);
        else p.reject(HiveError.fromWire(frame.error as WireError));
        return;
      }
      void this.handleHubRequest(ws, frame);
    });
    ws.on('close', (code, reasonBuf) => this.onClose(ws, code, reasonBuf.toString()));
    ws.on('error', (err) => {
      // A certificate that fails the pin or the CA check: fail closed, no reconnect loop.
      if (err instanceof HiveError && err.code.startsWith('TLS_')) this.fatal(err);
      /* otherwise 'close' follows and drives reconnect */
    });
  }

  private onBinary(ws: WebSocket, data: Buffer): void {
    if (ws !== this.ws) return;
    const frame = decodeStreamFrame(data);
    if (!frame) return;
    const st = this.streams.get(frame.id);
    if (st) {
      st.handleFrame(frame);
      return;
    }
    if (frame.kind === 'close' || frame.kind === 'abort') {
      if (this.earlyEnds.size >= 64) this.earlyEnds.delete(this.earlyEnds.keys().next().value as number);
      this.earlyEnds.set(frame.id, { ...frame, payload: Buffer.from(frame.payload) });
    }
  }

  private registerStream(ws: WebSocket, id: number, opener: boolean, handlers: StreamHandlers, opts: StreamOptions): StreamEndpoint {
    if (this.streams.has(id)) throw new HiveError('CONFLICT', `Stream ${id} is already open`);
    const early = this.earlyEnds.get(id);
    if (early) {
      // Already ended by the hub: hand back a closed endpoint, nothing goes on the wire.
      this.earlyEnds.delete(id);
      const dead = new StreamEndpoint({ id, opener, send: () => {} }, handlers);
      dead.handleFrame(early);
      return dead;
    }
    if (this.streams.size >= STREAM_MAX_PER_CONNECTION) throw new HiveError('RATE_LIMITED', `At most ${STREAM_MAX_PER_CONNECTION} streams per connection`);
    const ep = new StreamEndpoint(
      {
        id,
        opener,
        send: (frame) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(frame);
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

  /**
   * Accepts a stream the hub opened on this connection (its id came in a response or request).
   * Sends the first credit grant; data flows once both sides granted.
   */
  acceptStream(id: number, handlers: StreamHandlers = {}, opts: StreamOptions = {}): StreamEndpoint {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new HiveError('SATELLITE_OFFLINE', 'Not connected to the hub');
    return this.registerStream(ws, id, false, handlers, opts);
  }

  /** Opens a client-allocated stream (odd id); the hub must be told the id in a request. */
  openStream(handlers: StreamHandlers = {}, opts: StreamOptions = {}): StreamEndpoint {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new HiveError('SATELLITE_OFFLINE', 'Not connected to the hub');
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    return this.registerStream(ws, id, true, handlers, opts);
  }

  /** Bytes buffered by this client's streams (queued for credit + received, unconsumed). */
  streamStats(): { streams: number; queued: number; unconsumed: number } {
    let queued = 0;
    let unconsumed = 0;
    for (const s of this.streams.values()) {
      queued += s.queued;
      unconsumed += s.unconsumed;
    }
    return { streams: this.streams.size, queued, unconsumed };
  }

  private async handshake(ws: WebSocket, payload: unknown): Promise<void> {
    if (!isChallenge(payload)) {
      ws.close(CLOSE_CODES.BAD_FRAME.code, 'bad challenge');
      return;
    }
    const role = this.opts.role;
    const scopes = this.opts.scopes ?? [];
    const token = await this.opts.tokenStore?.get(role);
    const params: ConnectParamsInput = {
      protocol: this.opts.protocol ?? { min: PROTOCOL_MIN, max: PROTOCOL_MAX },
      role,
      scopes,
      client: this.opts.client,
      auth: {
        ...(token ? { token } : {}),
        ...(this.opts.apiKey ? { apiKey: this.opts.apiKey } : {}),
        ...(this.opts.enrollToken && !token ? { enrollToken: this.opts.enrollToken } : {}),
      },
      caps: this.opts.caps ?? [],
      commands: this.opts.commands ?? [],
      ...(this.opts.tags ? { tags: this.opts.tags } : {}),
      ...(this.opts.policy ? { policy: this.opts.policy } : {}),
    };
    if (this.opts.identity) params.device = signConnect(this.opts.identity, payload.nonce, role, scopes);
    try {
      // Pairing may keep this request open until an operator decides.
      const raw = await this.sendRequest(ws, 'connect', params, 24 * 3600_000);
      const hello = parseHello(raw);
      if (this.opts.role === 'node' && hello.hubKey) {
        const pinned = this.hubKey ?? (await this.opts.tokenStore?.getHubKey?.());
        if (pinned && pinned !== hello.hubKey) {
          this.fatal(
            new HiveError(
              'AUTH_INVALID',
              'The hub presented a different command-signing key than the one pinned at pairing; refusing. Re-pair to trust a new hub.',
            ),
          );
          ws.close(CLOSE_CODES.NORMAL.code, 'hub key mismatch');
          return;
        }
        if (!pinned) await this.opts.tokenStore?.setHubKey?.(hello.hubKey);
        this.hubKey = hello.hubKey;
      }
      if (hello.token && this.opts.tokenStore) {
        await this.opts.tokenStore.set(role, hello.token);
        this.emit('token', role);
      }
      await this.rememberTls(ws);
      if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
      this.hello = hello;
      this.attempt = 0;
      this.emit('hello', hello);
    } catch (err) {
      // The socket died before the hub answered: onClose already scheduled what comes next.
      if (ws !== this.ws || ws.readyState === WebSocket.CLOSED) return;
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', String(err));
      await this.applyRecovery(e);
    }
  }

  /** Trust on first use: after the first successful handshake over wss, keep what the hub presented. */
  private async rememberTls(ws: WebSocket): Promise<void> {
    const seen = this.tlsSeen.get(ws);
    if (!seen || !this.opts.tls?.tofu || this.opts.tls.fingerprint || this.opts.tls.ca || this.storedTls) return;
    this.storedTls = seen.authorized ? 'ca' : seen.fingerprint;
    await this.opts.tokenStore?.setHubTls?.(this.storedTls);
    this.emit('tls-pinned', { fingerprint: seen.fingerprint, mode: seen.authorized ? 'ca' : 'pin' });
  }

  /** Acts on the hub's recovery hint for a handshake error. */
  private async applyRecovery(e: HiveError): Promise<void> {
    const action = e.hint?.action ?? 'retry';
    this.decided = action === 'repair' || action === 'retry';
    if (action === 'repair') {
      await this.opts.tokenStore?.set(this.opts.role, undefined);
      this.nextDelayOverride = 0;
    } else if (action === 'retry') {
      if (e.hint?.retryAfterMs !== undefined) this.nextDelayOverride = e.hint.retryAfterMs;
    } else {
      this.fatal(e);
    }
  }

  private fatal(e: HiveError): void {
    this.stopped = true;
    this.emit('fatal', e);
  }

  private async handleHubRequest(ws: WebSocket, frame: RequestFrame): Promise<void> {
    const send = (body: Record<string, unknown>) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'res', id: frame.id, ...body }));
    };
    if (frame.method === 'token.rotate') {
      // The hub replaces this connection's device token; the old one stops working once we ack.
      const token = (frame.params as { token?: unknown } | undefined)?.token;
      if (typeof token !== 'string' || !this.opts.tokenStore) {
        send({ ok: false, error: { code: 'INVALID_PARAMETERS', message: 'token.rotate needs a token and a token store' } });
        return;
      }
      try {
        await this.opts.tokenStore.set(this.opts.role, token);
        this.emit('token', this.opts.role);
        send({ ok: true, result: { stored: true } });
      } catch (err) {
        send({ ok: false, error: { code: 'INTERNAL_ERROR', message: `Cannot store the token: ${(err as Error).message}` } });
      }
      return;
    }
    if (frame.method === 'invoke.cancel') {
      const p = parseInvokeCancel(frame.params);
      const run = p ? this.running.get(p.correlationId) : undefined;
      run?.abort(p?.reason ?? 'cancelled');
      send({ ok: true, result: { cancelled: !!run } });
      return;
    }
    if (!this.opts.onRequest) {
      send({ ok: false, error: { code: 'UNKNOWN_METHOD', message: `No handler for ${frame.method}` } });
      return;
    }
    let correlationId: string | undefined;
    if (frame.method === 'invoke' && this.opts.role === 'node') {
      const refusal = this.checkInvoke(frame.params);
      if (refusal) {
        this.emit('invoke-refused', refusal);
        send({ ok: false, error: { code: 'PERMISSION_DENIED', message: `Invoke refused: ${refusal.reason}`, details: { reason: refusal.reason } } });
        return;
      }
      correlationId = (frame.params as InvokeParams).correlationId;
    }
    const abort = new RequestAbort();
    this.inflight.set(frame.id, abort);
    if (correlationId) this.running.set(correlationId, abort);
    try {
      const output = (stream: 'stdout' | 'stderr', data: string) => {
        if (!correlationId || ws.readyState !== WebSocket.OPEN || data.length === 0) return;
        // Chunks stay well under the frame limit.
        for (let i = 0; i < data.length; i += 32_768) {
          ws.send(
            JSON.stringify({ type: 'event', event: 'invoke.output', seq: ++this.outSeq, payload: { correlationId, stream, data: data.slice(i, i + 32_768) } }),
          );
        }
      };
      const acceptStream = (id: number, handlers?: StreamHandlers, opts?: StreamOptions) => {
        if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) throw new HiveError('SATELLITE_OFFLINE', 'Connection closed');
        return this.registerStream(ws, id, false, handlers ?? {}, opts ?? {});
      };
      const ctx: RequestContext = {
        get signal() {
          return abort.signal;
        },
        output,
        acceptStream,
      };
      const result = await this.opts.onRequest(frame.method, frame.params, ctx);
      const body = JSON.stringify({ type: 'res', id: frame.id, ok: true, result });
      const max = this.hello?.limits.maxFrameBytes;
      // UTF-8 takes 1 to 3 bytes per UTF-16 unit: bytes are counted only when the length leaves it open.
      if (max && body.length * 3 > max && (body.length > max || Buffer.byteLength(body) > max)) {
        throw new HiveError('FRAME_TOO_LARGE', `Result of ${frame.method} exceeds the hub's frame limit of ${max} bytes; lower the output cap`);
      }
      if (ws.readyState === WebSocket.OPEN) ws.send(body);
    } catch (err) {
      const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
      send({ ok: false, error: e.toWire() });
    } finally {
      this.inflight.delete(frame.id);
      if (correlationId) this.running.delete(correlationId);
    }
  }

  /**
   * Defense in depth for nodes: an invoke must be signed by the hub key pinned at pairing, be
   * addressed to this device, be fresh, and not be a replay. Returns the refusal, if any.
   */
  private checkInvoke(raw: unknown): { reason: string; correlationId?: string; command?: string } | undefined {
    const inv = parseInvoke(raw);
    if (!inv) return { reason: 'malformed invoke' };
    const ids = { correlationId: inv.correlationId, command: inv.command };
    if (!this.hubKey) return undefined; // nothing pinned (hub without signing): local policy still applies
    const { sig, proof } = inv;
    if (!sig) return { reason: 'unsigned', ...ids };
    // The signing payload reads only the signed fields (not sig, proof).
    if (proof) {
      // Batch-signed: the proof must lead from this very invoke to the root the hub signed.
      const root = merkleRootB64u(invokeSigningPayload(inv), proof);
      if (!root || !verifiedRoot(this.hubKey, invokeRootPayload(root), sig)) return { reason: 'bad signature', ...ids };
    } else if (!verifySignature(this.hubKey, invokeSigningPayload(inv), sig)) return { reason: 'bad signature', ...ids };
    if (this.opts.identity && inv.target !== this.opts.identity.deviceId) return { reason: 'addressed to another device', ...ids };
    const now = Date.now();
    if (inv.issuedAt < now - INVOKE_SKEW_MS || inv.issuedAt > now + INVOKE_SKEW_MS) return { reason: 'stale', ...ids };
    if (inv.deadline < now) return { reason: 'deadline passed', ...ids };
    // Expired ids go at most once a second (a busy node would otherwise walk them all per invoke).
    if (now >= this.seenPrunedAt + 1000) {
      this.seenPrunedAt = now;
      for (const [id, until] of this.seen) if (until < now) this.seen.delete(id);
    }
    if (this.seen.has(inv.correlationId)) return { reason: 'replayed', ...ids };
    this.seen.set(inv.correlationId, Math.max(inv.deadline, inv.issuedAt + INVOKE_SKEW_MS) + INVOKE_SKEW_MS);
    return undefined;
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    const wasConnected = this.hello !== undefined;
    this.hello = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new HiveError('SATELLITE_OFFLINE', `Connection closed (${code})`));
      this.pending.delete(id);
    }
    for (const abort of this.inflight.values()) abort.abort();
    this.inflight.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.earlyEnds.clear();
    for (const st of streams) st.dropped('connection closed');
    this.emit('disconnected', { code, reason, wasConnected });
    if (this.stopped) return;
    if (this.opts.reconnect === false) {
      this.stopped = true;
      return;
    }
    if (this.decided) {
      this.decided = false;
      this.scheduleReconnect();
      return;
    }
    const name = closeNameFor(code);
    const recovery = name ? CLOSE_CODES[name].recovery : 'retry';
    if (recovery === 'abort' || recovery === 'upgrade' || recovery === 'reauth') {
      const errCode =
        name === 'PAIRING_REJECTED'
          ? 'PAIRING_REJECTED'
          : name === 'PROTOCOL_VERSION'
            ? 'PROTOCOL_VERSION'
            : name === 'AUTH_FAILED'
              ? 'AUTH_INVALID'
              : 'CONFLICT';
      this.fatal(new HiveError(errCode, `Hub closed the connection: ${name ?? code} ${reason}`.trim()));
      return;
    }
    if (recovery === 'repair') {
      const drop = this.opts.tokenStore?.set(this.opts.role, undefined) ?? Promise.resolve();
      void drop.then(
        () => this.scheduleReconnect(0),
        (err: Error) => this.fatal(new HiveError('INTERNAL_ERROR', `Cannot drop the stored token: ${err.message}`)),
      );
      return;
    }
    if (code === CLOSE_CODES.SERVICE_RESTART.code) {
      this.scheduleReconnect(Math.floor(Math.random() * this.backoff.restartSpreadMs));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(forcedDelay?: number): void {
    if (this.stopped) return;
    let delay = forcedDelay ?? backoffDelay(this.attempt, this.backoff);
    if (this.nextDelayOverride !== undefined) {
      delay = Math.max(delay, this.nextDelayOverride);
      this.nextDelayOverride = undefined;
    }
    this.attempt++;
    this.emit('reconnecting', delay);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }
}
