import { HiveError } from '@hive/protocol';
import type { ChatConfig, ChatProviderConfig } from '../../config-ai.js';

export type ChatMode = 'smart' | 'local' | 'cloud';
export type RouteRule = 'explicit' | 'short' | 'code' | 'research' | 'default' | 'local' | 'cloud-default';

export interface RouteDecision {
  /** `provider/model` */
  model: string;
  provider: string;
  model_name: string;
  mode: ChatMode;
  /** Which rule picked the model, and why: the answer explains itself. */
  rule: RouteRule;
  reason: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export const BUILTIN_PROVIDERS: Record<string, ChatProviderConfig> = {
  openai: { type: 'openai', key_id: 'main' },
  anthropic: { type: 'anthropic', key_id: 'main' },
  google: { type: 'google', key_id: 'main' },
  mistral: { type: 'mistral', key_id: 'main' },
  groq: { type: 'groq', key_id: 'main' },
  cerebras: { type: 'cerebras', key_id: 'main' },
  ollama: { type: 'ollama', key_id: 'main', base_url: 'http://127.0.0.1:11434', local: true },
};

export const isLocal = (p: ChatProviderConfig): boolean => p.local ?? p.type === 'ollama';

/**
 * Picks a model (seed 000 §6.2): an explicit model wins; otherwise, in mode `smart`, a short
 * message goes local, code to the code model, research to the search model, the rest local.
 * Mode `local` never leaves the network; mode `cloud` never uses a local model.
 */
export function createChatRouter(config: ChatConfig) {
  const providers: Record<string, ChatProviderConfig> = { ...BUILTIN_PROVIDERS, ...config.providers };
  const r = config.rules;
  const code = new RegExp(r.code_pattern, 'i');
  const search = new RegExp(r.search_pattern, 'i');
  const cloud = new RegExp(r.cloud_pattern, 'i');

  function parse(model: string): { provider: string; model_name: string; cfg: ChatProviderConfig } {
    const slash = model.indexOf('/');
    const provider = slash > 0 ? model.slice(0, slash) : '';
    const name = slash > 0 ? model.slice(slash + 1) : '';
    const cfg = providers[provider];
    if (!cfg || !name) {
      throw new HiveError('INVALID_PARAMETERS', `Model must be <provider>/<model> with a known provider, got "${model.slice(0, 100)}"`, {
        providers: Object.keys(providers),
      });
    }
    return { provider, model_name: name, cfg };
  }

  function decide(model: string, mode: ChatMode, rule: RouteRule, reason: string): RouteDecision {
    const p = parse(model);
    if (mode === 'local' && !isLocal(p.cfg)) throw new HiveError('INVALID_PARAMETERS', `Mode local, but ${model} is not a local model`);
    if (mode === 'cloud' && isLocal(p.cfg)) throw new HiveError('INVALID_PARAMETERS', `Mode cloud, but ${model} is a local model`);
    return { model, provider: p.provider, model_name: p.model_name, mode, rule, reason };
  }

  return {
    providers,
    parse,
    route(messages: ChatMessage[], opts: { model?: string | undefined; mode: ChatMode }): RouteDecision {
      if (opts.model) return decide(opts.model, opts.mode, 'explicit', 'the request named the model');
      const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const len = last.length;
      const isShort = len <= r.short_max_chars;
      const isCode = code.test(last);
      const isSearch = search.test(last);
      if (opts.mode === 'local') {
        return isShort
          ? decide(r.short_model, 'local', 'local', `mode local; short message (${len} ≤ ${r.short_max_chars} chars)`)
          : decide(r.default_model, 'local', 'local', `mode local; ${len} chars`);
      }
      if (opts.mode === 'smart' && isShort && !cloud.test(last)) {
        return decide(r.short_model, 'smart', 'short', `short message (${len} ≤ ${r.short_max_chars} chars) answered locally`);
      }
      if (isCode) return decide(r.code_model, opts.mode, 'code', 'looks like a code task (matched rules.code_pattern)');
      if (isSearch) return decide(r.search_model, opts.mode, 'research', 'looks like research (matched rules.search_pattern)');
      if (opts.mode === 'cloud') return decide(r.cloud_model, 'cloud', 'cloud-default', 'mode cloud; no code or research rule matched');
      return decide(r.default_model, 'smart', 'default', 'no rule matched; default is local');
    },
    /** Model ids for GET /v1/models: the rule models, configured extras, and the routing aliases. */
    models(): string[] {
      return [
        ...new Set(['hive/smart', 'hive/local', 'hive/cloud', r.short_model, r.default_model, r.code_model, r.search_model, r.cloud_model, ...config.models]),
      ];
    },
  };
}

export type ChatRouter = ReturnType<typeof createChatRouter>;
