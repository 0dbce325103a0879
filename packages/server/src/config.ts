import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_LIMITS } from '@hive/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ChatConfig, TasksConfig, VaultConfig } from './config-ai.js';
import { ApprovalsConfig } from './features/approvals/approval-policy.js';

/** Milliseconds, or a string like `90s`, `15m`, `30d` (a bare number string is milliseconds). */
const Duration = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)?$/, 'expected a duration like 500ms, 90s, 15m, 24h, 30d')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v) as RegExpExecArray;
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
    return Number(m[1]) * unit;
  });

/** true/false, also as the strings env vars carry (`true`, `false`, `1`, `0`, `yes`, `no`, `on`, `off`). */
const Bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes' || v === 'on');

/**
 * `tls` (seed 003 §4; SPEC C8). Unset `enabled` means on unless the hub binds a loopback address.
 * Without `cert_file`/`key_file` the hub creates a self-signed certificate under
 * `<data_dir>/tls/` on first start and reuses it; with them it uses those files (creating them
 * only when `auto_generate` is true and both are missing).
 */
const TlsConfig = z
  .object({
    enabled: Bool.optional(),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    auto_generate: Bool.default(false),
    /** Extra subject alternative names (DNS names or IP addresses) for a generated certificate. */
    san: z
      .union([
        z.array(z.string().trim().min(1).max(253)),
        z.string().transform((v) =>
          v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        ),
      ])
      .default([]),
    /** Key of a generated certificate: ECDSA P-256 (default) or RSA 2048. */
    key_type: z.enum(['ec', 'rsa']).default('ec'),
    /** Lifetime of a generated certificate, in days. */
    valid_days: z.coerce.number().int().min(1).max(36_500).default(3650),
  })
  .strict()
  .refine((t) => !!t.cert_file === !!t.key_file, { message: 'cert_file and key_file go together: give both or neither', path: ['key_file'] });

