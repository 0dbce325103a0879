import { z } from 'zod';

/**
 * Node command catalog. Each command has a params schema validated by the hub before routing
 * and again by the node before running (defense in depth), and a result schema.
 */

export const SystemInfoParams = z.object({}).strict();
export const SystemInfoResult = z.object({
  hostname: z.string(),
  platform: z.string(),
  release: z.string(),
  arch: z.string(),
  uptimeSeconds: z.number(),
  cpus: z.number().int(),
  cpuModel: z.string(),
  loadAverage: z.array(z.number()),
  memory: z.object({ totalBytes: z.number(), freeBytes: z.number() }),
  agent: z.object({ version: z.string(), pid: z.number().int(), rssBytes: z.number(), uptimeSeconds: z.number() }),
});

/** argv element: bounded, no NUL byte (execve would reject it anyway). */
const ArgvItem = z
  .string()
  .max(4096)
  .refine((s) => !s.includes('\0'), 'NUL byte not allowed');

export const SystemRunParams = z
  .object({
    /** Program and arguments. Never passed through a shell. */
    argv: z.array(ArgvItem).min(1).max(256),
    cwd: z.string().min(1).max(4096).optional(),
    timeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    /** Optional stdin for the process. */
    stdin: z
      .string()
      .max(1024 * 1024)
      .optional(),
  })
  .strict()
  .refine((p) => (p.argv[0] ?? '').length > 0, { message: 'argv[0] must not be empty', path: ['argv', 0] });

export const SystemRunResult = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number(),
});

export const NODE_COMMANDS = {
  'system.info': { params: SystemInfoParams, result: SystemInfoResult, description: 'OS, CPU, memory and agent facts' },
  'system.run': {
    params: SystemRunParams,
    result: SystemRunResult,
    description: 'Run an allowlisted program with an argv array (no shell), capped output, timeout',
  },
} as const;

export type NodeCommandName = keyof typeof NODE_COMMANDS;
export type SystemInfoResult = z.infer<typeof SystemInfoResult>;
export type SystemRunParams = z.infer<typeof SystemRunParams>;
export type SystemRunResult = z.infer<typeof SystemRunResult>;

export function isNodeCommand(name: string): name is NodeCommandName {
  return Object.hasOwn(NODE_COMMANDS, name);
}
