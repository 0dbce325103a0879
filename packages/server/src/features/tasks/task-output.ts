import { REDACTED } from '../../lib/redact.js';

/** Replaces every known secret value in text. Longest first, so a value containing another is masked whole. */
export function createMasker(values: Iterable<string>): { mask(s: string): string; maxLen: number } {
  const list = [...new Set([...values].filter((v) => v.length >= 4))].sort((a, b) => b.length - a.length);
  const maxLen = list.reduce((m, v) => Math.max(m, v.length), 0);
  return {
    maxLen,
    mask(s: string): string {
      let out = s;
      for (const v of list) if (out.includes(v)) out = out.split(v).join(REDACTED);
      return out;
    },
  };
}

/**
 * Splits a text stream into complete lines. A line longer than `maxLine` is released in pieces:
 * the buffer is masked whole first, then all but the last `keep` characters are released, so a
 * secret (of at most `keep + 1` characters) is never cut in two between pieces.
 */
export function createLineSplitter(maxLine = 64 * 1024, keep = 0, mask: (s: string) => string = (s) => s) {
  let buf = '';
  return {
    push(chunk: string): string {
      buf += chunk;
      const nl = buf.lastIndexOf('\n');
      let out = '';
      if (nl >= 0) {
        out = buf.slice(0, nl + 1);
        buf = buf.slice(nl + 1);
      }
      if (buf.length > maxLine) {
        buf = mask(buf);
        const cut = Math.max(0, buf.length - keep);
        out += buf.slice(0, cut);
        buf = buf.slice(cut);
      }
      return out;
    },
    flush(): string {
      const out = buf;
      buf = '';
      return out;
    },
  };
}

/** A progress event parsed from an agent CLI's JSON event stream. */
export interface Progress {
  kind: 'init' | 'message' | 'tool' | 'tool_result' | 'result' | 'error' | 'other';
  /** The CLI's own event type, e.g. `assistant`, `item.completed`. */
  type: string;
  text?: string;
  tool?: string;
  is_error?: boolean;
  usage?: unknown;
}

export type OutputFormat = 'claude' | 'codex' | 'gemini' | 'opencode' | 'jsonl' | 'text';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const clip = (s: string | undefined, n = 4000): string | undefined => (s === undefined ? undefined : s.length > n ? `${s.slice(0, n)}…` : s);

function claude(e: Record<string, unknown>, type: string): Progress[] {
  if (type === 'system') return [{ kind: str(e.subtype) === 'init' ? 'init' : 'other', type }];
  if (type === 'assistant' || type === 'user') {
    const content = obj(e.message).content;
    const parts = Array.isArray(content) ? content : [];
    const out: Progress[] = [];
    for (const raw of parts) {
      const c = obj(raw);
      if (c.type === 'text') out.push({ kind: 'message', type, text: clip(str(c.text)) ?? '' });
      else if (c.type === 'tool_use') out.push({ kind: 'tool', type, tool: str(c.name) ?? 'tool' });
      else if (c.type === 'tool_result') out.push({ kind: 'tool_result', type, is_error: c.is_error === true });
    }
    return out.length ? out : [{ kind: 'other', type }];
  }
  if (type === 'result') {
    const isError = e.is_error === true || (str(e.subtype) ?? 'success') !== 'success';
    return [{ kind: isError ? 'error' : 'result', type, text: clip(str(e.result), 64_000) ?? '', is_error: isError, usage: e.usage ?? null }];
  }
  return [{ kind: 'other', type }];
}

function codex(e: Record<string, unknown>, type: string): Progress[] {
  if (type === 'thread.started') return [{ kind: 'init', type }];
  if (type.startsWith('item.')) {
    const item = obj(e.item);
    const it = str(item.type) ?? '';
    if (it === 'agent_message' && type === 'item.completed') return [{ kind: 'message', type, text: clip(str(item.text), 64_000) ?? '' }];
    if (it === 'command_execution')
      return [{ kind: type === 'item.completed' ? 'tool_result' : 'tool', type, tool: clip(str(item.command), 500) ?? 'command' }];
    if (it === 'mcp_tool_call' || it === 'web_search' || it === 'file_change') return [{ kind: 'tool', type, tool: it }];
    return [{ kind: 'other', type }];
  }
  if (type === 'turn.completed') return [{ kind: 'result', type, usage: e.usage ?? null }];
  if (type === 'turn.failed' || type === 'error') {
    return [{ kind: 'error', type, text: clip(str(obj(e.error).message) ?? str(e.message)) ?? 'error', is_error: true }];
  }
  return [{ kind: 'other', type }];
}

