import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Stand-in AI providers on 127.0.0.1 (ephemeral ports, in the test process) speaking the real
 * wire formats — OpenAI Chat Completions, Anthropic Messages, Ollama /api/chat — so the hub's
 * real provider SDK code talks to them. Each answers `[<kind>:<model>] <last user message>` and
 * records what it received (headers, body). A model named `fail-*` gets an HTTP error.
 */
export interface StandIn {
  url: string;
  requests: { path: string; headers: IncomingMessage['headers']; body: any }[];
  close(): Promise<void>;
}

const lastUser = (messages: any[]): string => {
  const m = [...messages].reverse().find((x) => x.role === 'user');
  if (!m) return '';
  if (typeof m.content === 'string') return m.content;
  return (m.content as any[]).map((p) => p.text ?? '').join('');
};

const words = (s: string): string[] => s.match(/\S+\s*/g) ?? [];

async function start(handler: (body: any, req: IncomingMessage, res: ServerResponse) => void): Promise<StandIn> {
  const requests: StandIn['requests'] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => {
      raw += d;
    });
    req.on('end', () => {
      let body: any = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = raw;
      }
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function openAiStandIn(): Promise<StandIn> {
  return start((body, req, res) => {
    if (req.url !== '/v1/chat/completions') return json(res, 404, { error: { message: 'not found' } });
    if (String(body.model).startsWith('fail'))
      return json(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } });
    const text = `[openai:${body.model}] ${lastUser(body.messages)}`;
    const base = { id: 'chatcmpl-standin', created: 1700000000, model: body.model };
    if (!body.stream) {
      return json(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 },
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: any, finish: string | null, extra = {}) =>
      res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`);
    chunk({ role: 'assistant', content: '' }, null);
    for (const w of words(text)) chunk({ content: w }, null);
    chunk({}, 'stop');
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 } })}\n\n`,
    );
    res.end('data: [DONE]\n\n');
  });
}

export function anthropicStandIn(): Promise<StandIn> {
  return start((body, req, res) => {
    if (req.url !== '/v1/messages') return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
    if (String(body.model).startsWith('fail')) return json(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    const text = `[anthropic:${body.model}] ${lastUser(body.messages)}`;
    const usage = { input_tokens: 9, output_tokens: 6 };
    if (!body.stream) {
      return json(res, 200, {
        id: 'msg_standin',
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const ev = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    ev('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_standin',
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 9, output_tokens: 0 },
      },
    });
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    for (const w of words(text)) ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } });
    ev('content_block_stop', { type: 'content_block_stop', index: 0 });
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } });
    ev('message_stop', { type: 'message_stop' });
    res.end();
  });
}

export function ollamaStandIn(): Promise<StandIn> {
  return start((body, req, res) => {
    if (req.url !== '/api/chat') return json(res, 404, { error: `no route ${req.url}` });
    if (String(body.model).startsWith('fail')) return json(res, 404, { error: `model "${body.model}" not found, try pulling it first` });
    const text = `[ollama:${body.model}] ${lastUser(body.messages)}`;
    const created_at = new Date().toISOString();
    const done = { done: true, done_reason: 'stop', total_duration: 1000, prompt_eval_count: 4, eval_count: 3 };
    if (body.stream === false) {
      return json(res, 200, { model: body.model, created_at, message: { role: 'assistant', content: text }, ...done });
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const w of words(text)) res.write(`${JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: w }, done: false })}\n`);
    res.end(`${JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: '' }, ...done })}\n`);
  });
}
