import { describe, expect, it } from 'vitest';
import { buildArgv, resolveAgentTypes } from './agent-types.js';
import { createLineSplitter, createMasker, createResultCollector, parseEventLine } from './task-output.js';

describe('task output', () => {
  it('masks every value, longest first', () => {
    const m = createMasker(['sk-abcdefgh', 'sk-abcdefgh-longer']);
    expect(m.mask('a sk-abcdefgh-longer b sk-abcdefgh c')).toBe('a [REDACTED] b [REDACTED] c');
    expect(m.maxLen).toBe(18);
  });

  it('splits lines, and never cuts a secret when releasing a very long line', () => {
    const secret = 'SECRET-0123456789';
    const m = createMasker([secret]);
    const s = createLineSplitter(32, m.maxLen, m.mask);
    let out = '';
    const input = `${'x'.repeat(30)}${secret}${'y'.repeat(40)}${secret}\nend`;
    for (const ch of input.match(/.{1,7}/gs) ?? []) out += m.mask(s.push(ch));
    out += m.mask(s.flush());
    expect(out).not.toContain('SECRET');
    expect(out.split('[REDACTED]')).toHaveLength(3);
  });

  it('parses claude stream-json into progress and takes the result text', () => {
    const c = createResultCollector('claude');
    const lines = [
      '{"type":"system","subtype":"init"}',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"hi"},{"type":"tool_use","name":"Bash"}]}}',
      '{"type":"result","subtype":"success","is_error":false,"result":"all done","usage":{"output_tokens":3}}',
      'not json',
    ];
    const evs = lines.flatMap((l) => parseEventLine('claude', l));
    for (const e of evs) c.add(e);
    expect(evs.map((e) => e.kind)).toEqual(['init', 'message', 'tool', 'result']);
    expect(c.result()).toEqual({ text: 'all done', usage: { output_tokens: 3 } });
  });

  it('parses codex, gemini and opencode events', () => {
    expect(parseEventLine('codex', '{"type":"item.completed","item":{"type":"agent_message","text":"ok"}}')).toEqual([
      { kind: 'message', type: 'item.completed', text: 'ok' },
    ]);
    expect(parseEventLine('codex', '{"type":"turn.failed","error":{"message":"boom"}}')[0]).toMatchObject({ kind: 'error', text: 'boom' });
    expect(parseEventLine('gemini', '{"type":"message","role":"assistant","content":"he","delta":true}')[0]).toMatchObject({ kind: 'message', text: 'he' });
    expect(parseEventLine('gemini', '{"type":"tool_use","tool_name":"read_file"}')[0]).toMatchObject({ kind: 'tool', tool: 'read_file' });
    expect(parseEventLine('opencode', '{"type":"text","part":{"text":"yo"}}')[0]).toMatchObject({ kind: 'message', text: 'yo' });
    expect(parseEventLine('text', '{"type":"x"}')).toEqual([]);
  });

  it('builds argv without a shell; a prompt cannot become a flag; $ patterns stay literal', () => {
    const t = resolveAgentTypes({}).get('claude');
    expect(t?.providers[0]).toMatchObject({ provider: 'anthropic', env: ['ANTHROPIC_API_KEY'] });
    expect(buildArgv(['claude', '-p', '{prompt}'], { prompt: '--dangerously-skip-permissions', task_id: 't', cwd: '/w' })).toEqual([
      'claude',
      '-p',
      ' --dangerously-skip-permissions',
    ]);
    expect(buildArgv(['x', '{prompt}'], { prompt: "a $& b; rm -rf / 'q'", task_id: 't', cwd: '/w' })).toEqual(['x', "a $& b; rm -rf / 'q'"]);
    expect(resolveAgentTypes({ claude: { command: ['my-claude'], providers: [], format: 'text', env: {}, description: '' } }).get('claude')?.builtin).toBe(
      false,
    );
  });
});
