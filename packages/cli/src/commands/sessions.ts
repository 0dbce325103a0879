import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import http from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { HiveError, StreamEndpoint } from '@hive/protocol';
import { HiveClient, secureConnector } from '@hive/sdk';
import type { Command } from 'commander';
import { ApiError, type CliAuth, type CliFlags, fetchError, hubFetch, resolveAuth, tlsOptionsOf } from '../api.js';

const VERSION = '0.1.0';

function wsUrlOf(url: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/ws';
  return u.toString();
}

function authOf(cmd: Command): CliAuth & { apiKey: string } {
  const auth = resolveAuth(cmd.optsWithGlobals() as CliFlags);
  if (!auth.apiKey) throw new ApiError(0, 'AUTH_REQUIRED', 'Give --api-key or set HIVE_API_KEY (an API key of the hub)');
  return auth as CliAuth & { apiKey: string };
}

/** The longest a request may wait for an approval decision (the hub's approvals.timeout ends it sooner). */
const APPROVAL_WAIT_MS = 24 * 3_600_000;

function approvalNote(p: { approval_id?: string; reason?: string; expires_at?: string }, what = 'the hub'): string {
  return `hive: ${what}: waiting for approval ${p.approval_id ?? '?'}${p.reason ? ` (${p.reason})` : ''}${p.expires_at ? ` until ${p.expires_at}` : ''}; an operator with operator.approvals decides (hive approvals)\n`;
}

/**
 * PUT of a local file that reports an approval wait: the hub answers `103` with
 * `X-Hive-Approval-Id` while the upload waits for a person, then the final response.
 */
function putFile(
  auth: CliAuth & { apiKey: string },
  url: string,
  headers: Record<string, string>,
  file: string,
  onApproval: (p: { approval_id: string; expires_at?: string }) => void,
): Promise<{ status: number; body: { data?: { bytes: number; sha256: string }; error?: { code: string; message: string } } }> {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  if (!https && (auth.hubFingerprint || auth.caFile)) {
    return Promise.reject(
      new ApiError(
        0,
        'TLS_UNTRUSTED',
        `${auth.url} is plaintext http:// but a hub fingerprint or CA file is set; refusing to fall back to plaintext. Use https://.`,
      ),
    );
  }
  const tlsOpts = tlsOptionsOf(auth);
  return new Promise((resolve, reject) => {
    const body = createReadStream(file);
    const opts: http.RequestOptions = {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (https ? 443 : 80),
      path: `${u.pathname}${u.search}`,
      method: 'PUT',
      headers,
      ...(https
        ? {
            createConnection: secureConnector(
              tlsOpts.fingerprint ? { mode: 'pin', fingerprint: tlsOpts.fingerprint } : { mode: 'ca', ca: tlsOpts.ca },
            ) as unknown as http.RequestOptions['createConnection'],
          }
        : {}),
    };
    const req = (https ? httpsRequest : http.request)(opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => {
        // A refusal (e.g. APPROVAL_DENIED) can come before the body was sent: stop sending it.
        if (!req.writableFinished) {
          body.unpipe(req);
          body.destroy();
          req.destroy();
        }
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new ApiError(res.statusCode ?? 0, 'BAD_RESPONSE', `Hub answered ${res.statusCode} without a JSON body`));
        }
      });
      res.on('error', reject);
    });
    req.on('information', (info) => {
      const id = info.headers['x-hive-approval-id'];
      const expires = info.headers['x-hive-approval-expires'];
      if (typeof id === 'string') onApproval({ approval_id: id, ...(typeof expires === 'string' ? { expires_at: expires } : {}) });
    });
    req.on('error', reject);
    body.on('error', (err) => req.destroy(err));
    body.pipe(req);
  });
}

/** Exit status for the way a session ended: the remote exit code, 128+n for a signal, 255 otherwise. */
export function exitStatusFor(reason: string): number {
  const m = /^exit:(-?\d+)$/.exec(reason);
  if (m) return Number(m[1]) & 0xff;
  const s = /^signal:(\d+)$/.exec(reason);
  if (s) return 128 + Number(s[1]);
  return 255;
}

async function ssh(auth: CliAuth & { apiKey: string }, satellite: string, command: string[]): Promise<number> {
  const client = new HiveClient({
    url: wsUrlOf(auth.url),
    role: 'operator',
    apiKey: auth.apiKey,
    client: { name: 'hive-cli', version: VERSION },
    reconnect: false,
    tls: tlsOptionsOf(auth),
  });
  try {
    await client.start();
  } catch (err) {
    const e = err as HiveError;
    throw new ApiError(0, e.code ?? 'HUB_UNREACHABLE', e.message);
  }
  const stdin = process.stdin;
  const stdout = process.stdout;
  // Under an approval policy the hub holds the open until a person decides; it says so at once.
  client.on('event', (name: string, p: { approval_id?: string; reason?: string; expires_at?: string }) => {
    if (name === 'session:pending_approval') process.stderr.write(approvalNote(p));
  });
  let opened: { session: { id: string }; attach: { stream_id: number } };
  try {
    opened = await client.request(
      'session.open',
      {
        satellite,
        cols: stdout.columns || 80,
        rows: stdout.rows || 24,
        ...(command.length ? { command } : {}),
        attach: 'stream',
      },
      APPROVAL_WAIT_MS,
    );
  } catch (err) {
    await client.close();
    const e = err as HiveError;
    throw new ApiError(1, e.code ?? 'INTERNAL_ERROR', e.message, e.details);
  }
  const sessionId = opened.session.id;
  return new Promise<number>((resolve) => {
    let done = false;
    let stream: StreamEndpoint | undefined;
    const finish = (code: number, note?: string) => {
      if (done) return;
      done = true;
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onInput);
      stdin.off('end', onEnd);
      stdout.off('resize', onResize);
      if (note) process.stderr.write(`\r\nhive: ${note}\r\n`);
      void client.close().then(() => resolve(code));
    };
    const onInput = (d: Buffer) => {
      stream?.write(d);
    };
    // Non-interactive stdin reaching its end is an EOF (Ctrl-D) for the remote side.
    const onEnd = () => stream?.write(Buffer.from([4]));
    const onResize = () => {
      void client.request('session:resize', { session_id: sessionId, cols: stdout.columns || 80, rows: stdout.rows || 24 }).catch(() => {});
    };
    stream = client.acceptStream(opened.attach.stream_id, {
      onData: (chunk) => {
        stdout.write(chunk);
      },
      onClose: ({ reason }) => {
        const code = exitStatusFor(reason);
        finish(code, code === 255 ? `session ended: ${reason}` : undefined);
      },
    });
    client.on('disconnected', () => finish(255, 'connection to the hub lost'));
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', onInput);
    stdin.on('end', onEnd);
    stdin.resume();
    // SIGWINCH: the terminal changed size.
    stdout.on('resize', onResize);
  });
}

interface CastEvent {
  t: number;
  kind: string;
  data: string;
}

export function parseCast(text: string): { header: Record<string, unknown>; events: CastEvent[] } {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  const header = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  const events: CastEvent[] = [];
  for (const l of lines.slice(1)) {
    const [t, kind, data] = JSON.parse(l) as [number, string, string];
    events.push({ t, kind, data });
  }
  return { header, events };
}

async function play(auth: CliAuth & { apiKey: string }, id: string, speed: number, maxWait: number): Promise<void> {
  let res: Response;
  try {
    res = await hubFetch(auth, `${auth.url}/api/v1/sessions/${encodeURIComponent(id)}/recording`, { headers: { 'x-api-key': auth.apiKey } });
  } catch (err) {
    throw fetchError(err, auth.url);
  }
  const text = await res.text();
  if (!res.ok) {
    let e: { code?: string; message?: string } = {};
    try {
      e = (JSON.parse(text) as { error?: typeof e }).error ?? {};
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, e.code ?? 'INTERNAL_ERROR', e.message ?? `HTTP ${res.status}`);
  }
  const { events } = parseCast(text);
  let last = 0;
  for (const ev of events) {
    if (ev.kind !== 'o') continue;
    const wait = Math.min((ev.t - last) / speed, maxWait);
    last = ev.t;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    process.stdout.write(ev.data);
  }
}

/** A `hive cp` operand: local path, `sat:/path`, `tag:NAME:/path` or `group:NAME:/path`. */
export type CpOperand = { kind: 'local'; path: string } | { kind: 'remote'; target: string; by: 'satellite' | 'tag' | 'group'; path: string };

export function parseCpOperand(arg: string): CpOperand {
  const multi = /^(tag|group):([^:/]+):(\/.*)$/.exec(arg);
  if (multi) return { kind: 'remote', by: multi[1] as 'tag' | 'group', target: multi[2] as string, path: multi[3] as string };
  const one = /^([^:/]+):(\/.*)$/.exec(arg);
  if (one) return { kind: 'remote', by: 'satellite', target: one[1] as string, path: one[2] as string };
  return { kind: 'local', path: arg };
}

