import { z } from 'zod';
import type { Role, Scope } from './frames.js';

/**
 * Methods a client may call on the hub over the WebSocket, with the role and scope each needs.
 * The hub refuses a method whose role or scope the connection lacks (`FORBIDDEN`) and answers
 * methods not in this table with `UNKNOWN_METHOD`.
 */
export interface MethodSpec {
  roles: readonly Role[];
  /** Operator scope needed; null for methods any authenticated connection of the role may call. */
  scope: Scope | null;
  params: z.ZodType;
  description: string;
}

const SatelliteRef = z.string().trim().min(1).max(128);

export const SatellitesListParams = z
  .object({
    status: z.enum(['online', 'offline']).optional(),
    tag: z.string().trim().min(1).max(64).optional(),
    q: z.string().trim().max(128).optional(),
    page: z.number().int().min(1).max(1_000_000).default(1),
    per_page: z.number().int().min(1).max(500).default(50),
  })
  .strict();

export const ExecParams = z
  .object({
    satellite: SatelliteRef,
    command: z.string().trim().min(1).max(128),
    params: z.record(z.string(), z.unknown()).default({}),
    timeout_ms: z.number().int().min(100).max(3_600_000).optional(),
  })
  .strict();

export const PairingResolveParams = z.object({ id: z.string().trim().min(1).max(64) }).strict();

export const AuditQueryParams = z
  .object({
    action: z.string().trim().max(128).optional(),
    actor_id: z.string().trim().max(128).optional(),
    target_id: z.string().trim().max(128).optional(),
    correlation_id: z.string().trim().max(64).optional(),
    result: z.enum(['success', 'failure']).optional(),
    since: z.string().datetime().optional(),
    until: z.string().datetime().optional(),
    page: z.number().int().min(1).default(1),
    per_page: z.number().int().min(1).max(500).default(50),
  })
  .strict();

const Empty = z.object({}).strict().optional();

export const SessionId = z.string().trim().min(1).max(64);
/** `stream`: output as binary stream frames (fast path); `events`: `session:output` events with base64. */
export const SessionAttachMode = z.enum(['stream', 'events']);
export const SessionOpenParams = z
  .object({
    satellite: SatelliteRef,
    cols: z.number().int().min(1).max(1000).default(80),
    rows: z.number().int().min(1).max(1000).default(24),
    /** A command line run by the satellite's shell, or an argv; default: the login shell. */
    command: z.union([z.string().trim().min(1).max(4096), z.array(z.string().max(4096)).min(1).max(256)]).optional(),
    /** Attach this connection right away (default `stream`). */
    attach: SessionAttachMode.optional(),
  })
  .strict();
export const SessionAttachParams = z.object({ session_id: SessionId, mode: SessionAttachMode.default('stream') }).strict();
export const SessionInputParams = z.object({ session_id: SessionId, input: z.string().max(1024 * 1024) }).strict();
export const SessionResizeParams = z
  .object({ session_id: SessionId, cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })
  .strict();

