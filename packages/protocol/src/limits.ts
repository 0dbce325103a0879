/** Default connection limits. The hub announces its effective limits in `hello.limits`. */
export const DEFAULT_LIMITS = {
  /** Largest text or binary frame accepted, in bytes. */
  maxFrameBytes: 1024 * 1024,
  /** Time from socket open to a valid `connect` request. */
  handshakeTimeoutMs: 10_000,
  /** Requests a connection may have in flight at the hub at once. */
  maxInflight: 64,
  /** Sustained inbound messages per second per connection (token bucket refill). */
  messagesPerSecond: 200,
  /** Token bucket size: short bursts above the sustained rate. */
  messageBurst: 400,
  /** Rate-limit violations tolerated before the hub closes the connection. */
  maxViolations: 20,
  /** Interval of hub pings; a peer missing 3 is offline. */
  heartbeatMs: 30_000,
  /** How long a device may wait on its connection for a pairing decision. */
  pairingWaitMs: 10 * 60_000,
} as const;

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };
