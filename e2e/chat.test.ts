import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, type TestHub } from './helpers.js';
import { startAiHub } from './standins/hub.js';
import { anthropicStandIn, ollamaStandIn, openAiStandIn, type StandIn } from './standins/providers.js';

const KEY_A = 'sk-ant-CHATTEST-aaaaaaaaaaaaaaaaaaaa';
const KEY_O = 'sk-oai-CHATTEST-oooooooooooooooooooo';
const CODE = 'Please refactor this TypeScript function so that it handles the empty array case without throwing an exception.';
const RESEARCH = 'I need research on the latest developments in solid-state batteries, with sources and a comparison of vendors.';
const PLAIN = 'Tell me a long and cheerful story about a bear who lives in a beehive and befriends all of the bees over one summer.';

describe('chat router and OpenAI-compatible proxy against stand-in providers (OpenAI, Anthropic, Ollama wire formats)', () => {
  let t: TestHub;
  let oai: StandIn;
  let ant: StandIn;
  let oll: StandIn;
  const responses: string[] = [];
  const api = async (method: string, p: string, body?: unknown) => {
    const r = await t.api(method, p, body);
    responses.push(JSON.stringify(r.body));
    return r;
  };

  beforeAll(async () => {
    [oai, ant, oll] = await Promise.all([openAiStandIn(), anthropicStandIn(), ollamaStandIn()]);
    t = await startAiHub({
      vault: { scrypt_log_n: 15 },
      chat: {
        providers: {
          openai: { type: 'openai', base_url: `${oai.url}/v1` },
          anthropic: { type: 'anthropic', base_url: `${ant.url}/v1` },
          ollama: { type: 'ollama', base_url: oll.url },
        },
        rules: {
          short_model: 'ollama/qwen-standin',
          default_model: 'ollama/llama-standin',
          code_model: 'anthropic/claude-standin',
          search_model: 'openai/search-standin',
          cloud_model: 'openai/cloud-standin',
        },
        models: ['mistral/mistral-large-latest'],
      },
    });
    await t.api('POST', '/api/v1/vault/init', { password: 'chat test password' });
    await t.api('POST', '/api/v1/vault/keys', { provider: 'anthropic', value: KEY_A });
    await t.api('POST', '/api/v1/vault/keys', { provider: 'openai', value: KEY_O });
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([oai?.close(), ant?.close(), oll?.close()]);
    cleanup(t.dataDir);
  });

  const ask = async (content: string, extra: Record<string, unknown> = {}) => {
    const r = await api('POST', '/api/v1/chat', { messages: [{ role: 'user', content }], ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.data;
  };

  it('routing rules pick the expected model and say which rule did (stand-ins answer)', async () => {
    const short = await ask('hi there');
    expect(short).toMatchObject({ model: 'ollama/qwen-standin', route: { rule: 'short' }, text: '[ollama:qwen-standin] hi there' });
    expect(short.route.reason).toContain('short');

    const code = await ask(CODE);
    expect(code).toMatchObject({ model: 'anthropic/claude-standin', route: { rule: 'code' }, text: `[anthropic:claude-standin] ${CODE}` });
    expect(code.usage).toMatchObject({ input_tokens: 9, output_tokens: 6 });
    expect(ant.requests.at(-1)?.headers['x-api-key']).toBe(KEY_A);

    const research = await ask(RESEARCH);
    expect(research).toMatchObject({ model: 'openai/search-standin', route: { rule: 'research' } });
    expect(oai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_O}`);

    expect(await ask(PLAIN)).toMatchObject({ model: 'ollama/llama-standin', route: { rule: 'default' } });
    expect(await ask('hi', { model: 'anthropic/claude-explicit' })).toMatchObject({ model: 'anthropic/claude-explicit', route: { rule: 'explicit' } });
    expect(await ask(CODE, { mode: 'local' })).toMatchObject({ model: 'ollama/llama-standin', route: { rule: 'local' } });
    expect(await ask(PLAIN, { mode: 'cloud' })).toMatchObject({ model: 'openai/cloud-standin', route: { rule: 'cloud-default' } });
    expect((await api('POST', '/api/v1/chat', { messages: [{ role: 'user', content: 'x' }], model: 'openai/gpt', mode: 'local' })).body.error.code).toBe(
      'INVALID_PARAMETERS',
    );

    // every key use is audited with the model
    const audit = (await api('GET', '/api/v1/audit/logs?action=vault.key_used&per_page=100')).body.data;
    expect(audit.some((e: any) => e.details.purpose === 'chat' && e.details.model === 'anthropic/claude-standin')).toBe(true);
  });

  it('a missing key is NO_API_KEY naming the provider; a provider failure is PROVIDER_ERROR', async () => {
    const r = await api('POST', '/api/v1/chat', { messages: [{ role: 'user', content: 'hi' }], model: 'mistral/mistral-small' });
    expect(r.status).toBe(424);
    expect(r.body.error).toMatchObject({ code: 'NO_API_KEY', details: { provider: 'mistral' } });
    expect(r.body.error.message).toContain('mistral');
    const f = await api('POST', '/api/v1/chat', { messages: [{ role: 'user', content: 'hi' }], model: 'anthropic/fail-model' });
    expect(f.status).toBe(502);
    expect(f.body.error).toMatchObject({ code: 'PROVIDER_ERROR', details: { provider: 'anthropic', status: 401 } });
  });

  it('POST /api/v1/chat streams SSE (Anthropic stand-in)', async () => {
    const res = await fetch(`${t.url}/api/v1/chat`, {
      method: 'POST',
      headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: CODE }], stream: true }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = (await res.text())
      .split('\n\n')
      .filter((b) => b.startsWith('data: '))
      .map((b) => JSON.parse(b.slice(6)));
    expect(events[0]).toMatchObject({ type: 'route', model: 'anthropic/claude-standin', route: { rule: 'code' } });
    const deltas = events.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((e) => e.text).join('')).toBe(`[anthropic:claude-standin] ${CODE}`);
    expect(events.at(-1)).toMatchObject({ type: 'done', finish_reason: 'stop' });
    responses.push(JSON.stringify(events));
  });

  it('/v1/chat/completions works with the official openai client (stand-in upstreams), streaming and not', async () => {
    const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.adminKey, maxRetries: 0 });
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['hive/smart', 'ollama/qwen-standin', 'anthropic/claude-standin', 'mistral/mistral-large-latest']));

    const c = await client.chat.completions.create({
      model: 'anthropic/claude-standin',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello proxy' },
      ],
    });
    expect(c.choices[0].message.content).toBe('[anthropic:claude-standin] hello proxy');
    expect(c.choices[0].finish_reason).toBe('stop');
    expect(c.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 });
    expect(ant.requests.at(-1)?.body.system).toBeDefined();

    // hive/smart lets the router choose: short → local Ollama stand-in, streamed
    const stream = await client.chat.completions.create({
      model: 'hive/smart',
      messages: [{ role: 'user', content: 'short one' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: unknown = null;
    let chunks = 0;
    for await (const ch of stream) {
      chunks++;
      text += ch.choices[0]?.delta?.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
      if (ch.usage) usage = ch.usage;
    }
    expect(text).toBe('[ollama:qwen-standin] short one');
    expect(chunks).toBeGreaterThan(3);
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3 });

    // OpenAI upstream, streamed, with Authorization: Bearer (the client's default)
    const s2 = await client.chat.completions.create({ model: 'openai/gpt-standin', messages: [{ role: 'user', content: 'via openai' }], stream: true });
    let t2 = '';
    for await (const ch of s2) t2 += ch.choices[0]?.delta?.content ?? '';
    expect(t2).toBe('[openai:gpt-standin] via openai');

    // errors reach the client as API errors
    const bad = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'hive_notavalidkey', maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: 'hive/smart', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 401 });
    await expect(client.chat.completions.create({ model: 'mistral/x', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 424 });
    const ro = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.hub.consoleKey, maxRetries: 0 });
    await expect(ro.chat.completions.create({ model: 'hive/smart', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 403 });
  });

  it('no key value in logs, audit or responses', async () => {
    await t.hub.services.audit.flush();
    const audit = await api('GET', '/api/v1/audit/logs?per_page=500');
    const hay = [t.logs.join('\n'), responses.join('\n'), JSON.stringify(audit.body)].join('\n');
    expect(hay).not.toContain('CHATTEST');
  });
});
