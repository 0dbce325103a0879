import { describe, expect, it } from 'vitest';
import { ChatConfig } from '../../config-ai.js';
import { createChatRouter } from './chat-router.js';

const router = createChatRouter(ChatConfig.parse({}));
const msg = (content: string) => [{ role: 'user' as const, content }];
const long = (s: string) => `${s} ${'and some more words to make this message clearly longer than the short limit. '.repeat(2)}`;

describe('chat router', () => {
  it('follows the seed rules in smart mode and explains itself', () => {
    expect(router.route(msg('hi'), { mode: 'smart' })).toMatchObject({ model: 'ollama/qwen2.5:14b', rule: 'short' });
    expect(router.route(msg(long('refactor this python function')), { mode: 'smart' })).toMatchObject({ rule: 'code', provider: 'anthropic' });
    expect(router.route(msg(long('research the latest news')), { mode: 'smart' })).toMatchObject({ rule: 'research', provider: 'google' });
    expect(router.route(msg(long('tell me a story')), { mode: 'smart' })).toMatchObject({ rule: 'default', model: 'ollama/llama3.2:latest' });
    expect(router.route(msg('hi'), { mode: 'smart', model: 'groq/llama-3.3' })).toMatchObject({ rule: 'explicit', provider: 'groq', model_name: 'llama-3.3' });
    expect(router.route(msg('explain in detail step by step'), { mode: 'smart' }).rule).not.toBe('short');
  });

  it('local never leaves the network, cloud never uses a local model', () => {
    expect(router.route(msg(long('refactor this code')), { mode: 'local' }).provider).toBe('ollama');
    expect(router.route(msg('hi'), { mode: 'cloud' })).toMatchObject({ rule: 'cloud-default', provider: 'openai' });
    expect(() => router.route(msg('hi'), { mode: 'local', model: 'openai/gpt-4o' })).toThrow(/not a local model/);
    expect(() => router.route(msg('hi'), { mode: 'smart', model: 'nope/x' })).toThrow(/known provider/);
    expect(() => router.route(msg('hi'), { mode: 'smart', model: 'gpt-4o' })).toThrow();
  });
});
