import type { AgentTypeConfig } from '../../config-ai.js';

export interface AgentType {
  name: string;
  command: string[];
  providers: { provider: string; env: string[]; key_id: string; optional: boolean }[];
  format: AgentTypeConfig['format'];
  env: Record<string, string>;
  timeout: number | undefined;
  description: string;
  builtin: boolean;
}

/** Headless invocations of the well-known agent CLIs (seed 000 §3.2). */
export const BUILTIN_AGENT_TYPES: Record<string, AgentTypeConfig> = {
  claude: {
    command: ['claude', '-p', '{prompt}', '--output-format', 'stream-json', '--verbose'],
    providers: [{ provider: 'anthropic', env: 'ANTHROPIC_API_KEY', key_id: 'main', optional: false }],
    format: 'claude',
    env: {},
    description: 'Claude Code (Anthropic): all-rounder, code',
  },
  codex: {
    command: ['codex', 'exec', '{prompt}', '--json'],
    providers: [{ provider: 'openai', env: ['CODEX_API_KEY', 'OPENAI_API_KEY'], key_id: 'main', optional: false }],
    format: 'codex',
    env: {},
    description: 'Codex CLI (OpenAI): code',
  },
  gemini: {
    command: ['gemini', '-p', '{prompt}', '-o', 'stream-json'],
    providers: [{ provider: 'google', env: 'GEMINI_API_KEY', key_id: 'main', optional: false }],
    format: 'gemini',
    env: {},
    description: 'Gemini CLI (Google): research, analysis',
  },
  opencode: {
    command: ['opencode', 'run', '{prompt}', '--format', 'json'],
    providers: [
      { provider: 'anthropic', env: 'ANTHROPIC_API_KEY', key_id: 'main', optional: true },
      { provider: 'openai', env: 'OPENAI_API_KEY', key_id: 'main', optional: true },
    ],
    format: 'opencode',
    env: {},
    description: 'opencode: multi-model (uses whichever of the Anthropic/OpenAI keys the vault has)',
  },
};

/** Built-ins overlaid with the configured types (a configured `claude` replaces the built-in). */
export function resolveAgentTypes(configured: Record<string, AgentTypeConfig>): Map<string, AgentType> {
  const out = new Map<string, AgentType>();
  for (const [name, t] of Object.entries({ ...BUILTIN_AGENT_TYPES, ...configured })) {
    out.set(name, {
      name,
      command: t.command,
      providers: t.providers.map((p) => ({ provider: p.provider, env: typeof p.env === 'string' ? [p.env] : p.env, key_id: p.key_id, optional: p.optional })),
      format: t.format,
      env: t.env,
      timeout: t.timeout,
      description: t.description,
      builtin: !(name in configured),
    });
  }
  return out;
}

/**
 * The argv of a task. Placeholders are replaced inside single elements (never a shell). A prompt
 * starting with `-` gets a leading space so the CLI cannot take it for a flag.
 */
export function buildArgv(template: string[], vars: { prompt: string; task_id: string; cwd: string }): string[] {
  const prompt = vars.prompt.startsWith('-') ? ` ${vars.prompt}` : vars.prompt;
  return template.map((a) =>
    a
      .replaceAll('{prompt}', () => prompt)
      .replaceAll('{task_id}', () => vars.task_id)
      .replaceAll('{cwd}', () => vars.cwd),
  );
}
