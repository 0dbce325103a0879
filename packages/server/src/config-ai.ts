import { z } from 'zod';

/**
 * Config sections of the vault, task spawner and chat router (seed 000). Owned by those
 * features; `config.ts` embeds them. Unknown keys are errors like everywhere else. `prefault`
 * (not `default`) so the inner defaults apply when a section is missing.
 */

/** Milliseconds, or a string like `90s`, `15m`, `6h`. */
const Duration = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)?$/, 'expected a duration like 500ms, 90s, 15m, 24h')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v) as RegExpExecArray;
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
    return Number(m[1]) * unit;
  });

const Name = z.string().regex(/^[a-z][a-z0-9_.-]{0,31}$/, 'lowercase letters, digits, _ . -; at most 32 characters');
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name');

export const VaultConfig = z
  .object({
    /** scrypt cost N = 2^scrypt_log_n (r=8, p=1); 17 is the OWASP minimum. Read at init only. */
    scrypt_log_n: z.number().int().min(15).max(20).default(17),
    /** Wrong passwords (unlock/passwd) allowed per window before RATE_LIMITED. */
    max_unlock_failures: z.number().int().min(1).max(1000).default(5),
    failure_window: Duration.default(60_000),
  })
  .strict()
  .prefault({});

export type VaultConfig = z.infer<typeof VaultConfig>;

/** A key a task type needs: vault provider (+ key id) → one or more environment variables. */
const ProviderNeed = z
  .object({
    provider: Name,
    env: z.union([EnvName, z.array(EnvName).min(1).max(8)]),
    key_id: Name.default('main'),
    /** Inject when present; a missing optional key is not an error. */
    optional: z.boolean().default(false),
  })
  .strict();

export const AgentTypeConfig = z
  .object({
    /** argv template; `{prompt}`, `{task_id}`, `{cwd}` are replaced. Never run through a shell. */
    command: z.array(z.string().min(1).max(4096)).min(1).max(64),
    providers: z.array(ProviderNeed).max(16).default([]),
    /** How stdout is parsed into progress events. */
    format: z.enum(['claude', 'codex', 'gemini', 'opencode', 'jsonl', 'text']).default('text'),
    /** Extra non-secret environment variables. */
    env: z.record(EnvName, z.string().max(4096)).default({}),
    timeout: Duration.optional(),
    description: z.string().max(500).default(''),
  })
  .strict();
export type AgentTypeConfig = z.infer<typeof AgentTypeConfig>;

export const TasksConfig = z
  .object({
    /** Custom agent types (and overrides of the built-ins claude, codex, gemini, opencode). */
    agents: z.record(Name, AgentTypeConfig).default({}),
    /** Parent of the per-task working directories; default `<data_dir>/tasks`. */
    work_dir: z.string().optional(),
    /** PATH given to tasks; default the hub's PATH (only that variable is copied). */
    path: z.string().optional(),
    /** HOME given to tasks; default the task's own working directory. */
    home: z.string().optional(),
    lang: z.string().default('C.UTF-8'),
    default_timeout: Duration.default(1_800_000),
    max_timeout: Duration.default(21_600_000),
    /** Between SIGTERM and SIGKILL on cancel/timeout. */
    kill_grace: Duration.default(5000),
    max_output_bytes: z
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(1024 * 1024),
    max_concurrent: z.number().int().min(1).max(256).default(4),
  })
  .strict()
  .prefault({});
export type TasksConfig = z.infer<typeof TasksConfig>;

export const PROVIDER_TYPES = ['openai', 'anthropic', 'google', 'mistral', 'groq', 'cerebras', 'ollama'] as const;

const ChatProvider = z
  .object({
    type: z.enum(PROVIDER_TYPES),
    base_url: z.string().url().optional(),
    /** Vault provider holding the key; default the provider's own name. */
    key_provider: Name.optional(),
    key_id: Name.default('main'),
    /** Runs on this network (mode `local`); default true for ollama only. */
    local: z.boolean().optional(),
  })
  .strict();
export type ChatProviderConfig = z.infer<typeof ChatProvider>;

const Pattern = z.string().refine((s) => {
  try {
    new RegExp(s, 'i');
    return true;
  } catch {
    return false;
  }
}, 'not a valid regular expression');

export const ChatConfig = z
  .object({
    /** Providers by name, merged over the built-ins (openai, anthropic, google, mistral, groq, cerebras, ollama). */
    providers: z.record(Name, ChatProvider).default({}),
    rules: z
      .object({
        /** Messages up to this many characters count as short. */
        short_max_chars: z.number().int().min(0).default(100),
        short_model: z.string().default('ollama/qwen2.5:14b'),
        code_model: z.string().default('anthropic/claude-sonnet-4-5'),
        search_model: z.string().default('google/gemini-2.5-flash'),
        default_model: z.string().default('ollama/llama3.2:latest'),
        /** Default of mode `cloud` when neither code nor research matched. */
        cloud_model: z.string().default('openai/gpt-4o-mini'),
        code_pattern: Pattern.default(
          '```|\\b(code|function|class|method|bug|debug|refactor|compile|stack ?trace|exception|typescript|javascript|python|rust|golang|java|sql|regex|script|implement)\\b',
        ),
        search_pattern: Pattern.default('\\b(research|search|look up|latest|news|current|sources?|compare|analy[sz]e|summari[sz]e|recherch\\w*|suche)\\b'),
        /** A short message matching this is not answered locally. */
        cloud_pattern: Pattern.default('\\b(explain in detail|step by step|essay|translate)\\b'),
      })
      .strict()
      .prefault({}),
    /** Extra model ids listed by GET /v1/models. */
    models: z.array(z.string().max(200)).max(500).default([]),
    timeout: Duration.default(120_000),
  })
  .strict()
  .prefault({});
export type ChatConfig = z.infer<typeof ChatConfig>;
