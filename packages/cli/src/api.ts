import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CliAuth {
  url: string;
  apiKey: string | undefined;
}

export function cliConfigPath(): string {
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'hive', 'cli.json');
}

/** HIVE_URL / HIVE_API_KEY win over the file written by `hive login`. */
export function resolveAuth(flags: { url?: string; apiKey?: string } = {}): CliAuth {
  let file: Partial<CliAuth> = {};
  try {
    file = JSON.parse(readFileSync(cliConfigPath(), 'utf8')) as Partial<CliAuth>;
  } catch {
    /* not logged in */
  }
  const url = flags.url || process.env.HIVE_URL || file.url || 'http://127.0.0.1:7420';
  return { url: url.replace(/\/+$/, ''), apiKey: flags.apiKey || process.env.HIVE_API_KEY || file.apiKey };
}

export function saveAuth(auth: CliAuth): string {
  const file = cliConfigPath();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(auth, null, 2)}\n`, { mode: 0o600 });
  return file;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface Envelope<T> {
  success: boolean;
  data: T;
  pagination?: { page: number; per_page: number; total: number; total_pages: number };
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

export async function api<T>(auth: CliAuth, method: string, p: string, body?: unknown): Promise<Envelope<T>> {
  let res: Response;
  try {
    res = await fetch(`${auth.url}${p}`, {
      method,
      headers: { ...(auth.apiKey ? { 'x-api-key': auth.apiKey } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new ApiError(0, 'HUB_UNREACHABLE', `Cannot reach the hub at ${auth.url}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  let json: Envelope<T>;
  try {
    json = (await res.json()) as Envelope<T>;
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', `Hub answered ${res.status} without a JSON body`);
  }
  if (!json.success) {
    const e = json.error ?? { code: 'INTERNAL_ERROR', message: `HTTP ${res.status}` };
    throw new ApiError(res.status, e.code, e.message, e.details);
  }
  return json;
}
