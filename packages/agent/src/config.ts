import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { configWithoutFile, DEFAULT_ALLOW, DEFAULT_ALLOWED_PATHS, DEFAULT_BLOCKED_PATHS } from './config-defaults.js';
import { SCRIPT_NAME_RE, SCRIPT_PARAM_NAME_RE, UNIT_NAME_RE } from './lib/protocol-lite.js';

export { DEFAULT_ALLOW, DEFAULT_ALLOWED_PATHS, DEFAULT_BLOCKED_PATHS } from './config-defaults.js';

/**
 * The agent config schema (agent.yaml). Loaded only when there is a file to validate: the
 * defaults, without a file, come from config-defaults.ts (no zod at start).
 */

const PathEntry = z.string().trim().min(1).max(4096);

const PolicyConfig = z
  .object({
    /** `system.run` on/off (seed 000 `ALLOW_BASH`). */
    allow_bash: z.boolean().default(true),
    allow_file_read: z.boolean().default(true),
    allow_file_write: z.boolean().default(false),
    allow_logs: z.boolean().default(true),
    allow_power: z.boolean().default(false),
    allow_containers: z.boolean().default(true),
    /** Run AI task agents for the hub's task spawner (`task.run`); off unless asked for. */
    allow_tasks: z.boolean().default(false),
    /**
     * Interactive terminal sessions (PTY, `session.open`); the hub's approval policy still applies.
     * Unset: follows `allow_bash` (on by default) — a shell is never allowed where system.run is off,
     * unless this says so explicitly.
     */
    allow_shell: z.boolean().optional(),
    /** Terminal sessions this agent runs at once. */
    max_sessions: z.number().int().min(1).max(256).default(16),
    allowed_paths: z.array(PathEntry).max(256).default(DEFAULT_ALLOWED_PATHS),
    blocked_paths: z.array(PathEntry).max(256).default(DEFAULT_BLOCKED_PATHS),
    /** Extra argv patterns refused anywhere in an argv (token prefixes, e.g. `git push --force`), on top of the built-in rules. */
    blocked_argv: z.array(z.string().trim().min(1).max(512)).max(256).default([]),
  })
  .strict();

const ParamBase = { required: z.boolean().default(false), description: z.string().max(256).optional() };

const ScriptParam = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('string'),
      ...ParamBase,
      /** Anchored automatically (`^...$`). */
      pattern: z
        .string()
        .min(1)
        .max(512)
        .refine((p) => {
          try {
            new RegExp(p);
            return true;
          } catch {
            return false;
          }
        }, 'not a valid regular expression')
        .optional(),
      min_length: z.number().int().min(0).max(4096).default(0),
      max_length: z.number().int().min(1).max(4096).default(256),
      default: z.string().max(4096).optional(),
      /** Never logged or echoed in errors. */
      secret: z.boolean().default(false),
    })
    .strict(),
  z
    .object({ type: z.literal('enum'), ...ParamBase, values: z.array(z.string().min(1).max(256)).min(1).max(64), default: z.string().max(256).optional() })
    .strict(),
  z
    .object({
      type: z.literal('int'),
      ...ParamBase,
      min: z.number().int().optional(),
      max: z.number().int().optional(),
      default: z.number().int().optional(),
    })
    .strict(),
  z.object({ type: z.literal('bool'), ...ParamBase, default: z.boolean().optional() }).strict(),
]);
export type ScriptParamDecl = z.infer<typeof ScriptParam>;

const ScriptDecl = z
  .object({
    /** Absolute path of the executable. Run with execFile, never through a shell. */
    path: z
      .string()
      .min(2)
      .max(4096)
      .refine((p) => p.startsWith('/'), 'script path must be absolute'),
    description: z.string().max(256).optional(),
    /** How params reach the script: `--name=value` flags, `HIVE_PARAM_NAME` env vars, or one JSON object on stdin. */
    pass: z.enum(['argv', 'env', 'stdin']).default('argv'),
    timeout_s: z.number().int().min(1).max(3600).default(60),
    max_output_bytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(64 * 1024),
    params: z
      .record(z.string().regex(SCRIPT_PARAM_NAME_RE, 'param names: lowercase letters, digits, _'), ScriptParam)
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 params')
      .default({}),
  })
  .strict();
