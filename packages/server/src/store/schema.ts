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
  remote_ip: string | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
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

export interface JobsTable {
  id: string;
  correlation_id: string;
  satellite_id: string;
  command: string;
  /** JSON, secrets redacted */
  params: string;
  state: 'pending_approval' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'denied' | 'cancelled';
  actor_type: string;
  actor_id: string;
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  /** JSON result data (null until final) */
  result: string | null;
  error_code: string | null;
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
}

export interface Database extends AiTables {
  satellites: SatellitesTable;
  satellite_tags: SatelliteTagsTable;
  devices: DevicesTable;
  device_tokens: DeviceTokensTable;
  pairing_requests: PairingRequestsTable;
  api_keys: ApiKeysTable;
  jobs: JobsTable;
  audit_logs: AuditLogsTable;
}
