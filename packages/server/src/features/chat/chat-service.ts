import { createAnthropic } from '@ai-sdk/anthropic';
import { createCerebras } from '@ai-sdk/cerebras';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createGroq } from '@ai-sdk/groq';
import { createMistral } from '@ai-sdk/mistral';
import { createOpenAI } from '@ai-sdk/openai';
import { HiveError } from '@hive/protocol';
import { generateText, type LanguageModel, streamText } from 'ai';
import { createOllama } from 'ai-sdk-ollama';
import type { Logger } from 'pino';
import type { ChatConfig, ChatProviderConfig } from '../../config-ai.js';
import { type Principal, requireScope } from '../../lib/principal.js';
import type { AuditService } from '../audit/audit-service.js';
import { createMasker } from '../tasks/task-output.js';
import type { VaultService } from '../vault/vault-service.js';
import { type ChatMessage, type ChatMode, createChatRouter, type RouteDecision } from './chat-router.js';

export interface ChatRequest {
  messages: ChatMessage[];
  model?: string | undefined;
  mode: ChatMode;
  max_tokens?: number | undefined;
  temperature?: number | undefined;
}

export interface ChatUsage {
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
}

export interface ChatResult {
  text: string;
  model: string;
  route: RouteDecision;
  finish_reason: string;
  usage: ChatUsage;
}

export interface ChatStream {
  model: string;
  route: RouteDecision;
  /** Text deltas; throws a HiveError (PROVIDER_ERROR) when the provider fails mid-stream. */
  deltas: AsyncIterable<string>;
  /** After `deltas` ended. */
  final(): { finish_reason: string; usage: ChatUsage };
}

type Deps = {
  vault: Pick<VaultService, 'useKeys'>;
  audit: Pick<AuditService, 'log'>;
  logger: Logger;
  config: ChatConfig;
};

function createModel(cfg: ChatProviderConfig, name: string, apiKey: string | undefined): LanguageModel {
  const base = { ...(cfg.base_url ? { baseURL: cfg.base_url } : {}), ...(apiKey ? { apiKey } : {}) };
  switch (cfg.type) {
    case 'openai':
      // Chat Completions (not the Responses API): what OpenAI-compatible servers speak.
      return createOpenAI(base).chat(name);
    case 'anthropic':
      return createAnthropic(base)(name);
    case 'google':
      return createGoogleGenerativeAI(base)(name);
    case 'mistral':
      return createMistral(base)(name);
    case 'groq':
      return createGroq(base)(name);
    case 'cerebras':
      return createCerebras(base)(name);
    case 'ollama':
      return createOllama(base)(name);
  }
}

const usageOf = (u: { inputTokens?: number | undefined; outputTokens?: number | undefined; totalTokens?: number | undefined } | undefined): ChatUsage => ({
  input_tokens: u?.inputTokens ?? null,
  output_tokens: u?.outputTokens ?? null,
  total_tokens: u?.totalTokens ?? (u?.inputTokens !== undefined && u?.outputTokens !== undefined ? u.inputTokens + u.outputTokens : null),
});

/**
 * Chat router + provider proxy (seed 000 §6). Providers are the Vercel AI SDK's, each created per
 * call with `createX({ baseURL, apiKey })` from config and the vault; the key lives only for the
 * call and every use is audited. Provider errors are masked and become PROVIDER_ERROR.
 */
export const chatServiceFactory = ({ vault, audit, logger, config }: Deps) => {
  const router = createChatRouter(config);
  // The AI SDK prints warnings with console.warn by default; send them to our logger instead.
  globalThis.AI_SDK_LOG_WARNINGS = (o) => logger.debug({ warnings: o.warnings }, 'AI SDK warnings');

  async function prepare(p: Principal, req: ChatRequest) {
    requireScope(p, 'operator.write');
    const route = router.route(req.messages, { model: req.model, mode: req.mode });
    const cfg = router.providers[route.provider] as ChatProviderConfig;
    let apiKey: string | undefined;
    if (cfg.type !== 'ollama') {
      const need = { provider: cfg.key_provider ?? route.provider, key_id: cfg.key_id };
      const keys = await vault.useKeys([need], { actor: p, purpose: 'chat', model: route.model });
      apiKey = keys.get(`${need.provider}/${need.key_id}`);
      keys.clear();
    }
    const masker = createMasker(apiKey ? [apiKey] : []);
    const model = createModel(cfg, route.model_name, apiKey);
    apiKey = undefined;
    const toError = (err: unknown): HiveError => {
      if (err instanceof HiveError) return err;
      const e = err as { message?: string; statusCode?: number; name?: string; cause?: unknown };
      const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
      const msg = masker.mask(String(e.message ?? err)).slice(0, 500);
      logger.warn({ provider: route.provider, model: route.model, status, err: msg }, 'provider call failed');
      return new HiveError('PROVIDER_ERROR', `${route.provider} failed: ${msg}`, {
        provider: route.provider,
        model: route.model,
        ...(status ? { status } : {}),
      });
    };
    const call = {
      model,
      messages: req.messages,
      // A proxy passes the client's system messages through by design.
      allowSystemInMessages: true,
      maxRetries: 1,
      abortSignal: AbortSignal.timeout(config.timeout),
      ...(req.max_tokens !== undefined ? { maxOutputTokens: req.max_tokens } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    };
    return { route, call, toError };
  }

  function audited(p: Principal, route: RouteDecision, result: 'success' | 'failure', extra: Record<string, unknown>, error?: string): void {
    audit.log({
      actor: { type: p.type, id: p.id, name: p.name, ip: p.ip },
      action: 'chat.completion',
      target: { type: 'model', id: route.model },
      details: { provider: route.provider, rule: route.rule, mode: route.mode, ...extra },
      result,
      ...(error ? { error } : {}),
    });
  }

  return {
    router,
    route: (req: Pick<ChatRequest, 'messages' | 'model' | 'mode'>): RouteDecision => router.route(req.messages, { model: req.model, mode: req.mode }),
    models: (): string[] => router.models(),

    async chat(p: Principal, req: ChatRequest): Promise<ChatResult> {
      const { route, call, toError } = await prepare(p, req);
      try {
        const r = await generateText(call);
        const usage = usageOf(r.usage);
        audited(p, route, 'success', { stream: false, ...usage });
        return { text: r.text, model: route.model, route, finish_reason: r.finishReason, usage };
      } catch (err) {
        const e = toError(err);
        audited(p, route, 'failure', { stream: false }, e.message);
        throw e;
      }
    },

    /** Fails before the first delta (routing, keys) by throwing; provider failures surface from `deltas`. */
    async stream(p: Principal, req: ChatRequest): Promise<ChatStream> {
      const { route, call, toError } = await prepare(p, req);
      const result = streamText({ ...call, onError: () => {} });
      let final: { finish_reason: string; usage: ChatUsage } = { finish_reason: 'unknown', usage: usageOf(undefined) };
      async function* deltas(): AsyncGenerator<string> {
        try {
          for await (const part of result.fullStream) {
            if (part.type === 'text-delta') yield part.text;
            else if (part.type === 'error') throw part.error;
            else if (part.type === 'finish') final = { finish_reason: part.finishReason, usage: usageOf(part.totalUsage) };
          }
          audited(p, route, 'success', { stream: true, ...final.usage });
        } catch (err) {
          const e = toError(err);
          audited(p, route, 'failure', { stream: true }, e.message);
          throw e;
        }
      }
      return { model: route.model, route, deltas: deltas(), final: () => final };
    },
  };
};

export type ChatService = ReturnType<typeof chatServiceFactory>;
