import type { AiTables } from './schema-ai.js';

/** Timestamps are ISO-8601 UTC strings with milliseconds (sortable as text on both drivers). */
export interface SatellitesTable {
  id: string;
  slug: string;
  name: string;
  hostname: string | null;
  os: string | null;
  os_release: string | null;
  arch: string | null;
  agent_version: string | null;
  project: string;
  status: 'online' | 'offline';
  /** JSON array of node commands the satellite claimed at its last connect. */
  commands: string;
  /** JSON array of claimed commands an operator (or the pairing approval) accepted. */
  approved_commands: string;
  /** JSON: the node's effective local policy as reported at connect. */
  policy: string;
  remote_ip: string | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
  /** Hub instance holding the live connection (scale-out); null when never connected. */
  instance_id?: string | null;
}

export interface SatelliteTagsTable {
  satellite_id: string;
  tag: string;
}

export interface DevicesTable {
  device_id: string;
  public_key: string;
  created_at: string;
}

export interface DeviceTokensTable {
  id: string;
  device_id: string;
  role: 'node' | 'operator';
  token_hash: string;
  /** JSON array */
  scopes: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface PairingRequestsTable {
  id: string;
  device_id: string;
  public_key: string;
  role: 'node' | 'operator';
  /** JSON array */
  scopes: string;
  /** JSON: name, version, platform, arch, hostname, displayName */
  client: string;
  /** JSON array of requested tags */
  tags: string;
  remote_ip: string | null;
  status: 'pending' | 'approved' | 'rejected' | 'expired';
  auto: number;
  /** 1 once the approved device has been handed its token (a token is shown once). */
  token_issued: number;
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  key_hash: string;
  /** JSON array */
  scopes: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  last_used_ip: string | null;
}

export type JobState = 'queued' | 'pending_approval' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'denied' | 'cancelled';

export interface JobsTable {
  id: string;
  correlation_id: string;
  satellite_id: string;
  command: string;
  /** JSON, secrets redacted */
  params: string;
  /** JSON, exact params to send; only while the job waits (queued / pending approval). */
  payload: string | null;
  state: JobState;
  actor_type: string;
  actor_id: string;
  actor_name: string;
  source_ip: string | null;
  timeout_ms: number;
  /** api | schedule | auto_fix | queue */
  source: string;
  batch_id: string | null;
  approval_id: string | null;
  /** Queued for an offline satellite until this time. */
  queue_until: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  /** JSON result data (null until final) */
  result: string | null;
  error_code: string | null;
  /** Hub instance that dispatched the job (scale-out: survivors end the jobs of a dead one). */
  instance_id?: string | null;
  error_message: string | null;
}

export interface AuditLogsTable {
  id: string;
  ts: string;
  actor_type: string;
  actor_id: string;
  actor_name: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON, secrets redacted */
  details: string;
  result: 'success' | 'failure';
  error: string | null;
  source_ip: string | null;
  correlation_id: string | null;
  /**
   * Hash chain (migration 0009; null on entries written before it). One chain per writing process;
   * `seq` counts from 0 within it (PostgreSQL returns bigint as a string); `hash` is SHA-256 hex
   * over the stored fields plus `prev_ts`/`prev_hash` (the previous entry's `ts`/`hash`, null on a
   * chain's first entry). See features/audit/audit-chain.ts.
   */
  chain?: string | null;
  seq?: number | string | null;
  prev_ts?: string | null;
  prev_hash?: string | null;
  hash?: string | null;
}

export interface ApprovalsTable {
  id: string;
  job_id: string;
  satellite_id: string;
  command: string;
  params: string;
  reason: string;
  requested_by: string;
  status: 'pending' | 'approved' | 'denied' | 'expired';
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
  resolution: string | null;
}

export interface GroupsTable {
  id: string;
  name: string;
  description: string;
  members: string;
  tags: string;
  created_at: string;
}

export interface SchedulesTable {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  target: string;
  command: string;
  params: string;
  timeout_ms: number;
  enabled: number;
  next_run_at: string;
  last_run_at: string | null;
  last_batch_id: string | null;
  created_by: string;
  created_at: string;
}

export interface SatelliteStatusTable {
  satellite_id: string;
  ts: string;
  report: string;
}

export interface HubSecretsTable {
  name: string;
  value: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  username: string;
  /** scrypt$<logN>$<r>$<p>$<salt b64>$<hash b64> */
  password_hash: string;
  role: 'admin' | 'operator' | 'viewer';
  must_change_password: number;
  disabled: number;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  /** All tokens descending from one login; reuse of a used token revokes the family. */
  family_id: string;
  token_hash: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  revoked_at: string | null;
}

export interface ClientsTable {
  /** client_id */
  id: string;
  secret_hash: string;
  role: 'admin' | 'cli_agent' | 'desktop' | 'mobile';
  /** JSON array of MCP/tool names this client may use; empty = all its scopes allow */
  allowed_tools: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface ProjectsTable {
  id: string;
  description: string;
  created_at: string;
}

export type ProjectRole = 'admin' | 'member' | 'reviewer';

export interface MembershipsTable {
  /** api_key | user | client */
  principal_type: string;
  principal_id: string;
  project: string;
  role: ProjectRole;
  created_at: string;
}

export interface AiIdentitiesTable {
  id: string;
  name: string;
  nickname: string;
  /** JSON array */
  expertise: string;
  version: string;
  created_at: string;
}

export interface AiTokensTable {
  id: string;
  identity_id: string;
  token_hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export type SessionStatus = 'pending_approval' | 'opening' | 'active' | 'ended';

/** Terminal sessions (migration 0007). Live relay state stays in the hub's memory. */
export interface SessionsTable {
  id: string;
  satellite_id: string;
  satellite_slug: string;
  /** The satellite's project when the session was opened (visibility). */
  project: string;
  kind: 'interactive' | 'run';
  status: SessionStatus;
  /** Display form of the command (argv joined); null = the login shell. */
  command: string | null;
  /** JSON: what was asked for ({argv?|command?, timeout_ms?, max_bytes?}); runs start from it once approved. */
  request: string;
  cols: number;
  rows: number;
  actor_type: string;
  actor_id: string;
  actor_name: string;
  source_ip: string | null;
  approval_id: string | null;
  /** Hub instance relaying the session. */
  hub_id: string | null;
  pid: number | null;
  exit_code: number | null;
  end_reason: string | null;
  /** asciicast v2 file; kept after retention deletes the file (see recording_deleted_at). */
  recording: string | null;
  recording_deleted_at: string | null;
  /** bigint: PostgreSQL returns it as a string. */
  bytes_in: number | string;
  bytes_out: number | string;
  /** kind run: output as plain text, bounded. */
  output: string | null;
  output_truncated: number;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface Database extends AiTables {
  sessions: SessionsTable;
  ai_identities: AiIdentitiesTable;
  ai_tokens: AiTokensTable;
  projects: ProjectsTable;
  memberships: MembershipsTable;
  clients: ClientsTable;
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  hub_secrets: HubSecretsTable;
  approvals: ApprovalsTable;
  groups: GroupsTable;
  schedules: SchedulesTable;
  satellite_status: SatelliteStatusTable;
  satellites: SatellitesTable;
  satellite_tags: SatelliteTagsTable;
  devices: DevicesTable;
  device_tokens: DeviceTokensTable;
  pairing_requests: PairingRequestsTable;
  api_keys: ApiKeysTable;
  jobs: JobsTable;
  audit_logs: AuditLogsTable;
}
