import type { Scope } from '@hive/protocol';
import type { AuditQuery } from '../features/audit/audit-service.js';

/** A job as the tools see it (the commands service's JobView, or its REST rendering). */
export interface McpJob {
  id: string;
  satellite_id: string;
  command: string;
  state: string;
  approval_id: string | null;
  finished_at: string | null;
  result: unknown;
  error: { code: string; message: string } | null;
  [k: string]: unknown;
}

export interface McpBatch {
  batch_id: string;
  command: string;
  results: { satellite_id: string; slug: string; job_id: string | null; state: string; result: unknown; error: { code: string; message: string } | null }[];
  summary: Record<string, number>;
}

/** A terminal session as the tools see it (the sessions service's SessionView, or its REST rendering). */
export interface McpSession {
  id: string;
  satellite_id: string;
  satellite_slug: string;
  kind: string;
  status: string;
  command: string | null;
  approval_id: string | null;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  exit_code: number | null;
  recording: string | null;
  recording_deleted_at: string | null;
  [k: string]: unknown;
}

export interface McpRunResult {
  session: McpSession;
  output: string | null;
  output_truncated: boolean;
  exit_code: number | null;
  pending_approval?: { approval_id: string; session_id: string; reason: string; expires_at: string } | undefined;
}

export interface ExecInput {
  command: string;
  params: Record<string, unknown>;
  timeout_ms?: number | undefined;
}

export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out';
export type ChatMode = 'smart' | 'local' | 'cloud';

/** One audited MCP call: a tool, a resource read or a prompt. */
export interface McpCallRecord {
  kind: 'tool' | 'resource' | 'prompt';
  name: string;
  result: 'success' | 'failure';
  error?: { code: string; message: string } | undefined;
  /** Arguments, redacted by the audit service before storing. */
  args?: Record<string, unknown> | undefined;
}

/**
 * What the MCP tools need from the hub. Two implementations: over the services in the hub
 * process (Streamable HTTP at /mcp) and over the REST API (`hive mcp`, stdio). Exec calls are
 * always asynchronous; the tools wait for the outcome themselves.
 */
export interface HiveExecutor {
  /** Which transport calls are audited under. */
  readonly transport: 'http' | 'stdio';
  listSatellites(q: { status?: 'online' | 'offline' | undefined; tag?: string | undefined; q?: string | undefined; page: number; per_page: number }): Promise<{
    items: unknown[];
    total: number;
  }>;
  getSatellite(ref: string): Promise<unknown>;
  metrics(ref: string, limit: number): Promise<unknown>;
  exec(satellite: string, req: ExecInput): Promise<McpJob>;
  execByTag(tag: string, req: ExecInput & { concurrency?: number | undefined }): Promise<McpBatch>;
  getJob(id: string): Promise<McpJob>;
  listJobs(q: { satellite?: string | undefined; state?: string | undefined; page: number; per_page: number }): Promise<{ items: McpJob[]; total: number }>;
  listApprovals(status?: 'pending' | 'approved' | 'denied' | 'expired'): Promise<unknown[]>;
  resolveApproval(id: string, decision: 'approve' | 'deny', reason?: string): Promise<unknown>;
  queryAudit(q: Omit<AuditQuery, 'scope'>): Promise<{ items: unknown[]; total: number }>;
  listPairing(status?: 'pending' | 'approved' | 'rejected' | 'expired'): Promise<unknown[]>;
  resolvePairing(id: string, decision: 'approve' | 'reject'): Promise<unknown>;
  vaultStatus(): Promise<unknown>;
  vaultListKeys(): Promise<unknown[]>;
  createTask(input: { agent_type: string; description: string; timeout_ms?: number | undefined; target_satellite?: string | undefined }): Promise<unknown>;
  getTask(id: string): Promise<unknown>;
  taskOutput(id: string, since: number, limit: number): Promise<unknown>;
  listTasks(q: { mine?: boolean | undefined; status?: TaskStatus | undefined; agent_type?: string | undefined; page: number; per_page: number }): Promise<{
    items: unknown[];
    total: number;
  }>;
  cancelTask(id: string): Promise<unknown>;
  chat(req: {
    messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
    model?: string | undefined;
    mode: ChatMode;
    max_tokens?: number | undefined;
    temperature?: number | undefined;
  }): Promise<unknown>;
  listSessions(q: {
    satellite?: string | undefined;
    state: 'live' | 'ended' | 'all';
    page: number;
    per_page: number;
  }): Promise<{ items: McpSession[]; total: number }>;
  getSession(id: string): Promise<McpSession>;
  /** A session with its collected output and exit code (runs). */
  sessionResult(id: string): Promise<McpRunResult>;
  /** The recording replayed as plain text, bounded. */
  sessionRecordingText(id: string, q: { max_bytes: number; from: 'start' | 'end' }): Promise<{ text: string; truncated: boolean; events: number }>;
  closeSession(id: string): Promise<McpSession>;
  /** Runs a command in a PTY (approval policy applies); waits up to wait_seconds for the outcome. */
  runSession(req: {
    satellite: string;
    command: string | string[];
    timeout_ms?: number | undefined;
    max_bytes?: number | undefined;
    wait_seconds: number;
  }): Promise<McpRunResult>;
  /** Records one MCP call in the audit trail (actor type `mcp`). Never throws. */
  audit(rec: McpCallRecord): Promise<void>;
}

/** The caller's identity as the MCP surface needs it. */
export interface McpCaller {
  id: string;
  name: string;
  scopes: ReadonlySet<Scope> | readonly Scope[];
  /** Client credentials may narrow the tools further (seed 000 §4 `allowed_tools`). */
  allowedTools?: readonly string[] | undefined;
}
