/**
 * Binary streams multiplexed on the one WebSocket (seed 001 "Streaming + große Payloads").
 *
 * Every binary WebSocket message is one stream frame:
 *
 *   offset 0  uint32 BE  stream id (1..2^32-1; the hub allocates ids it opens as even numbers,
 *                        clients allocate odd ones)
 *   offset 4  uint8      kind: 0 data, 1 credit, 2 close, 3 abort
 *   offset 5  uint8      flags (reserved, 0)
 *   offset 6  …          payload: data bytes (≤ 64 KiB); credit: uint32 BE bytes granted;
 *                        close / abort: UTF-8 reason (≤ 256 bytes)
 *
 * Flow control is credit based and per direction: a sender may only send as many data bytes as
 * the receiver granted. The window starts at zero. The side that accepts a stream sends the first
 * frame (a credit grant); the opener answers with its own grant, so neither side ever receives a
 * frame for a stream it has not registered yet. Receivers grant again as they consume.
 *
 * This module is transport-agnostic (Uint8Array in, Uint8Array out) so the SDK, the hub and the
 * agent share one implementation of the accounting.
 */

export const STREAM_HEADER_BYTES = 6;
/** Largest data payload of one frame. */
export const STREAM_MAX_CHUNK = 64 * 1024;
/** Bytes a receiver grants at once (its receive buffer); a sender never has more in flight. */
export const STREAM_WINDOW = 256 * 1024;
/** Bytes a sender may queue locally beyond its credit before `write` reports backpressure. */
export const STREAM_HIGH_WATER = 256 * 1024;
/** Hard bound of a sender's local queue: beyond it the stream is aborted. */
export const STREAM_MAX_QUEUED = 4 * 1024 * 1024;
/** Streams one connection may have open at once. */
export const STREAM_MAX_PER_CONNECTION = 64;
const MAX_REASON_BYTES = 256;

export const STREAM_KINDS = { data: 0, credit: 1, close: 2, abort: 3 } as const;
export type StreamKind = keyof typeof STREAM_KINDS;
const KIND_NAMES: StreamKind[] = ['data', 'credit', 'close', 'abort'];

export interface StreamFrame {
  id: number;
  kind: StreamKind;
  flags: number;
  payload: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeStreamFrame(id: number, kind: StreamKind, payload: Uint8Array = new Uint8Array(0), flags = 0): Uint8Array {
  const out = new Uint8Array(STREAM_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, id >>> 0);
  out[4] = STREAM_KINDS[kind];
  out[5] = flags & 0xff;
  out.set(payload, STREAM_HEADER_BYTES);
  return out;
}

/** Parses one binary message; null when it is not a well-formed stream frame. */
export function decodeStreamFrame(buf: Uint8Array): StreamFrame | null {
  if (buf.length < STREAM_HEADER_BYTES) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = view.getUint32(0);
  const kind = KIND_NAMES[buf[4] as number];
  if (id === 0 || !kind) return null;
  const payload = buf.subarray(STREAM_HEADER_BYTES);
  if (kind === 'data' && payload.length > STREAM_MAX_CHUNK) return null;
  if (kind === 'credit' && payload.length !== 4) return null;
  if ((kind === 'close' || kind === 'abort') && payload.length > MAX_REASON_BYTES) return null;
  return { id, kind, flags: buf[5] as number, payload };
}

function creditPayload(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0);
  return out;
}

function reasonPayload(reason: string): Uint8Array {
  let bytes = enc.encode(reason);
  if (bytes.length > MAX_REASON_BYTES) bytes = bytes.subarray(0, MAX_REASON_BYTES);
  return bytes;
}

export interface StreamEndpointOptions {
  id: number;
  /** Puts one encoded frame on the wire. */
  send: (frame: Uint8Array) => void;
  /** True for the side that allocated the id: it waits for the peer's first frame before granting. */
  opener: boolean;
  /** Receive window granted to the peer (default STREAM_WINDOW). */
  window?: number;
  /**
   * Manual credit: received bytes are granted back only when the consumer calls `consumed(n)`.
   * Default false: bytes are granted back as soon as `onData` returns.
   */
  manualCredit?: boolean;
  /** Local send-queue bound before the stream aborts (default STREAM_MAX_QUEUED). */
  maxQueued?: number;
  /** Delay before queued small writes are coalesced into one frame (ms, default 2). */
  coalesceMs?: number;
  /** Called once when the stream ends, before `onClose` (registries drop it here). */
  onFinish?: () => void;
}

export interface StreamHandlers {
  onData?: (chunk: Uint8Array) => void;
  /** The peer granted credit or the queue drained below the high-water mark. */
  onDrain?: () => void;
  /** Closed (by either side) or aborted; called once. */
  onClose?: (info: { reason: string; aborted: boolean; byPeer: boolean }) => void;
}

/**
 * One end of a stream: sender-side credit accounting with a bounded local queue, receiver-side
 * window enforcement (a peer that sends beyond its credit gets the stream aborted).
 */
export class StreamEndpoint {
  readonly id: number;
  handlers: StreamHandlers = {};
  /** Credit the peer granted us (bytes we may still send). */
  private credit = 0;
  /** Bytes we granted the peer and have not yet received. */
  private granted = 0;
  /** Bytes received and consumed but not yet granted back. */
  private ungranted = 0;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private started: boolean;
  private closed = false;
  private ending: string | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly window: number;
  private readonly maxQueued: number;
  private readonly coalesceMs: number;
  private readonly opts: StreamEndpointOptions;
  /** Totals, for tests and metrics. */
  bytesIn = 0;
  bytesOut = 0;

