import { open } from 'node:fs/promises';
import { HiveError } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { findProgram, remainingMs, runProgram } from '../lib/run.js';
import { type Policy, resolvePolicyPath } from '../policy.js';

/** Longest line kept (longer ones are cut), and the most bytes of lines a result carries. */
export const MAX_LINE_CHARS = 4096;
export const MAX_RESULT_BYTES = 768 * 1024;

export interface LogSourceParams {
  source: 'journal' | 'dmesg' | 'file';
  path?: string | undefined;
  unit?: string | undefined;
  since?: string | undefined;
  priority?: string | undefined;
}

export interface LogEnv {
  policy: Policy;
  config: AgentConfig;
  signal?: AbortSignal | undefined;
  deadline?: number | undefined;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m` → now − 30 minutes; ISO-8601 → that instant. */
export function parseSince(since: string, now = Date.now()): number {
  const rel = /^(\d{1,6})([smhdw])$/.exec(since);
  if (rel) return now - Number(rel[1]) * (UNIT_MS[rel[2] as string] ?? 0);
  const t = Date.parse(since.includes(' ') ? since.replace(' ', 'T') : since);
  if (Number.isNaN(t)) throw new HiveError('INVALID_PARAMETERS', `since: cannot parse ${since}`);
  return t;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Timestamp at the start of a log line: ISO-8601 (journal short-iso, dmesg iso, most apps) or syslog `Mmm dd HH:MM:SS`. */
export function lineTime(line: string, now = new Date()): number | undefined {
  const iso = /^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)/.exec(line);
  if (iso?.[1]) {
    const t = Date.parse(iso[1].replace(',', '.').replace(' ', 'T'));
    return Number.isNaN(t) ? undefined : t;
  }
  const sys = /^([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2})/.exec(line);
  if (sys) {
    const month = MONTHS.indexOf(sys[1] as string);
    if (month < 0) return undefined;
    const d = new Date(now.getFullYear(), month, Number(sys[2]), Number(sys[3]), Number(sys[4]), Number(sys[5]));
    // Syslog has no year: a date in the future belongs to last year.
    if (d.getTime() > now.getTime() + 86_400_000) d.setFullYear(d.getFullYear() - 1);
    return d.getTime();
  }
  return undefined;
}

/** Keeps lines at or after `since`; a line without a timestamp follows the decision of the line before it. */
export function filterSince(lines: readonly string[], sinceMs: number): string[] {
  const out: string[] = [];
  let keep = true;
  for (const l of lines) {
    const t = lineTime(l);
    if (t !== undefined) keep = t >= sinceMs;
    if (keep) out.push(l);
  }
  return out;
}

function splitLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l.length > 0)
    .map((l) => (l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l));
}

/** The newest lines that fit the result budget. */
export function fitBudget(lines: string[], maxBytes = MAX_RESULT_BYTES): { lines: string[]; cut: boolean } {
  let bytes = 0;
  let i = lines.length;
  while (i > 0) {
    const n = Buffer.byteLength(lines[i - 1] as string) + 4;
    if (bytes + n > maxBytes) break;
    bytes += n;
    i--;
  }
  return { lines: i > 0 ? lines.slice(i) : lines, cut: i > 0 };
}

async function journal(p: LogSourceParams, n: number, env: LogEnv): Promise<string[]> {
  const journalctl = findProgram('journalctl');
  if (!journalctl) throw new HiveError('SERVICE_NOT_RUNNING', 'journalctl is not installed on this satellite', { service: 'journald' });
  const args = ['--no-pager', '--quiet', '--output=short-iso', `--lines=${n}`];
  if (p.since) args.push(`--since=@${Math.floor(parseSince(p.since) / 1000)}`);
  if (p.unit) args.push(`--unit=${p.unit}`);
  if (p.priority) args.push(`--priority=${p.priority}`);
  const r = await runProgram(journalctl, args, {
    timeoutMs: remainingMs(env.deadline, env.config.logs.timeout_ms),
    maxOutputBytes: Math.min(64 * 1024 * 1024, n * (MAX_LINE_CHARS + 64)),
    signal: env.signal,
  });
  if (r.timedOut) throw new HiveError('TIMEOUT', 'journalctl did not finish in time');
  if (r.exitCode !== 0) throw new HiveError('SERVICE_NOT_RUNNING', `journalctl failed: ${r.stderr.trim().slice(0, 512)}`, { service: 'journald' });
  return splitLines(r.stdout).filter((l) => !/^-- (?:No entries|Journal begins|Logs begin|Boot )/.test(l));
}

async function dmesg(p: LogSourceParams, env: LogEnv): Promise<string[]> {
  const bin = findProgram('dmesg');
  if (!bin) throw new HiveError('SERVICE_NOT_RUNNING', 'dmesg is not installed on this satellite');
  const r = await runProgram(bin, ['--time-format=iso'], {
    timeoutMs: remainingMs(env.deadline, env.config.logs.timeout_ms),
    maxOutputBytes: 16 * 1024 * 1024,
    signal: env.signal,
  });
  if (r.timedOut) throw new HiveError('TIMEOUT', 'dmesg did not finish in time');
  if (r.exitCode !== 0) {
    const msg = r.stderr.trim().slice(0, 512);
    if (/not permitted|permission denied/i.test(msg)) throw new HiveError('PERMISSION_DENIED', `dmesg: ${msg} (kernel.dmesg_restrict)`);
    throw new HiveError('INTERNAL_ERROR', `dmesg failed: ${msg}`);
  }
  const lines = splitLines(r.stdout);
  return p.since ? filterSince(lines, parseSince(p.since)) : lines;
}

async function file(p: LogSourceParams, env: LogEnv): Promise<string[]> {
  const resolved = await resolvePolicyPath(env.policy, p.path as string);
  const fh = await open(resolved.real, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EACCES') throw new HiveError('PERMISSION_DENIED', `${p.path}: the agent user may not read it`);
    throw new HiveError('NOT_FOUND', `${p.path}: ${err.message}`);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new HiveError('INVALID_PARAMETERS', `${p.path} is not a regular file`);
    const max = env.config.logs.max_file_bytes;
    const start = Math.max(0, st.size - max);
    const len = st.size - start;
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, start);
    let text = buf.subarray(0, bytesRead).toString('utf8');
    // Started mid-file: the first line is partial.
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    const lines = splitLines(text);
    return p.since ? filterSince(lines, parseSince(p.since)) : lines;
  } finally {
    await fh.close();
  }
}

/** Up to the newest `n` lines of a source, oldest first; `more` tells whether older ones were left out. */
export async function readLogLines(p: LogSourceParams, n: number, env: LogEnv): Promise<{ lines: string[]; more: boolean }> {
  let lines: string[];
  if (p.source === 'journal') lines = await journal(p, n + 1, env);
  else if (p.source === 'dmesg') lines = await dmesg(p, env);
  else lines = await file(p, env);
  const more = lines.length > n;
  return { lines: more ? lines.slice(lines.length - n) : lines, more };
}