/** server.yaml (seed 003 §4). Unknown keys are errors, so typos do not pass silently. */
export const ConfigSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(7420),
        external_url: z.string().url().optional(),
        data_dir: z.string().default('./data'),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 7420, data_dir: './data' }),
    tls: TlsConfig.prefault({}),
    database: z
      .object({
        driver: z.enum(['sqlite', 'postgres']).default('sqlite'),
        connection: z.string().optional(),
        max_connections: z.coerce.number().int().min(1).max(500).default(20),
        min_connections: z.coerce.number().int().min(0).default(0),
        schema: z.string().optional(),
      })
      .strict()
      .default({ driver: 'sqlite', max_connections: 20, min_connections: 0 }),
    auth: z
      .object({
        admin_api_key: z.string().optional(),
        jwt_secret: z.string().optional(),
        /** Lifetime of a user's access token (JWT). */
        jwt_expiration: Duration.default(15 * 60_000),
        /** Lifetime of a refresh token (rotated on every use). */
        refresh_expiration: Duration.default(30 * 86_400_000),
        /** scrypt cost for user passwords: N = 2^this (OWASP floor 17). */
        password_kdf_log_n: z.coerce.number().int().min(10).max(20).default(17),
        login_max_failures: z.coerce.number().int().min(1).default(5),
        login_failure_window: Duration.default(5 * 60_000),
      })
      .strict()
      .prefault({}),
    agents: z
      .object({
        heartbeat_interval: Duration.default(30_000),
        /** A node silent this long is offline (seed 003 §4); default 3 × heartbeat_interval. */
        heartbeat_timeout: Duration.optional(),
        max_sessions_per_agent: z.coerce.number().int().min(1).default(10),
        /** Device token lifetime; 0 = never expires. */
        token_expiration: Duration.default(0),
      })
      .strict()
      .default({ heartbeat_interval: 30_000, max_sessions_per_agent: 10, token_expiration: 0 }),
    pairing: z
      .object({
        auto_approve_loopback: z.boolean().default(true),
        request_ttl: Duration.default(DEFAULT_LIMITS.pairingWaitMs),
        max_pending_per_ip: z.coerce.number().int().min(1).default(20),
        max_pending_total: z.coerce.number().int().min(1).default(1000),
      })
      .strict()
      .default({ auto_approve_loopback: true, request_ttl: DEFAULT_LIMITS.pairingWaitMs, max_pending_per_ip: 20, max_pending_total: 1000 }),
    limits: z
      .object({
        max_frame_bytes: z.coerce.number().int().min(1024).default(DEFAULT_LIMITS.maxFrameBytes),
        handshake_timeout: Duration.default(DEFAULT_LIMITS.handshakeTimeoutMs),
        max_inflight: z.coerce.number().int().min(1).default(DEFAULT_LIMITS.maxInflight),
        messages_per_second: z.coerce.number().int().min(1).default(DEFAULT_LIMITS.messagesPerSecond),
        message_burst: z.coerce.number().int().min(1).default(DEFAULT_LIMITS.messageBurst),
        max_violations: z.coerce.number().int().min(0).default(DEFAULT_LIMITS.maxViolations),
        /** REST requests per minute per credential (API key or user); 0 = unlimited. */
        api_requests_per_minute: z.coerce.number().int().min(0).default(120_000),
      })
      .strict()
      .default({
        max_frame_bytes: DEFAULT_LIMITS.maxFrameBytes,
        handshake_timeout: DEFAULT_LIMITS.handshakeTimeoutMs,
        max_inflight: DEFAULT_LIMITS.maxInflight,
        messages_per_second: DEFAULT_LIMITS.messagesPerSecond,
        message_burst: DEFAULT_LIMITS.messageBurst,
        max_violations: DEFAULT_LIMITS.maxViolations,
        api_requests_per_minute: 120_000,
      }),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        format: z.enum(['json', 'text']).default('json'),
        file: z.string().optional(),
      })
      .strict()
      .default({ level: 'info', format: 'json' }),
    approvals: z
      .object({
        timeout: Duration.default(60_000),
        max_pending_per_requester: ApprovalsConfig.shape.max_pending_per_requester,
        require: ApprovalsConfig.shape.require,
        system_run_allow: ApprovalsConfig.shape.system_run_allow,
        rules: ApprovalsConfig.shape.rules,
      })
      .strict()
      .default(ApprovalsConfig.parse({})),
    commands: z
      .object({ fanout_concurrency: z.coerce.number().int().min(1).max(100_000).default(10_000) })
      .strict()
      .default({ fanout_concurrency: 10_000 }),
    /** Scale-out (seed 003 §10): instances sharing PostgreSQL meet on Redis. Absent = one process. */
    cluster: z
      .object({
        /** redis://[user:password@]host:port[/db]; enables the Redis bus. */
        redis_url: z
          .string()
          .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://…')
          .optional(),
        /** Name of this instance (default: hostname + random suffix per start). */
        instance_id: z
          .string()
          .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _.:- only')
          .optional(),
        /** An instance silent this long is dead: its satellites and jobs are released. */
        presence_ttl: Duration.default(15_000),
        /** Key and channel prefix (several hubs may share one Redis). */
        key_prefix: z
          .string()
          .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _.:- only')
          .default('hive'),
      })
      .strict()
      .default({ presence_ttl: 15_000, key_prefix: 'hive' }),
    /** Agent provisioning (seed 003 §4, SPEC C8): where agent builds per platform are found. */
    provisioning: z
      .object({
        binary_templates_path: z.string().min(1).default('./binaries'),
        platforms: z
          .array(
            z
              .object({
                os: z.enum(['linux', 'darwin', 'windows', 'freebsd']),
                arch: z.enum(['amd64', 'arm64', 'arm', '386']),
                binary: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'a file name, no path'),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .default({ binary_templates_path: './binaries', platforms: [] }),
    /** MCP (seed 003 §4): `http` serves Streamable HTTP at /mcp; `stdio` only what `hive mcp` needs. */
    mcp: z
      .object({
        enabled: z.boolean().default(true),
        transport: z.enum(['http', 'stdio', 'both']).default('both'),
      })
      .strict()
      .default({ enabled: true, transport: 'both' }),
    vault: VaultConfig,
    tasks: TasksConfig,
    chat: ChatConfig,
    sessions: z
      .object({
        /** A session without input or output for this long is ended (`idle_timeout`). */
        idle_timeout: Duration.default(30 * 60_000),
        /** Record sessions as asciicast v2 under <data_dir>/recordings. */
        record: z.boolean().default(true),
        /** Also record what operators type (may contain secrets; off by default). */
        record_input: z.boolean().default(false),
        /** Recordings older than this are deleted by a periodic cleanup. */
        recording_retention_days: z.coerce.number().int().min(1).default(30),
      })
      .strict()
      .default({ idle_timeout: 30 * 60_000, record: true, record_input: false, recording_retention_days: 30 }),
    audit: z
      .object({ enabled: z.boolean().default(true), retention_days: z.coerce.number().int().min(1).default(90) })
      .strict()
      .default({ enabled: true, retention_days: 90 }),
  })
  .strict();

export type HubConfig = z.infer<typeof ConfigSchema>;
export type HubConfigInput = z.input<typeof ConfigSchema>;

/** Replaces `${VAR}` with the environment's value ('' when unset). */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? '');
}

