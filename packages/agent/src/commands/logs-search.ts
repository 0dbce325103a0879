import vm from 'node:vm';
import { HiveError, type LogsSearchParams, type LogsSearchResult } from '@hive/protocol';
import { fitBudget, type LogEnv, readLogLines } from './logs-source.js';

/** Time a regex search may take before it is stopped. */
export const REGEX_BUDGET_MS = 2000;

/**
 * Refuses regular expressions that can backtrack exponentially or that need more than a simple
 * engine: backreferences, and a repeated group that itself contains a quantifier or an
 * alternation (`(a+)+`, `(a|aa)*`). Whatever passes still runs under a time budget.
 */
export function unsafeRegexReason(pattern: string): string | undefined {
  if (/\\[1-9]|\\k</.test(pattern)) return 'backreferences are not allowed';
  // Per open group: does it contain a quantifier or an alternation?
  const stack: boolean[] = [];
  let lastGroupRisky = false;
  let lastWasGroup = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\') {
      i++;
      lastWasGroup = false;
      continue;
    }
    if (ch === '[') {
      // Skip a character class.
      let j = i + 1;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      i = j;
      lastWasGroup = false;
      continue;
    }
    if (ch === '(') {
      stack.push(false);
      lastWasGroup = false;
      continue;
    }
    if (ch === ')') {
      lastGroupRisky = stack.pop() ?? false;
      lastWasGroup = true;
      continue;
    }
    const repeat = ch === '*' || ch === '+' || (ch === '{' && /^\{\d*,?\d*\}/.test(pattern.slice(i)) && !/^\{0?,?1?\}/.test(pattern.slice(i)));
    if (ch === '|' || repeat || ch === '?') {
      if (repeat && lastWasGroup && lastGroupRisky) return 'nested quantifiers are not allowed (e.g. (a+)+)';
      if ((repeat || ch === '|') && stack.length > 0) stack[stack.length - 1] = true;
    }
    lastWasGroup = false;
  }
  return undefined;
}

function compile(params: LogsSearchParams): RegExp {
  const flags = params.ignoreCase ? 'i' : '';
  if (!params.regex) return new RegExp(params.pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), flags);
  const unsafe = unsafeRegexReason(params.pattern);
  if (unsafe) throw new HiveError('INVALID_PARAMETERS', `pattern: ${unsafe}`);
  try {
    return new RegExp(params.pattern, flags);
  } catch (err) {
    throw new HiveError('INVALID_PARAMETERS', `pattern: ${(err as Error).message}`);
  }
}

/** Indexes of the lines matching `re`, stopped after REGEX_BUDGET_MS whatever the pattern does. */
export function matchLines(lines: readonly string[], re: RegExp, budgetMs = REGEX_BUDGET_MS): number[] {
  const ctx = vm.createContext({ lines, re, hits: [] as number[] });
  try {
    vm.runInContext('for (let i = 0; i < lines.length; i++) { if (re.test(lines[i])) hits.push(i); }', ctx, { timeout: budgetMs });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      throw new HiveError('TIMEOUT', `pattern took longer than ${budgetMs} ms over ${lines.length} lines; use a simpler pattern or fewer lines`);
    }
    throw err;
  }
  return ctx.hits as number[];
}

/** `logs.search`: substring or bounded safe regex over the newest `scan` lines of a source. */
export async function logsSearch(params: LogsSearchParams, env: LogEnv): Promise<LogsSearchResult> {
  const re = compile(params);
  const { lines } = await readLogLines(params, params.scan, env);
  const hits = matchLines(lines, re);
  const newest = hits.slice(-params.limit);
  const fit = fitBudget(newest.map((i) => lines[i] as string));
  const kept = newest.slice(newest.length - fit.lines.length);
  return {
    source: params.source,
    scanned: lines.length,
    matches: kept.map((i) => ({ index: i, line: lines[i] as string })),
    truncated: hits.length > kept.length,
  };
}
