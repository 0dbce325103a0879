import { DEFAULT_SYSTEM_RUN_ALLOW } from '@hive/protocol';
import { z } from 'zod';

/** Approval policy (seed 001 "Neugestaltung der Genehmigungen"). */
export const ApprovalsConfig = z
  .object({
    /** No decision within this time = denied with reason `timeout`. */
    timeout: z.number().int().min(1000).default(60_000),
    /** Pending approvals one requester may have at once; more are refused with RATE_LIMITED. */
    max_pending_per_requester: z.number().int().min(1).default(20),
    /** Commands that always need a person's approval. */
    require: z.array(z.string().min(1).max(128)).default(['power', 'file.write']),
    /** system.run argv prefixes that run without approval; anything else needs one. */
    system_run_allow: z.array(z.string().min(1).max(512)).default([...DEFAULT_SYSTEM_RUN_ALLOW]),
    /** Overrides, first match wins. `command` may end in `*`; `satellite` is an id, slug or `tag:NAME`. */
    rules: z
      .array(
        z
          .object({
            command: z.string().min(1).max(128),
            satellite: z.string().min(1).max(128).optional(),
            project: z.string().min(1).max(128).optional(),
            require: z.boolean(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

export type ApprovalsConfig = z.infer<typeof ApprovalsConfig>;

export interface PolicyInput {
  command: string;
  params: unknown;
  satellite: { id: string; slug: string; project: string; tags: string[] };
  source: string;
}

const matchCommand = (pattern: string, command: string) => (pattern.endsWith('*') ? command.startsWith(pattern.slice(0, -1)) : pattern === command);

function argvAllowed(argv: readonly string[], allow: readonly string[]): boolean {
  return allow.some((entry) => {
    const prefix = entry.split(/\s+/).filter(Boolean);
    return prefix.length > 0 && prefix.length <= argv.length && prefix.every((t, i) => argv[i] === t);
  });
}

/** Why this command needs approval, or null when it may run right away. */
export function approvalReason(cfg: ApprovalsConfig, input: PolicyInput): string | null {
  if (input.source === 'auto_fix') return 'proposed fix from log analysis';
  // Reboots and shutdowns always need a person, whatever the rules say.
  if (input.command === 'power') return 'power always needs approval';
  for (const rule of cfg.rules) {
    if (!matchCommand(rule.command, input.command)) continue;
    if (rule.project && rule.project !== input.satellite.project) continue;
    if (rule.satellite) {
      const s = rule.satellite;
      const hit = s.startsWith('tag:') ? input.satellite.tags.includes(s.slice(4)) : s === input.satellite.id || s === input.satellite.slug;
      if (!hit) continue;
    }
    return rule.require ? `policy rule for ${rule.command}` : null;
  }
  if (cfg.require.some((p) => matchCommand(p, input.command))) return `${input.command} always needs approval`;
  if (input.command === 'system.run') {
    const argv = (input.params as { argv?: string[] } | null)?.argv ?? [];
    if (!argvAllowed(argv, cfg.system_run_allow)) return 'system.run outside the approval-free allowlist';
  }
  return null;
}
