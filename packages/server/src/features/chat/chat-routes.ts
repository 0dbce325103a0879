import { randomUUID } from 'node:crypto';
import { HiveError } from '@hive/protocol';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { ChatMessage, ChatMode } from './chat-router.js';
import type { ChatService, ChatStream } from './chat-service.js';

const Message = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(500_000) }).strict();

/** OpenAI message: string content or text parts; roles an OpenAI client may send. */
const OpenAiMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z
    .union([z.string().max(500_000), z.array(z.looseObject({ type: z.string().max(64), text: z.string().max(500_000).optional() })).max(500), z.null()])
    .optional(),
});

const OpenAiRequest = z.looseObject({
  model: z.string().trim().min(1).max(200),
  messages: z.array(OpenAiMessage).min(1).max(1000),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
});

/** `hive/smart|local|cloud` (and `auto`) let the router choose; anything else is `provider/model`. */
function modelToRoute(model: string): { model?: string; mode: ChatMode } {
  if (model === 'auto' || model === 'hive/smart' || model === 'hive/auto') return { mode: 'smart' };
  if (model === 'hive/local') return { mode: 'local' };
  if (model === 'hive/cloud') return { mode: 'cloud' };
  return { model, mode: 'smart' };
}

function toMessages(msgs: z.infer<typeof OpenAiMessage>[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of msgs) {
    if (m.role === 'tool' || m.role === 'function') continue;
    const text = typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => (p.type === 'text' ? (p.text ?? '') : '')).join('');
    if (m.role === 'assistant' && !text) continue;
    out.push({ role: m.role === 'developer' ? 'system' : m.role, content: text });
  }
  if (!out.some((m) => m.role === 'user')) throw new HiveError('INVALID_PARAMETERS', 'messages need at least one user message with text');
  return out;
}

const FINISH: Record<string, string> = { stop: 'stop', length: 'length', 'content-filter': 'content_filter', 'tool-calls': 'tool_calls' };

function sse(reply: FastifyReply, extra: Record<string, string> = {}): { write(data: unknown): void; end(): void; closed(): boolean } {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...extra,
  });
  let closed = false;
  raw.on('close', () => {
    closed = true;
  });
  return {
    write(data: unknown) {
      if (!closed) raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    },
    end() {
      if (!closed) raw.end();
    },
    closed: () => closed,
  };
}

/** Header-safe (a model name is client input and may hold any character). */
const routeHeader = (rule: string, model: string): string => `${rule}; ${model}`.replace(/[^\x20-\x7e]/g, '?');

const errorBody = (err: unknown) => (err instanceof HiveError ? err.toWire() : { code: 'INTERNAL_ERROR' as const, message: 'Unexpected server error' });

/** POST /api/v1/chat (Hive envelope) and the OpenAI-compatible /v1/chat/completions and /v1/models. */
export function registerChatRoutes(app: HiveApp, chat: ChatService): void {
  app.post('/api/v1/chat', {
    config: { scope: 'operator.write' },
    schema: {
      body: z
        .object({
          messages: z.array(Message).min(1).max(1000),
          model: z.string().trim().min(1).max(200).optional(),
          mode: z.enum(['smart', 'local', 'cloud']).default('smart'),
          stream: z.boolean().default(false),
          max_tokens: z.number().int().min(1).max(1_000_000).optional(),
          temperature: z.number().min(0).max(2).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => {
      const p = { ...req.principal, ip: req.ip };
      const { stream, ...rest } = req.body;
      if (!stream) return ok(await chat.chat(p, rest));
      const s = await chat.stream(p, rest);
      const out = sse(reply);
      out.write({ type: 'route', model: s.model, route: s.route });
      try {
        for await (const text of s.deltas) {
          if (out.closed()) break;
          out.write({ type: 'delta', text });
        }
        out.write({ type: 'done', ...s.final() });
      } catch (err) {
        out.write({ type: 'error', error: errorBody(err) });
      }
      out.end();
      return reply;
    },
  });

  app.post('/api/v1/chat/route', {
    config: { scope: 'operator.read' },
    schema: {
      body: z
        .object({
          messages: z.array(Message).min(1).max(1000),
          model: z.string().trim().min(1).max(200).optional(),
          mode: z.enum(['smart', 'local', 'cloud']).default('smart'),
        })
        .strict(),
    },
    handler: async (req) => ok(chat.route(req.body)),
  });

  app.get('/v1/models', {
    config: { scope: 'operator.read' },
    handler: async () => ({
      object: 'list',
      data: chat.models().map((id) => ({ id, object: 'model', created: 0, owned_by: id.split('/')[0] ?? 'hive' })),
    }),
  });

  app.post('/v1/chat/completions', {
    config: { scope: 'operator.write' },
    schema: { body: OpenAiRequest },
    handler: async (req, reply) => {
      const b = req.body;
      const p = { ...req.principal, ip: req.ip };
      const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
      const request = {
        messages: toMessages(b.messages),
        ...modelToRoute(b.model),
        ...(maxTokens ? { max_tokens: maxTokens } : {}),
        ...(b.temperature !== null && b.temperature !== undefined ? { temperature: b.temperature } : {}),
      };
      const id = `chatcmpl-${randomUUID()}`;
      const created = Math.floor(Date.now() / 1000);
      if (!b.stream) {
        const r = await chat.chat(p, request);
        reply.header('x-hive-route', routeHeader(r.route.rule, r.model));
        return {
          id,
          object: 'chat.completion',
          created,
          model: r.model,
          choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: FINISH[r.finish_reason] ?? 'stop', logprobs: null }],
          usage: { prompt_tokens: r.usage.input_tokens ?? 0, completion_tokens: r.usage.output_tokens ?? 0, total_tokens: r.usage.total_tokens ?? 0 },
          hive: { route: r.route },
        };
      }
      const s: ChatStream = await chat.stream(p, request);
      const out = sse(reply, { 'x-hive-route': routeHeader(s.route.rule, s.model) });
      const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: s.model,
        choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
        ...extra,
      });
      out.write(chunk({ role: 'assistant', content: '' }, null, { hive: { route: s.route } }));
      try {
        for await (const text of s.deltas) {
          if (out.closed()) break;
          out.write(chunk({ content: text }, null));
        }
        const f = s.final();
        out.write(chunk({}, FINISH[f.finish_reason] ?? 'stop'));
        if (b.stream_options?.include_usage) {
          out.write({
            id,
            object: 'chat.completion.chunk',
            created,
            model: s.model,
            choices: [],
            usage: { prompt_tokens: f.usage.input_tokens ?? 0, completion_tokens: f.usage.output_tokens ?? 0, total_tokens: f.usage.total_tokens ?? 0 },
          });
        }
        out.write('[DONE]');
      } catch (err) {
        const e = errorBody(err);
        out.write({ error: { message: e.message, type: e.code, code: e.code } });
      }
      out.end();
      return reply;
    },
  });
}
