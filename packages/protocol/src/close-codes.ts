/**
 * WebSocket close codes used by the hub. 1000-1015 are RFC 6455; 4000-4999 are ours.
 * Each carries the recovery a client is expected to take.
 */
export const CLOSE_CODES = {
  NORMAL: { code: 1000, recovery: 'abort' },
  GOING_AWAY: { code: 1001, recovery: 'retry' },
  MESSAGE_TOO_BIG: { code: 1009, recovery: 'retry' },
  /** Hub restarts or shuts down: reconnect (with jitter), possibly to another instance. */
  SERVICE_RESTART: { code: 1012, recovery: 'retry' },
  HANDSHAKE_TIMEOUT: { code: 4001, recovery: 'retry' },
  PROTOCOL_VERSION: { code: 4002, recovery: 'upgrade' },
  AUTH_FAILED: { code: 4003, recovery: 'reauth' },
  PAIRING_REJECTED: { code: 4004, recovery: 'abort' },
  RATE_LIMITED: { code: 4005, recovery: 'retry' },
  /** Another connection of the same device and role took over. Do not reconnect. */
  REPLACED: { code: 4006, recovery: 'abort' },
  /** The device's credentials were revoked or the satellite was deleted. */
  REVOKED: { code: 4007, recovery: 'repair' },
  HEARTBEAT_TIMEOUT: { code: 4008, recovery: 'retry' },
  BAD_FRAME: { code: 4009, recovery: 'retry' },
  PAIRING_TIMEOUT: { code: 4010, recovery: 'retry' },
  /** Credentials no longer valid: drop the stored token and pair again. */
  REPAIR_REQUIRED: { code: 4011, recovery: 'repair' },
} as const;

export type CloseName = keyof typeof CLOSE_CODES;

export function closeNameFor(code: number): CloseName | undefined {
  for (const [name, v] of Object.entries(CLOSE_CODES)) if (v.code === code) return name as CloseName;
  return undefined;
}
