import { existsSync } from 'node:fs';
import type { AgentConfig } from './config.js';
import { DEFAULT_SYSTEM_RUN_ALLOW } from './lib/protocol-lite.js';

/**
 * The agent config without its schema. Most agents run on the defaults (no agent.yaml): they get
 * them from here and never load zod or the YAML parser (SPEC: idle RSS under 50 MB). A config
 * file is parsed and validated by config.ts (AgentConfigSchema), loaded then.
 */

/**
 * Read-only diagnostics allowed out of the box. Entries are argv prefixes: `systemctl status`
 * allows `systemctl status nginx` but not `systemctl stop nginx`.
 */
export const DEFAULT_ALLOW: string[] = [...DEFAULT_SYSTEM_RUN_ALLOW];

/** Seed 000 §7 `ALLOWED_PATHS`, minus a personal home directory. */
export const DEFAULT_ALLOWED_PATHS = ['/tmp', '/var/log'];

/**
 * Seed 000 §7 / §10.4 `BLOCKED_PATHS`, plus the other credential stores and kernel pseudo-files.
 * `~` is the agent user's home. The agent's own state directory and config file, and every
 * declared script, are always blocked on top of these (see policy.ts).
 */
export const DEFAULT_BLOCKED_PATHS = [
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/passwd',
  '/etc/sudoers',
  '/etc/sudoers.d',
  '/root',
  '~/.ssh',
  '/boot',
  '/proc',
  '/sys',
  '/dev',
];

/**
 * `AgentConfigSchema.parse({})`, written out (config.test.ts keeps the two equal, key order
 * included). A new object each call.
 */
export function defaultAgentConfig(): AgentConfig {
  return {
    policy: {
      allow_bash: true,
      allow_file_read: true,
      allow_file_write: false,
      allow_logs: true,
      allow_power: false,
      allow_containers: true,
      allow_tasks: false,
      max_sessions: 16,
      allowed_paths: [...DEFAULT_ALLOWED_PATHS],
      blocked_paths: [...DEFAULT_BLOCKED_PATHS],
      blocked_argv: [],
    },
    system_run: {
      enabled: true,
      allow: [...DEFAULT_ALLOW],
      max_output_bytes: 256 * 1024,
      default_timeout_ms: 30_000,
      max_timeout_ms: 600_000,
    },
    files: { max_read_bytes: 512 * 1024, max_write_bytes: 512 * 1024, max_transfer_bytes: 1024 * 1024 * 1024 },
    logs: { max_file_bytes: 16 * 1024 * 1024, timeout_ms: 15_000 },
    services: { watch: [] },
    containers: { socket: '/var/run/docker.sock', allowed_images: [], max_containers: 50 },
    scripts: {},
    tasks: { allow: ['claude', 'codex', 'gemini', 'opencode'], max_output_bytes: 1024 * 1024 },
    status_interval_seconds: 30,
    trust_on_first_use: true,
  };
}

/**
 * The config for a file that does not exist: the defaults, unless HIVE_AGENT_CONFIG names that
 * file (a config asked for explicitly must be there).
 */
export function configWithoutFile(file: string | undefined): AgentConfig {
  if (file && process.env.HIVE_AGENT_CONFIG === file) throw new Error(`Agent config ${file} not found`);
  return defaultAgentConfig();
}

/** `loadAgentConfig`, loading the schema (zod) and the YAML parser only when there is a file. */
export async function readAgentConfig(file: string | undefined): Promise<AgentConfig> {
  if (!file || !existsSync(file)) return configWithoutFile(file);
  const { loadAgentConfig } = await import('./config.js');
  return loadAgentConfig(file);
}