export type ScriptDecl = z.infer<typeof ScriptDecl>;

export const AgentConfigSchema = z
  .object({
    policy: PolicyConfig.prefault({}),
    system_run: z
      .object({
        /** Kept for older configs; `policy.allow_bash: false` also turns system.run off. */
        enabled: z.boolean().default(true),
        allow: z.array(z.string().trim().min(1).max(512)).max(1000).default(DEFAULT_ALLOW),
        max_output_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(256 * 1024),
        default_timeout_ms: z.number().int().min(100).default(30_000),
        max_timeout_ms: z.number().int().min(100).default(600_000),
      })
      .strict()
      .prefault({}),
    files: z
      .object({
        max_read_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(512 * 1024),
        max_write_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(512 * 1024),
        /** Largest file moved by a streamed transfer (`hive cp`, file.push / file.pull). */
        max_transfer_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024 * 1024)
          .default(1024 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    logs: z
      .object({
        /** Most bytes read from the end of a log file per request. */
        max_file_bytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(256 * 1024 * 1024)
          .default(16 * 1024 * 1024),
        /** Limit for journalctl / dmesg runs. */
        timeout_ms: z.number().int().min(500).max(300_000).default(15_000),
      })
      .strict()
      .prefault({}),
    services: z
      .object({
        /** systemd units reported in status reports and the default of `service.status`. */
        watch: z.array(z.string().regex(UNIT_NAME_RE, 'invalid unit name')).max(64).default([]),
      })
      .strict()
      .prefault({}),
    containers: z
      .object({
        socket: z.string().min(1).max(4096).default('/var/run/docker.sock'),
        /** Image prefixes `container.spawn` accepts (e.g. `nginx:`, `registry.local/`); empty: any image. */
        allowed_images: z.array(z.string().min(1).max(512)).max(256).default([]),
        max_containers: z.number().int().min(1).max(10_000).default(50),
      })
      .strict()
      .prefault({}),
    scripts: z
      .record(z.string().regex(SCRIPT_NAME_RE, 'script names: lowercase letters, digits, _'), ScriptDecl)
      .refine((r) => Object.keys(r).length <= 256, 'at most 256 scripts')
      .default({}),
    tasks: z
      .object({
        /** Programs `task.run` may start (bare names looked up in the safe PATH, or absolute paths). */
        allow: z.array(z.string().trim().min(1).max(4096)).max(64).default(['claude', 'codex', 'gemini', 'opencode']),
        max_output_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(1024 * 1024),
      })
      .strict()
      .prefault({}),
    /** Seconds between `node.status` reports (seed 004: 30). */
    status_interval_seconds: z.number().int().min(5).max(86_400).default(30),
    /** Pin the hub's TLS certificate: `sha256:AB:CD:…` as printed by `hive server fingerprint`. */
    hub_fingerprint: z
      .string()
      .refine(
        (v) => /^(sha-?256[:=]?)?([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(v.trim()),
        'expected sha256:AB:CD:… (32 hex pairs) from `hive server fingerprint`',
      )
      .optional(),
    /** Verify the hub's certificate against this CA (PEM file) instead of pinning it. */
    ca_file: z.string().min(1).max(4096).optional(),
    /** wss:// hub with nothing pinned: keep the certificate seen at the first successful connect (state dir) and require it afterwards. */
    trust_on_first_use: z.boolean().default(true),
  })
  .strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;

export function parseAgentConfig(raw: unknown, source = 'agent config'): AgentConfig {
  const parsed = AgentConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`${source}: ${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}`);
  }
  return parsed.data;
}

export function loadAgentConfig(file: string | undefined): AgentConfig {
  if (!file || !existsSync(file)) return configWithoutFile(file);
  // The YAML parser is loaded only when there is a file to parse (most agents run on defaults).
  const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return parseAgentConfig(parse(readFileSync(file, 'utf8')), `Agent config ${file}`);
}
