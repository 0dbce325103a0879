import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * Read-only diagnostics allowed out of the box. Entries are argv prefixes: `systemctl status`
 * allows `systemctl status nginx` but not `systemctl stop nginx`.
 */
export const DEFAULT_ALLOW = [
  'echo',
  'uname',
  'hostname',
  'uptime',
  'date',
  'id',
  'whoami',
  'df',
  'free',
  'ps',
  'ls',
  'ip addr',
  'ss -tuln',
  'systemctl status',
  'journalctl',
];

export const AgentConfigSchema = z
  .object({
    system_run: z
      .object({
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
      .default({ enabled: true, allow: DEFAULT_ALLOW, max_output_bytes: 256 * 1024, default_timeout_ms: 30_000, max_timeout_ms: 600_000 }),
  })
  .strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export function loadAgentConfig(file: string | undefined): AgentConfig {
  if (!file || !existsSync(file)) {
    if (file && process.env.HIVE_AGENT_CONFIG === file) throw new Error(`Agent config ${file} not found`);
    return AgentConfigSchema.parse({});
  }
  const parsed = AgentConfigSchema.safeParse(parseYaml(readFileSync(file, 'utf8')) ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`Agent config ${file}: ${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}`);
  }
  return parsed.data;
}
