/** Tables of the vault, tasks and chat features. Timestamps are ISO-8601 UTC strings. */

/** One row (`id = 'main'`): how the data key is wrapped by the key-encryption key. */
export interface VaultMetaTable {
  id: string;
  /** JSON: { alg: 'scrypt', log_n, r, p, salt (base64) } */
  kdf: string;
  /** base64 of iv(12) | tag(16) | AES-256-GCM(KEK, data key) */
  wrapped_key: string;
  created_at: string;
  updated_at: string;
}

export interface VaultEntriesTable {
  provider: string;
  key_id: string;
  /** base64 of iv(12) | tag(16) | AES-256-GCM(data key, value), AAD = provider + key id */
  ciphertext: string;
  /** HMAC of the value under a key derived from the data key: recognisable, not reversible. */
  fingerprint: string;
  created_at: string;
  last_used_at: string | null;
}

export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out';

/** seed 000 §9.4 `tasks`, plus what running them needs. */
export interface TasksTable {
  task_id: string;
  /** Who asked (principal id). */
  client_id: string;
  client_type: string;
  agent_type: string;
  description: string;
  status: TaskStatus;
  target_satellite: string | null;
  timeout_ms: number;
  /** JSON array of `provider/key_id` handed to the task (never values). */
  keys_used: string;
  pid: number | null;
  exit_code: number | null;
  signal: string | null;
  output_bytes: number;
  truncated: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  /** JSON: { text, exit_code, events, usage? } once final. */
  result: string | null;
  error: string | null;
}

/** Masked output, in chunks (appending to one text column would rewrite it each time). */
export interface TaskOutputTable {
  task_id: string;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
  ts: string;
}

export type AiTables = {
  vault_meta: VaultMetaTable;
  vault_entries: VaultEntriesTable;
  tasks: TasksTable;
  task_output: TaskOutputTable;
};