  constructor(opts: StreamEndpointOptions, handlers: StreamHandlers = {}) {
    this.opts = opts;
    this.id = opts.id;
    this.handlers = handlers;
    this.window = opts.window ?? STREAM_WINDOW;
    this.maxQueued = opts.maxQueued ?? STREAM_MAX_QUEUED;
    this.coalesceMs = opts.coalesceMs ?? 2;
    this.started = !opts.opener;
    if (!opts.opener) this.grant(this.window);
  }

  get isClosed(): boolean {
    return this.closed;
  }
  /** Bytes waiting locally for credit. */
  get queued(): number {
    return this.queuedBytes;
  }
  /** Bytes received but not yet granted back (what this side buffers for its consumer). */
  get unconsumed(): number {
    return this.ungranted;
  }
  get availableCredit(): number {
    return this.credit;
  }

  /**
   * Queues bytes for the peer; returns false when the local queue is above the high-water mark
   * (stop producing until `onDrain`). Throws nothing; beyond the hard bound the stream aborts.
   */
  write(data: Uint8Array): boolean {
    if (this.closed || this.ending !== undefined) return false;
    if (data.length === 0) return this.queuedBytes < STREAM_HIGH_WATER;
    this.queue.push(data);
    this.queuedBytes += data.length;
    if (this.queuedBytes > this.maxQueued) {
      this.abort('send queue bound exceeded');
      return false;
    }
    this.scheduleFlush();
    return this.queuedBytes < STREAM_HIGH_WATER;
  }

  /**
   * Graceful close: queued data goes out first, then the close frame. With `timeoutMs`, a peer
   * that does not grant the credit for it in time gets a plain close instead.
   */
  end(reason = 'done', timeoutMs?: number): void {
    if (this.closed || this.ending !== undefined) return;
    this.ending = reason;
    this.flush();
    if (timeoutMs !== undefined && !this.closed) {
      const timer = setTimeout(() => this.close(reason), timeoutMs);
      (timer as { unref?: () => void }).unref?.();
    }
  }

  /** Immediate close; queued data is dropped. */
  close(reason = 'closed'): void {
    this.finish('close', reason, false, false);
  }

  abort(reason: string): void {
    this.finish('abort', reason, true, false);
  }

  /** Tells the peer we consumed `n` bytes (manual credit mode). */
  consumed(n: number): void {
    if (this.closed) return;
    this.ungranted = Math.max(0, this.ungranted - n);
    this.pendingGrant += n;
    if (this.pendingGrant >= this.window / 4 || this.granted === 0) {
      const g = this.pendingGrant;
      this.pendingGrant = 0;
      this.grant(g);
    }
  }
  private pendingGrant = 0;

  /** Called by the connection for every frame addressed to this stream. */
  handleFrame(frame: StreamFrame): void {
    if (this.closed) return;
    if (!this.started) {
      this.started = true;
      this.grant(this.window);
    }
    switch (frame.kind) {
      case 'data': {
        const n = frame.payload.length;
        if (n > this.granted) {
          this.abort('credit exceeded');
          return;
        }
        this.granted -= n;
        this.bytesIn += n;
        this.ungranted += n;
        this.handlers.onData?.(frame.payload);
        if (!this.opts.manualCredit) this.consumed(n);
        return;
      }
      case 'credit': {
        const n = new DataView(frame.payload.buffer, frame.payload.byteOffset, 4).getUint32(0);
        this.credit += n;
        this.flush();
        return;
      }
      case 'close':
        this.finish(null, dec.decode(frame.payload), false, true);
        return;
      case 'abort':
        this.finish(null, dec.decode(frame.payload), true, true);
        return;
    }
  }

  /** The transport went away: no frame can be sent any more. */
  dropped(reason: string): void {
    this.finish(null, reason, true, false);
  }

  private grant(n: number): void {
    if (n <= 0 || this.closed) return;
    this.granted += n;
    this.opts.send(encodeStreamFrame(this.id, 'credit', creditPayload(n)));
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.credit === 0 || !this.started) return;
    if (this.queuedBytes >= STREAM_MAX_CHUNK) {
      this.flush();
      return;
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.coalesceMs);
  }

  private flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.closed || !this.started) return;
    const wasHigh = this.queuedBytes >= STREAM_HIGH_WATER;
    while (this.queuedBytes > 0 && this.credit > 0) {
      const size = Math.min(this.credit, STREAM_MAX_CHUNK, this.queuedBytes);
      const chunk = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const head = this.queue[0] as Uint8Array;
        const take = Math.min(head.length, size - filled);
        chunk.set(head.subarray(0, take), filled);
        filled += take;
        if (take === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(take);
      }
      this.queuedBytes -= size;
      this.credit -= size;
      this.bytesOut += size;
      this.opts.send(encodeStreamFrame(this.id, 'data', chunk));
    }
    if (this.queuedBytes === 0 && this.ending !== undefined) {
      this.finish('close', this.ending, false, false);
      return;
    }
    if (this.queuedBytes < STREAM_HIGH_WATER && (wasHigh || this.credit > 0)) this.handlers.onDrain?.();
  }

  private finish(send: 'close' | 'abort' | null, reason: string, aborted: boolean, byPeer: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (send) this.opts.send(encodeStreamFrame(this.id, send, reasonPayload(reason)));
    this.opts.onFinish?.();
    this.handlers.onClose?.({ reason, aborted, byPeer });
  }
}
