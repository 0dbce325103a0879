import { type ErrorCode, HiveError, isErrorCode, type ScriptResult } from '@hive/protocol';
import { z } from 'zod';
import type { ScriptDecl, ScriptParamDecl } from '../config.js';
import { minimalEnv, remainingMs, runProgram } from '../lib/run.js';

/**
 * Script commands (seed 004 `[scripts]`): `script.<name>` runs the executable the agent config
 * declares, with params checked against the declared types, passed as `--name=value` flags,
 * `HIVE_PARAM_NAME` env vars or a JSON object on stdin — via execFile, never a shell.
 *
 * Result convention: the last non-empty stdout line may be `{"ok":true,"data":{...}}` or
 * `{"ok":false,"error":{"code":"USER_NOT_FOUND","message":"..."}}`; without it the exit code
 * decides (SCRIPT_EXIT_CODES).
 */

/** Error codes a script may report (seed 004's list). */
export const SCRIPT_ERROR_CODES: readonly ErrorCode[] = [
  'INVALID_PARAMETERS',
  'USER_NOT_FOUND',
  'USER_ALREADY_EXISTS',
  'SESSION_NOT_FOUND',
  'CONTAINER_NOT_FOUND',
  'SERVICE_NOT_RUNNING',
  'INSUFFICIENT_RESOURCES',
  'PERMISSION_DENIED',
  'TIMEOUT',
  'INTERNAL_ERROR',
];

/** Exit code → error code, for scripts that print no JSON result line. 0 is success; unlisted codes are INTERNAL_ERROR. */
export const SCRIPT_EXIT_CODES: Readonly<Record<number, ErrorCode>> = {
  1: 'INTERNAL_ERROR',
  2: 'INVALID_PARAMETERS',
  3: 'USER_NOT_FOUND',
  4: 'USER_ALREADY_EXISTS',
  5: 'SESSION_NOT_FOUND',
  6: 'CONTAINER_NOT_FOUND',
  7: 'SERVICE_NOT_RUNNING',
  8: 'INSUFFICIENT_RESOURCES',
  9: 'PERMISSION_DENIED',
  10: 'TIMEOUT',
  64: 'INVALID_PARAMETERS', // sysexits EX_USAGE
  77: 'PERMISSION_DENIED', // sysexits EX_NOPERM
  124: 'TIMEOUT', // timeout(1)
  126: 'PERMISSION_DENIED', // not executable
  127: 'INTERNAL_ERROR', // not found
};

function paramSchema(p: ScriptParamDecl): z.ZodType {
  switch (p.type) {
    case 'string': {
      let s = z.string().min(p.min_length).max(p.max_length);
      s = s.refine((v) => !v.includes('\0'), 'NUL byte not allowed');
      if (p.pattern) s = s.regex(new RegExp(`^(?:${p.pattern})$`), `must match ${p.pattern}`);
      return s;
    }
    case 'enum':
      return z.enum(p.values as [string, ...string[]]);
    case 'int': {
      let n = z.number().int();
      if (p.min !== undefined) n = n.min(p.min);
      if (p.max !== undefined) n = n.max(p.max);
      return n;
    }
    case 'bool':
      return z.boolean();
  }
}

const schemaCache = new WeakMap<ScriptDecl, z.ZodType<Record<string, string | number | boolean>>>();

/** The strict zod schema of a script's declared params (defaults applied, unknown keys refused). */
export function scriptParamsSchema(decl: ScriptDecl): z.ZodType<Record<string, string | number | boolean>> {
  let schema = schemaCache.get(decl);
  if (!schema) {
    const shape: Record<string, z.ZodType> = {};
    for (const [name, p] of Object.entries(decl.params)) {
      const base = paramSchema(p);
      shape[name] = p.default !== undefined ? base.default(p.default as never) : p.required ? base : base.optional();
    }
    schema = z.object(shape).strict() as unknown as z.ZodType<Record<string, string | number | boolean>>;
    schemaCache.set(decl, schema);
  }
  return schema;
}

