/**
 * The closed list of error codes. Every error that crosses the wire (WebSocket frames and the
 * REST envelope) carries one of these codes. `docs/errors.md` documents each; a test keeps the
 * two in sync.
 */
export const ERROR_CODES = {
  // seed 003 §9
  AUTH_REQUIRED: { http: 401, message: 'Authentication required' },
  AUTH_INVALID: { http: 401, message: 'Invalid credentials or token' },
  FORBIDDEN: { http: 403, message: 'Insufficient permissions' },
  NOT_FOUND: { http: 404, message: 'Resource not found' },
  SATELLITE_NOT_FOUND: { http: 404, message: 'Satellite not found' },
  SATELLITE_OFFLINE: { http: 503, message: 'Satellite is not connected' },
  SESSION_LIMIT: { http: 429, message: 'Too many active sessions' },
  COMMAND_TIMEOUT: { http: 504, message: 'Command execution timed out' },
  INTERNAL_ERROR: { http: 500, message: 'Unexpected server error' },
  // seed 004 (node command errors)
  INVALID_PARAMETERS: { http: 400, message: 'Missing or invalid parameters' },
  PERMISSION_DENIED: { http: 403, message: 'Operation not permitted by the satellite' },
  TIMEOUT: { http: 504, message: 'Operation timed out' },
  SERVICE_NOT_RUNNING: { http: 503, message: 'Required service is down' },
  INSUFFICIENT_RESOURCES: { http: 503, message: 'Not enough system resources' },
  USER_NOT_FOUND: { http: 404, message: "User doesn't exist" },
  USER_ALREADY_EXISTS: { http: 409, message: 'User already exists' },
  SESSION_NOT_FOUND: { http: 404, message: "Session doesn't exist" },
  CONTAINER_NOT_FOUND: { http: 404, message: "Container doesn't exist" },
  // protocol (seed 001)
  PROTOCOL_VERSION: { http: 426, message: 'No common protocol version' },
  BAD_FRAME: { http: 400, message: 'Malformed frame' },
  UNKNOWN_METHOD: { http: 404, message: 'Unknown method' },
  UNKNOWN_COMMAND: { http: 400, message: 'Command not supported by the satellite' },
  HANDSHAKE_REQUIRED: { http: 401, message: 'Send connect first' },
  HANDSHAKE_TIMEOUT: { http: 408, message: 'Handshake not completed in time' },
  PAIRING_REQUIRED: { http: 401, message: 'Device is not paired' },
  PAIRING_PENDING: { http: 202, message: 'Pairing request awaits approval' },
  PAIRING_REJECTED: { http: 403, message: 'Pairing request was rejected' },
  RATE_LIMITED: { http: 429, message: 'Too many requests' },
  TOO_MANY_INFLIGHT: { http: 429, message: 'Too many requests in flight on this connection' },
  FRAME_TOO_LARGE: { http: 413, message: 'Frame exceeds the size limit' },
  CONFLICT: { http: 409, message: 'Conflicting state' },
  COMMAND_FAILED: { http: 200, message: 'Command ran and exited non-zero' },
  AMBIGUOUS: { http: 409, message: 'Name matches more than one resource' },
  ALREADY_RESOLVED: { http: 409, message: 'Already resolved' },
  SHUTTING_DOWN: { http: 503, message: 'Hub is shutting down' },
  // vault, tasks, chat (seed 000)
  VAULT_NOT_INITIALIZED: { http: 409, message: 'The key vault is not initialized' },
  VAULT_LOCKED: { http: 423, message: 'The key vault is locked' },
  NO_API_KEY: { http: 424, message: 'No API key stored for the provider' },
  PROVIDER_ERROR: { http: 502, message: 'The AI provider failed or could not be reached' },
  APPROVAL_DENIED: { http: 403, message: 'The command was denied by an approver or its approval timed out' },
  JOB_CANCELLED: { http: 409, message: 'The job was cancelled' },
  CLAIM_NOT_APPROVED: { http: 403, message: 'The satellite claims this command but an operator has not approved the claim' },
  // TLS to the hub (client side; never sent by the hub)
  TLS_FINGERPRINT_MISMATCH: { http: 495, message: "The hub's TLS certificate does not match the pinned fingerprint" },
  TLS_UNTRUSTED: { http: 495, message: "The hub's TLS certificate is not trusted" },
} as const satisfies Record<string, { http: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}

/**
 * What a client should do after an error. Machine-readable so agents act on it instead of
 * looping: `retry` (after retryAfterMs), `repair` (drop the stored token and pair again),
 * `upgrade` (no common protocol version: install a newer build), `reauth` (new credentials
 * needed from a person), `abort` (do not retry this request).
 */
export const RECOVERY_ACTIONS = ['retry', 'repair', 'upgrade', 'reauth', 'abort'] as const;
export type RecoveryAction = (typeof RECOVERY_ACTIONS)[number];

export interface RecoveryHint {
  action: RecoveryAction;
  retryAfterMs?: number;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  hint?: RecoveryHint;
}

/** An error with a stable code, thrown by hub services and rendered on every edge. */
export class HiveError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly hint: RecoveryHint | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, hint?: RecoveryHint) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'HiveError';
    this.code = code;
    this.details = details;
    this.hint = hint;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  toWire(): WireError {
    const out: WireError = { code: this.code, message: this.message };
    if (this.details) out.details = this.details;
    if (this.hint) out.hint = this.hint;
    return out;
  }

  static fromWire(err: WireError): HiveError {
    return new HiveError(err.code, err.message, err.details, err.hint);
  }
}