/** 127.0.0.0/8, ::1 and `localhost`: addresses only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function setPath(obj: Record<string, any>, keys: string[], value: unknown): void {
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = cur[k] ??= {};
  cur[keys[keys.length - 1] as string] = value;
}

/** Drops empty strings left by `${UNSET}` so defaults apply. */
function pruneEmpty(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(pruneEmpty);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== '' && x !== null) out[k] = pruneEmpty(x);
    return out;
  }
  return v;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flags win over env, env over the file. */
  overrides?: {
    port?: number | undefined;
    host?: string | undefined;
    dataDir?: string | undefined;
    tls?: boolean | undefined;
    tlsCert?: string | undefined;
    tlsKey?: string | undefined;
  };
}

/** Loads config: defaults < server.yaml < HIVE_* env < flags. Fails naming the bad key. */
export function loadConfig(opts: LoadOptions = {}): HubConfig {
  const env = opts.env ?? process.env;
  let raw: Record<string, any> = {};
  const file = opts.file ?? env.HIVE_CONFIG;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`Config file ${file} not found`);
    try {
      raw = (parseYaml(substituteEnv(readFileSync(file, 'utf8'), env)) as Record<string, any>) ?? {};
    } catch (err) {
      throw new ConfigError(`Config file ${file}: ${(err as Error).message}`);
    }
    raw = pruneEmpty(raw) as Record<string, any>;
  }
  const envMap: [string, string[]][] = [
    ['HIVE_HOST', ['server', 'host']],
    ['HIVE_PORT', ['server', 'port']],
    ['HIVE_DATA_DIR', ['server', 'data_dir']],
    ['HIVE_DB_DRIVER', ['database', 'driver']],
    ['HIVE_DB_CONNECTION', ['database', 'connection']],
    ['ADMIN_API_KEY', ['auth', 'admin_api_key']],
    ['HIVE_LOG_LEVEL', ['logging', 'level']],
    ['HIVE_REDIS_URL', ['cluster', 'redis_url']],
    ['HIVE_INSTANCE_ID', ['cluster', 'instance_id']],
    ['HIVE_TLS', ['tls', 'enabled']],
    ['HIVE_TLS_CERT_FILE', ['tls', 'cert_file']],
    ['HIVE_TLS_KEY_FILE', ['tls', 'key_file']],
    ['HIVE_TLS_SAN', ['tls', 'san']],
  ];
  for (const [name, keys] of envMap) if (env[name]) setPath(raw, keys, env[name]);
  const o = opts.overrides ?? {};
  if (o.host !== undefined) setPath(raw, ['server', 'host'], o.host);
  if (o.port !== undefined) setPath(raw, ['server', 'port'], o.port);
  if (o.dataDir !== undefined) setPath(raw, ['server', 'data_dir'], o.dataDir);
  if (o.tls !== undefined) setPath(raw, ['tls', 'enabled'], o.tls);
  if (o.tlsCert !== undefined) setPath(raw, ['tls', 'cert_file'], o.tlsCert);
  if (o.tlsKey !== undefined) setPath(raw, ['tls', 'key_file'], o.tlsKey);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const key = first ? first.path.join('.') || '(root)' : '(root)';
    const extra = first && first.code === 'unrecognized_keys' ? ` (${(first as { keys: string[] }).keys.join(', ')})` : '';
    throw new ConfigError(`Invalid config at ${key}${extra}: ${first?.message ?? 'invalid'}`);
  }
  const cfg = parsed.data;
  // SPEC C8: TLS on by default outside loopback.
  cfg.tls.enabled ??= !isLoopbackHost(cfg.server.host);
  if (cfg.database.driver === 'sqlite' && !cfg.database.connection) {
    cfg.database.connection = path.join(cfg.server.data_dir, 'hive.db');
  }
  if (cfg.cluster.redis_url && cfg.database.driver !== 'postgres') {
    throw new ConfigError('Invalid config at cluster.redis_url: several instances need a shared database (database.driver: postgres)');
  }
  if (cfg.database.driver === 'postgres' && !cfg.database.connection) {
    throw new ConfigError('Invalid config at database.connection: required when database.driver is postgres');
  }
  return cfg;
}
