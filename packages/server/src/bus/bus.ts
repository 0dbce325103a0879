import { HiveError, type InvokeParams, type StreamEndpoint, type StreamHandlers } from '@hive/protocol';

export interface StreamOpenOptions {
  /** Grant credit only as the relay consumes (backpressure towards the peer). */
  manualCredit?: boolean;
  window?: number;
}

/** The connection side of a satellite: whatever holds its socket implements this. */
export interface NodeLink {
  invoke(params: InvokeParams, timeoutMs: number): Promise<unknown>;
  /** Asks the node to stop a running invoke. */
  cancel(correlationId: string): void;
  /** A hub request to the node other than an invoke (e.g. `token.rotate`); resolves with its answer. */
  request(method: string, params: unknown, timeoutMs: number): Promise<unknown>;
  close(code: number, reason: string): void;
  /** Opens a hub-allocated binary stream on the node's connection (absent where streams are not carried). */
  openStream?(handlers: StreamHandlers, opts?: StreamOpenOptions): StreamEndpoint;
  /**
   * Lends stream id `id` to another instance: frames the node sends on it go to `toOpener`,
   * `onGone` runs once when the stream or the connection ends.
   */
  tunnelStream?(id: number, toOpener: (frame: Uint8Array) => void, onGone: (reason: string) => void): StreamTunnel;
}

export interface HubEvent {
  event: string;
  payload: unknown;
  /** Set when the event was published by another hub instance (scale-out). */
  origin?: string;
}

/**
 * A satellite's stream opened on the connection another instance holds: that instance forwards
 * raw stream frames between its socket and us (`tunnelStream`), the credit flow stays end to end.
 */
export interface StreamTunnel {
  /** Frame from the far end (the stream's opener) to put on the node's socket. */
  send(frame: Uint8Array): void;
  close(): void;
}

/**
 * Between feature services and live connections. Services never touch sockets: they ask the bus
 * to invoke a command on "whoever holds satellite X" and publish events for operators. The local
 * bus serves one process; a Redis bus (scale-out) implements the same interface across instances.
 */
export interface Bus {
  registerNode(satelliteId: string, link: NodeLink): void;
  unregisterNode(satelliteId: string, link: NodeLink): void;
  isNodeConnected(satelliteId: string): boolean;
  invokeNode(satelliteId: string, params: InvokeParams, timeoutMs: number): Promise<unknown>;
  closeNode(satelliteId: string, code: number, reason: string): void;
  cancelNode(satelliteId: string, correlationId: string): void;
  requestNode(satelliteId: string, method: string, params: unknown, timeoutMs: number): Promise<unknown>;
  publish(event: string, payload: unknown): void;
  subscribe(handler: (e: HubEvent) => void): () => void;
  connectedCount(): number;
  /**
   * Opens a binary stream to the node on the connection this process holds. Optional: a bus
   * spanning instances that cannot carry streams leaves it out and sessions report it.
   */
  openNodeStream?(satelliteId: string, handlers: StreamHandlers, opts?: StreamOpenOptions): StreamEndpoint;
  /** This process's hub instance id. */
  readonly instanceId?: string;
  /** Rate-limit counters shared by every instance on this bus (absent: per process). */
  readonly counter?: HitCounter;
  /** True when several instances share this bus (jobs and presence of dead ones are cleaned up). */
  readonly clustered?: boolean;
  /** Null while the bus works; else why not (clustered buses: Redis unreachable). */
  problem?(): string | null;
  /** Instances alive right now (clustered buses only). */
  liveInstances?(): Promise<Set<string>>;
  /** Runs once per dead instance, on exactly one survivor (clustered buses only). */
  onInstanceLost?(handler: (instanceId: string) => Promise<void>): void;
  close?(): Promise<void>;
}

/** Sliding-window hit counters; clustered, shared by all instances (limits that must hold fleet-wide). */
export interface HitCounter {
  /** Hits of `key` within the last `windowMs`. */
  count(key: string, windowMs: number): Promise<number>;
  /** Records one hit of `key`. */
  hit(key: string, windowMs: number): Promise<void>;
}

/** In-process counters (one hub process, or the fallback while Redis is unreachable). */
export function createLocalCounter(): HitCounter {
  const hits = new Map<string, number[]>();
  const live = (key: string, windowMs: number) => {
    const since = Date.now() - windowMs;
    const list = (hits.get(key) ?? []).filter((t) => t > since);
    if (list.length) hits.set(key, list);
    else hits.delete(key);
    return list;
  };
  return {
    count: async (key, windowMs) => live(key, windowMs).length,
    async hit(key, windowMs) {
      hits.set(key, [...live(key, windowMs), Date.now()]);
    },
  };
}

export function createLocalBus(instanceId?: string): Bus {
  const nodes = new Map<string, NodeLink>();
  const subscribers = new Set<(e: HubEvent) => void>();
  return {
    ...(instanceId ? { instanceId } : {}),
    registerNode(id, link) {
      nodes.set(id, link);
    },
    unregisterNode(id, link) {
      if (nodes.get(id) === link) nodes.delete(id);
    },
    isNodeConnected: (id) => nodes.has(id),
    invokeNode(id, params, timeoutMs) {
      const link = nodes.get(id);
      if (!link) return Promise.reject(new HiveError('SATELLITE_OFFLINE', `Satellite ${id} is not connected`));
      return link.invoke(params, timeoutMs);
    },
    closeNode(id, code, reason) {
      nodes.get(id)?.close(code, reason);
    },
    cancelNode(id, correlationId) {
      nodes.get(id)?.cancel(correlationId);
    },
    requestNode(id, method, params, timeoutMs) {
      const link = nodes.get(id);
      if (!link) return Promise.reject(new HiveError('SATELLITE_OFFLINE', `Satellite ${id} is not connected`));
      return link.request(method, params, timeoutMs);
    },
    publish(event, payload) {
      for (const s of subscribers) {
        try {
          s({ event, payload });
        } catch {
          /* a failing subscriber must not stop the others */
        }
      }
    },
    subscribe(handler) {
      subscribers.add(handler);
      return () => subscribers.delete(handler);
    },
    connectedCount: () => nodes.size,
    openNodeStream(id, handlers, opts) {
      const link = nodes.get(id);
      if (!link) throw new HiveError('SATELLITE_OFFLINE', `Satellite ${id} is not connected`);
      if (!link.openStream) throw new HiveError('SERVICE_NOT_RUNNING', 'This connection does not carry streams');
      return link.openStream(handlers, opts);
    },
  };
}