function gemini(e: Record<string, unknown>, type: string): Progress[] {
  if (type === 'init') return [{ kind: 'init', type }];
  if (type === 'message') return str(e.role) === 'assistant' ? [{ kind: 'message', type, text: clip(str(e.content)) ?? '' }] : [{ kind: 'other', type }];
  if (type === 'tool_use') return [{ kind: 'tool', type, tool: str(e.tool_name) ?? 'tool' }];
  if (type === 'tool_result') return [{ kind: 'tool_result', type, is_error: str(e.status) === 'error' }];
  if (type === 'result') {
    const isError = str(e.status) === 'error';
    return [{ kind: isError ? 'error' : 'result', type, is_error: isError, usage: e.stats ?? null }];
  }
  if (type === 'error') return [{ kind: 'error', type, text: clip(str(e.message)) ?? 'error', is_error: true }];
  return [{ kind: 'other', type }];
}

function opencode(e: Record<string, unknown>, type: string): Progress[] {
  const part = obj(e.part);
  if (type === 'text') return [{ kind: 'message', type, text: clip(str(part.text), 64_000) ?? '' }];
  if (type === 'tool_use') return [{ kind: 'tool', type, tool: str(part.tool) ?? 'tool' }];
  if (type === 'step_start') return [{ kind: 'other', type }];
  if (type === 'step_finish') return [{ kind: 'other', type }];
  if (type === 'error') {
    const err = obj(e.error);
    return [{ kind: 'error', type, text: clip(str(obj(err.data).message) ?? str(err.message) ?? str(err.name)) ?? 'error', is_error: true }];
  }
  return [{ kind: 'other', type }];
}

function generic(e: Record<string, unknown>, type: string): Progress[] {
  const text = str(e.text) ?? str(e.message) ?? str(e.content);
  if (type === 'result' || type === 'done') return [{ kind: 'result', type, ...(text !== undefined ? { text: clip(text, 64_000) } : {}) }];
  if (type === 'error') return [{ kind: 'error', type, text: clip(text) ?? 'error', is_error: true }];
  return [text !== undefined ? { kind: 'message', type, text: clip(text) } : { kind: 'other', type }];
}

/** Parses one (already masked) line of stdout; a line that is not a JSON object yields nothing. */
export function parseEventLine(format: OutputFormat, line: string): Progress[] {
  if (format === 'text') return [];
  const t = line.trim();
  if (!t.startsWith('{')) return [];
  let e: Record<string, unknown>;
  try {
    e = obj(JSON.parse(t));
  } catch {
    return [];
  }
  const type = str(e.type) ?? 'unknown';
  switch (format) {
    case 'claude':
      return claude(e, type);
    case 'codex':
      return codex(e, type);
    case 'gemini':
      return gemini(e, type);
    case 'opencode':
      return opencode(e, type);
    default:
      return generic(e, type);
  }
}

/**
 * Builds the task's final answer from its progress events: the `result` text when the CLI gives
 * one (claude), else the assistant messages (the last one for codex, all of them joined otherwise).
 */
export function createResultCollector(format: OutputFormat, maxChars = 64_000) {
  let resultText: string | undefined;
  const messages: string[] = [];
  let plain = '';
  let error: string | undefined;
  let usage: unknown;
  return {
    addText(s: string): void {
      if (format === 'text' && plain.length < maxChars) plain = (plain + s).slice(0, maxChars);
    },
    add(p: Progress): void {
      if (p.kind === 'message' && p.text) messages.push(p.text);
      if (p.kind === 'result' && p.text) resultText = p.text;
      if (p.kind === 'error') error = p.text ?? 'error';
      if (p.usage !== undefined && p.usage !== null) usage = p.usage;
    },
    result(): { text: string; error?: string; usage?: unknown } {
      let text: string;
      if (format === 'text') text = plain;
      else if (resultText !== undefined) text = resultText;
      else if (format === 'codex') text = messages[messages.length - 1] ?? '';
      else text = messages.join(format === 'gemini' || format === 'opencode' ? '' : '\n');
      return { text: text.slice(0, maxChars), ...(error ? { error } : {}), ...(usage !== undefined ? { usage } : {}) };
    },
  };
}