/** How the validated values reach the script. */
export function scriptInvocation(
  decl: ScriptDecl,
  values: Record<string, string | number | boolean>,
): { args: string[]; env: Record<string, string>; stdin: string } {
  // Declaration order, whatever order the caller used.
  const entries = Object.keys(decl.params)
    .filter((k) => values[k] !== undefined)
    .map((k) => [k, values[k] as string | number | boolean] as const);
  if (decl.pass === 'env') {
    return { args: [], env: Object.fromEntries(entries.map(([k, v]) => [`HIVE_PARAM_${k.toUpperCase()}`, String(v)])), stdin: '' };
  }
  if (decl.pass === 'stdin') return { args: [], env: {}, stdin: JSON.stringify(Object.fromEntries(entries)) };
  // One argv element per param: a value can never become a separate option or word.
  return { args: entries.map(([k, v]) => `--${k.replace(/_/g, '-')}=${String(v)}`), env: {}, stdin: '' };
}

/** The trailing `{"ok":...}` line, if the script printed one, and stdout without it. */
export function parseScriptOutput(stdout: string): { result?: { ok: boolean; data?: unknown; error?: { code?: unknown; message?: unknown } }; rest: string } {
  const trimmed = stdout.replace(/\s+$/, '');
  const nl = trimmed.lastIndexOf('\n');
  const last = trimmed.slice(nl + 1);
  if (!last.startsWith('{')) return { rest: stdout };
  try {
    const obj = JSON.parse(last) as unknown;
    if (obj && typeof obj === 'object' && typeof (obj as { ok?: unknown }).ok === 'boolean') {
      return { result: obj as { ok: boolean }, rest: nl >= 0 ? trimmed.slice(0, nl + 1) : '' };
    }
  } catch {
    /* not a result line */
  }
  return { rest: stdout };
}

export interface ScriptContext {
  signal?: AbortSignal | undefined;
  deadline?: number | undefined;
  correlationId?: string | undefined;
}

export async function runScript(name: string, decl: ScriptDecl, raw: unknown, ctx: ScriptContext = {}): Promise<ScriptResult> {
  const parsed = scriptParamsSchema(decl).safeParse(raw ?? {});
  if (!parsed.success) {
    // Issues name the param and the rule, never the value (params may be secrets).
    throw new HiveError('INVALID_PARAMETERS', `Invalid params for script.${name}`, {
      issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`),
    });
  }
  const inv = scriptInvocation(decl, parsed.data);
  const timeoutMs = remainingMs(ctx.deadline, decl.timeout_s * 1000);
  const env = minimalEnv({ ...inv.env, HIVE_COMMAND: `script.${name}`, ...(ctx.correlationId ? { HIVE_CORRELATION_ID: ctx.correlationId } : {}) });
  const r = await runProgram(decl.path, inv.args, { timeoutMs, maxOutputBytes: decl.max_output_bytes, signal: ctx.signal, stdin: inv.stdin, env });
  const tail = (s: string) => s.slice(-4096);
  if (r.timedOut) throw new HiveError('TIMEOUT', `script.${name} did not finish within ${timeoutMs} ms and was killed`, { stderr: tail(r.stderr) });
  if (ctx.signal?.aborted) throw new HiveError('INTERNAL_ERROR', `script.${name} was cancelled`);
  const { result, rest } = parseScriptOutput(r.stdout);
  if (result?.ok === false || (!result && r.exitCode !== 0)) {
    const reported = result?.error?.code;
    const code: ErrorCode =
      isErrorCode(reported) && SCRIPT_ERROR_CODES.includes(reported)
        ? reported
        : result
          ? 'INTERNAL_ERROR'
          : (SCRIPT_EXIT_CODES[r.exitCode ?? 1] ?? 'INTERNAL_ERROR');
    const message = typeof result?.error?.message === 'string' ? result.error.message.slice(0, 1024) : `script.${name} failed (exit ${r.exitCode ?? r.signal})`;
    throw new HiveError(code, message, {
      exitCode: r.exitCode,
      ...(reported !== undefined && reported !== code ? { reportedCode: String(reported).slice(0, 64) } : {}),
      stderr: tail(r.stderr),
    });
  }
  const data = result?.data;
  return {
    data: data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : null,
    exitCode: r.exitCode,
    durationMs: r.durationMs,
    stdout: rest,
    stderr: r.stderr,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
  };
}