async function getJson<T>(auth: CliAuth & { apiKey: string }, p: string): Promise<T> {
  let res: Response;
  try {
    res = await hubFetch(auth, `${auth.url}${p}`, { headers: { 'x-api-key': auth.apiKey } });
  } catch (err) {
    throw fetchError(err, auth.url);
  }
  const body = (await res.json()) as { data?: T; error?: { code: string; message: string } };
  if (!res.ok || body.data === undefined) throw new ApiError(res.status, body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${res.status}`);
  return body.data;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

async function upload(auth: CliAuth & { apiKey: string }, local: string, dest: Extract<CpOperand, { kind: 'remote' }>, json: boolean): Promise<number> {
  const st = await stat(local).catch(() => {
    throw new ApiError(1, 'NOT_FOUND', `${local}: no such file`);
  });
  if (!st.isFile()) throw new ApiError(1, 'INVALID_PARAMETERS', `${local} is not a regular file`);
  const sha = await sha256File(local);
  let targets: string[];
  if (dest.by === 'satellite') targets = [dest.target];
  else if (dest.by === 'tag')
    targets = (await getJson<{ id: string }[]>(auth, `/api/v1/satellites/by-tag/${encodeURIComponent(dest.target)}`)).map((s) => s.id);
  else targets = (await getJson<{ satellites: { id: string }[] }>(auth, `/api/v1/groups/${encodeURIComponent(dest.target)}`)).satellites.map((s) => s.id);
  const results: { target: string; ok: boolean; bytes?: number; sha256?: string; error?: { code: string; message: string } }[] = [];
  for (const target of targets) {
    try {
      const res = await putFile(
        auth,
        `${auth.url}/api/v1/satellites/${encodeURIComponent(target)}/files?path=${encodeURIComponent(dest.path)}`,
        { 'x-api-key': auth.apiKey, 'content-type': 'application/octet-stream', 'content-length': String(st.size), 'x-hive-sha256': sha },
        local,
        (a) => process.stderr.write(approvalNote(a, target)),
      );
      const body = res.body;
      if (res.status < 300 && body.data?.sha256 === sha) results.push({ target, ok: true, bytes: body.data.bytes, sha256: body.data.sha256 });
      else results.push({ target, ok: false, error: body.error ?? { code: 'INTERNAL_ERROR', message: 'checksum mismatch' } });
    } catch (err) {
      const e = err instanceof ApiError ? err : fetchError(err, auth.url);
      results.push({ target, ok: false, error: { code: e.code, message: e.message } });
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  if (json) process.stdout.write(`${JSON.stringify({ results, summary: { total: results.length, succeeded: results.length - failed, failed } }, null, 2)}\n`);
  else {
    for (const r of results)
      process.stdout.write(r.ok ? `${r.target}\tok\t${r.bytes} bytes\tsha256 ${r.sha256}\n` : `${r.target}\tFAILED\t${r.error?.code}: ${r.error?.message}\n`);
    if (targets.length === 0) process.stderr.write('hive: no satellites matched\n');
  }
  return failed > 0 || targets.length === 0 ? 1 : 0;
}

async function download(auth: CliAuth & { apiKey: string }, src: Extract<CpOperand, { kind: 'remote' }>, local: string): Promise<void> {
  if (src.by !== 'satellite') throw new ApiError(1, 'INVALID_PARAMETERS', 'Download from one satellite at a time (sat:/path)');
  let dest = local;
  const st = await stat(local).catch(() => undefined);
  if (st?.isDirectory()) dest = path.join(local, path.basename(src.path));
  let res: Response;
  try {
    res = await hubFetch(auth, `${auth.url}/api/v1/satellites/${encodeURIComponent(src.target)}/files?path=${encodeURIComponent(src.path)}`, {
      headers: { 'x-api-key': auth.apiKey },
    });
  } catch (err) {
    throw fetchError(err, auth.url);
  }
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    throw new ApiError(res.status, body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${res.status}`);
  }
  const expected = res.headers.get('x-hive-sha256');
  // Temp file + rename: an interrupted or corrupted download never leaves a truncated file.
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.hive-${randomBytes(6).toString('hex')}.tmp`);
  const h = createHash('sha256');
  try {
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('data', (c: Buffer) => h.update(c));
    await pipeline(body, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const got = h.digest('hex');
    if (!expected || got !== expected)
      throw new ApiError(1, 'INTERNAL_ERROR', `checksum mismatch (hub ${expected ?? 'none'}, received ${got}); nothing written`);
    await rename(tmp, dest);
    process.stdout.write(`${dest}\t${got}\n`);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (err instanceof ApiError) throw err;
    throw new ApiError(1, 'INTERNAL_ERROR', `download failed: ${(err as Error).message}; nothing written`);
  }
}

/** `hive ssh`, `hive cp` and `hive sessions …`: terminal sessions and file transfer through the hub. */
export function addSessionCommands(program: Command): void {
  program
    .command('ssh <satellite> [command...]')
    .description('Open an interactive terminal on a satellite through the hub (`hive ssh web-1 -- uname -a` runs one command); exits with the remote status')
    .action(async (satellite: string, command: string[], _o: unknown, cmd: Command) => {
      const code = await ssh(authOf(cmd), satellite, command ?? []);
      process.exit(code);
    });

  program
    .command('cp <src> <dst>')
    .description(
      'Copy a file to or from satellites through the hub: `hive cp ./f web-1:/tmp/f`, `hive cp web-1:/var/log/x.log .`, `hive cp ./f tag:web:/tmp/f` (per-target results); sha256 checked end to end',
    )
    .option('--json', 'JSON output (uploads)')
    .action(async (src: string, dst: string, o: { json?: boolean }, cmd: Command) => {
      const auth = authOf(cmd);
      const a = parseCpOperand(src);
      const b = parseCpOperand(dst);
      if (a.kind === 'local' && b.kind === 'remote') process.exitCode = await upload(auth, a.path, b, !!o.json);
      else if (a.kind === 'remote' && b.kind === 'local') await download(auth, a, b.path);
      else
        throw new ApiError(
          1,
          'INVALID_PARAMETERS',
          'One side must be local and the other sat:/absolute/path (or tag:NAME:/path, group:NAME:/path for uploads)',
        );
    });

  const sessions = program.command('sessions').description('Terminal sessions and their recordings');
  sessions
    .command('play <id>')
    .description('Replay a recorded session (asciicast v2) in this terminal')
    .option('--speed <n>', 'playback speed factor', '1')
    .option('--max-wait <s>', 'longest pause between outputs, seconds', '2')
    .action(async (id: string, o: { speed: string; maxWait: string }, cmd: Command) => {
      const speed = Number(o.speed);
      const maxWait = Number(o.maxWait);
      if (!(speed > 0) || !(maxWait >= 0)) throw new ApiError(1, 'INVALID_PARAMETERS', '--speed must be > 0 and --max-wait ≥ 0');
      await play(authOf(cmd), id, speed, maxWait);
    });
  sessions
    .command('list [satellite]')
    .description('Terminal sessions, newest first: of one satellite or the whole fleet (kept in the hub database, also after restarts)')
    .option('--state <state>', 'live (waiting for approval, opening, active), ended or all', 'all')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'JSON output')
    .action(async (satellite: string | undefined, o: { json?: boolean; state: string; limit: string }, cmd: Command) => {
      const auth = authOf(cmd);
      if (!['live', 'ended', 'all'].includes(o.state)) throw new ApiError(1, 'INVALID_PARAMETERS', '--state is live, ended or all');
      const q = `state=${encodeURIComponent(o.state)}&per_page=${encodeURIComponent(o.limit)}`;
      const url = satellite ? `${auth.url}/api/v1/satellites/${encodeURIComponent(satellite)}/sessions?${q}` : `${auth.url}/api/v1/sessions?${q}`;
      let res: Response;
      try {
        res = await hubFetch(auth, url, { headers: { 'x-api-key': auth.apiKey } });
      } catch (err) {
        throw fetchError(err, auth.url);
      }
      const body = (await res.json()) as {
        data?: {
          id: string;
          satellite_slug: string;
          status: string;
          created_at: string;
          end_reason: string | null;
          exit_code: number | null;
          command: string | null;
        }[];
        error?: { code: string; message: string };
      };
      if (!res.ok || !body.data) throw new ApiError(res.status, body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${res.status}`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(body.data, null, 2)}\n`);
        return;
      }
      for (const s of body.data)
        process.stdout.write(`${s.id}\t${s.satellite_slug}\t${s.status}\t${s.created_at}\t${s.end_reason ?? ''}\t${s.exit_code ?? ''}\t${s.command ?? ''}\n`);
    });
}