export const METHODS = {
  ping: { roles: ['node', 'operator'], scope: null, params: Empty, description: 'Liveness check; returns the hub time' },
  'satellites.list': {
    roles: ['operator'],
    scope: 'operator.read',
    params: SatellitesListParams,
    description: 'List satellites with filters and pagination',
  },
  'satellites.get': {
    roles: ['operator'],
    scope: 'operator.read',
    params: z.object({ satellite: SatelliteRef }).strict(),
    description: 'One satellite by id, slug or unique name',
  },
  exec: { roles: ['operator'], scope: 'operator.write', params: ExecParams, description: 'Run a node command on a satellite' },
  'pairing.list': {
    roles: ['operator'],
    scope: 'operator.pairing',
    params: z
      .object({ status: z.enum(['pending', 'approved', 'rejected', 'expired']).optional() })
      .strict()
      .optional(),
    description: 'List pairing requests',
  },
  'pairing.approve': { roles: ['operator'], scope: 'operator.pairing', params: PairingResolveParams, description: 'Approve a pairing request' },
  'pairing.reject': { roles: ['operator'], scope: 'operator.pairing', params: PairingResolveParams, description: 'Reject a pairing request' },
  'audit.query': { roles: ['operator'], scope: 'operator.admin', params: AuditQueryParams, description: 'Query the audit log' },
  'node.status': {
    roles: ['node'],
    scope: null,
    params: z.record(z.string(), z.unknown()),
    description: 'Status report from a node (every 30 s): health, system, services, containers, sessions',
  },
  'approvals.list': {
    roles: ['operator'],
    scope: 'operator.approvals',
    params: z
      .object({ status: z.enum(['pending', 'approved', 'denied', 'expired']).optional() })
      .strict()
      .optional(),
    description: 'List approval requests',
  },
  'approval.resolve': {
    roles: ['operator'],
    scope: 'operator.approvals',
    params: z.object({ id: z.string().trim().min(1).max(64), decision: z.enum(['approve', 'deny']), reason: z.string().trim().max(500).optional() }).strict(),
    description: 'Approve or deny a pending approval; the first decision wins',
  },
  'jobs.get': {
    roles: ['operator'],
    scope: 'operator.read',
    params: z.object({ id: z.string().trim().min(1).max(64) }).strict(),
    description: 'One job by id or correlation id',
  },
  'jobs.cancel': {
    roles: ['operator'],
    scope: 'operator.write',
    params: z.object({ id: z.string().trim().min(1).max(64) }).strict(),
    description: 'Cancel a queued, pending or running job',
  },
  'session.open': {
    roles: ['operator'],
    scope: 'operator.write',
    params: SessionOpenParams,
    description: 'Open a terminal session (PTY) on a satellite; attaches this connection (stream id or events)',
  },
  'session.attach': {
    roles: ['operator'],
    scope: 'operator.write',
    params: SessionAttachParams,
    description: 'Attach this connection to a running session (binary stream or session:output events)',
  },
  'session:input': {
    roles: ['operator'],
    scope: 'operator.write',
    params: SessionInputParams,
    description: 'Send input (base64) to a session (seed 003 §6.1)',
  },
  'session:resize': {
    roles: ['operator'],
    scope: 'operator.write',
    params: SessionResizeParams,
    description: 'Resize a session terminal (seed 003 §6.1)',
  },
  'session.close': {
    roles: ['operator'],
    scope: 'operator.write',
    params: z.object({ session_id: SessionId }).strict(),
    description: 'Terminate a session',
  },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export function isMethod(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

/** Events the hub sends to operator connections. */
export const EVENTS = {
  'connect.challenge': 'First frame on every connection: nonce to sign',
  'pairing.pending': 'To a waiting device: its pairing request id',
  'satellite:online': 'A satellite connected',
  'satellite:offline': 'A satellite disconnected or missed 3 heartbeats',
  'satellite:updated': 'Name, tags or other fields changed',
  'satellite:removed': 'A satellite was deleted',
  'pairing:requested': 'A device asks to pair (operators with operator.pairing)',
  'pairing:resolved': 'A pairing request was approved, rejected or expired',
  'job:updated': 'A command job changed state',
  'task:output': 'Progress / output of an AI task (task spawner)',
  'task:status': 'An AI task changed state',
  'job:output': 'Partial output of a running job (relayed from the node)',
  'invoke.output': 'Node → hub: partial output of a running invoke {correlationId, stream, data}',
  'approval.requested': 'A command waits for approval (operators with operator.approvals)',
  'approval.resolved': 'An approval was approved, denied or expired',
  'satellite:metrics': 'A node sent a status report',
  'satellite:claims': 'A node claims commands that need operator approval',
  shutdown: 'The hub is going down; reconnect with backoff',
  'session:output': 'Output of a terminal session {session_id, output (base64)} to connections attached in events mode',
  'session:ended': 'A terminal session ended {session_id, reason, exit_code, recording}',
  'session:pending_approval': 'To the connection opening a session: it waits for approval {approval_id, reason, expires_at, satellite}',
} as const;

export type EventName = keyof typeof EVENTS;
