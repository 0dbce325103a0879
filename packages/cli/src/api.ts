import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HiveError } from '@hive/protocol';
import { type HubTlsOptions, type HubTrust, normalizeFingerprint, secureConnector, type TlsSeen } from '@hive/sdk';

export interface CliAuth {
  url: string;
  apiKey: string | undefined;
  /** Pinned SHA-256 fingerprint of the hub's certificate (https hubs with a self-signed certificate). */
  hubFingerprint?: string | undefined;
  /** CA (PEM file) that signed the hub's certificate, instead of the system CAs. */
  caFile?: string | undefined;
}

export interface CliFlags {
  url?: string;
  apiKey?: string;
  hubFingerprint?: string;
  caFile?: string;
}

export function cliConfigPath(): string {
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'hive', 'cli.json');
}

/**
 * Flags win over HIVE_URL / HIVE_API_KEY / HIVE_HUB_FINGERPRINT / HIVE_CA_FILE, which win over the
 * file written by `hive login`. The file's pinned fingerprint applies only to the URL it was saved for.
 */
export function resolveAuth(flags: CliFlags = {}): CliAuth {
  let file: Partial<CliAuth> = {};
  try {
    file = JSON.parse(readFileSync(cliConfigPath(), 'utf8')) as Partial<CliAuth>;
  } catch {
    /* not logged in */
  }
  const url = (flags.url || process.env.HIVE_URL || file.url || 'http://127.0.0.1:7420').replace(/\/+$/, '');
  const sameHub = file.url !== undefined && file.url.replace(/\/+$/, '') === url;
  const hubFingerprint = flags.hubFingerprint || process.env.HIVE_HUB_FINGERPRINT || (sameHub ? file.hubFingerprint : undefined);
  const caFile = flags.caFile || process.env.HIVE_CA_FILE || (sameHub ? file.caFile : undefined);
  return {
    url,
    apiKey: flags.apiKey || process.env.HIVE_API_KEY || file.apiKey,
    ...(hubFingerprint ? { hubFingerprint: checkedFingerprint(hubFingerprint) } : {}),
    ...(caFile ? { caFile } : {}),
  };
}

function checkedFingerprint(fp: string): string {
  try {
    return normalizeFingerprint(fp);
  } catch (err) {
    throw new ApiError(0, 'INVALID_PARAMETERS', `--hub-fingerprint / HIVE_HUB_FINGERPRINT: ${(err as Error).message}`);
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ApiError(0, 'INVALID_PARAMETERS', `--ca-file / HIVE_CA_FILE ${file}: ${(err as Error).message}`);
  }
}

/** What the SDK's HiveClient needs to trust the hub like the REST calls do (no trust on first use). */
export function tlsOptionsOf(auth: CliAuth): HubTlsOptions {
  return {
    ...(auth.hubFingerprint ? { fingerprint: auth.hubFingerprint } : {}),
    ...(auth.caFile ? { ca: readCa(auth.caFile) } : {}),
  };
}

/** Pin if a fingerprint is given, else the CA file, else the system CAs; `tofu` only for `hive login`. */
function trustOf(auth: CliAuth, tofu = false): HubTrust {
  if (auth.hubFingerprint) return { mode: 'pin', fingerprint: auth.hubFingerprint };
  if (auth.caFile) return { mode: 'ca', ca: readCa(auth.caFile) };
  return tofu ? { mode: 'tofu' } : { mode: 'ca' };
}

/** Turns what hubFetch threw into the CLI's error: TLS failures keep their code, the rest is HUB_UNREACHABLE. */
export function fetchError(err: unknown, url: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HiveError) return new ApiError(0, err.code, err.message, err.details);
  const e = err as Error & { cause?: unknown };
  return new ApiError(0, 'HUB_UNREACHABLE', `Cannot reach the hub at ${url}: ${e.cause ?? e.message}`);
}

/**
 * `fetch` for the hub: plain `fetch` for http://, and for https:// a request whose socket is handed
 * over only after the certificate passed the pin or CA check — nothing (not the API key) is sent
 * to a hub that fails it, and there is no fallback to plaintext. `onSeen` reports the certificate.
 */
export async function hubFetch(
  auth: CliAuth,
  url: string,
  init: RequestInit & { duplex?: 'half' } = {},
  opts: { tofu?: boolean; onSeen?: (seen: TlsSeen) => void } = {},
): Promise<Response> {
  const u = new URL(url);
  if (u.protocol !== 'https:') {
    if (auth.hubFingerprint || auth.caFile) {
      throw new ApiError(
        0,
        'TLS_UNTRUSTED',
        `${auth.url} is plaintext http:// but a hub fingerprint or CA file is set; refusing to fall back to plaintext. Use https://.`,
      );
    }
    return fetch(url, init);
  }
  const trust = trustOf(auth, opts.tofu);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => {
    headers[k] = v;
  });
  const method = init.method ?? 'GET';
  return new Promise<Response>((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port || 443,
        path: `${u.pathname}${u.search}`,
        method,
        headers,
        createConnection: secureConnector(trust, opts.onSeen) as unknown as https.RequestOptions['createConnection'],
      },
      (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) for (const x of v) h.append(k, x);
          else if (v !== undefined) h.set(k, v);
        }
        const status = res.statusCode ?? 500;
        const empty = method === 'HEAD' || [101, 204, 205, 304].includes(status);
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream), { status, statusText: res.statusMessage ?? '', headers: h }));
      },
    );
    req.on('error', reject);
    init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
    const body = init.body;
    if (body === undefined || body === null) req.end();
    else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
    else if (body instanceof ReadableStream) Readable.fromWeb(body as import('node:stream/web').ReadableStream).pipe(req);
    else reject(new Error('hubFetch: unsupported body type'));
  });
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

export async function api<T>(
  auth: CliAuth,
  method: string,
  p: string,
  body?: unknown,
  tls: { tofu?: boolean; onSeen?: (seen: TlsSeen) => void } = {},
): Promise<Envelope<T>> {
  let res: Response;
  try {
    res = await hubFetch(
      auth,
      `${auth.url}${p}`,
      {
        method,
        headers: { ...(auth.apiKey ? { 'x-api-key': auth.apiKey } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      },
      tls,
    );
  } catch (err) {
    throw fetchError(err, auth.url);
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
