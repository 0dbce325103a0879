import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HiveClient, secureConnector } from '@hive/sdk';
import { type BuildOptions, buildHub, type Hub, type HubConfigInput, loadConfig, mintToken } from '@hive/server';
import pino from 'pino';
import { afterAll } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const HIVE_BIN = path.join(ROOT, 'packages/cli/bin/hive.js');
export const AGENT_BIN = path.join(ROOT, 'packages/agent/bin/hive-agent.js');

const tempDirs = new Set<string>();
// Everything a test file made under the temp dir goes after its tests (registered on the file
// importing this module; after-all hooks run last-registered first, so the file's own ones, which
// close hubs and agents, run before this).
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
});

/** A fresh directory under the system temp dir, removed after the test file's tests. */
export function tempDir(prefix = 'hive-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export interface TestHub {
  hub: Hub;
  url: string;
  wsUrl: string;
  port: number;
  adminKey: string;
  dataDir: string;
  logs: string[];
  /** The hub's certificate fingerprint when it serves TLS (`opts.tls`). */
  fingerprint?: string | undefined;
  close(): Promise<void>;
  api<T = any>(method: string, p: string, body?: unknown, key?: string): Promise<{ status: number; body: T }>;
}

/** Any top-level server.yaml sections (pairing, limits, agents, database, approvals, vault, tasks, chat, …). */
type Overrides = { [K in keyof HubConfigInput]?: NonNullable<HubConfigInput[K]> };

/** A real hub on an ephemeral port with a real SQLite file; logs are captured for secret checks. */
export async function startHub(
  opts: {
    dataDir?: string;
    port?: number;
    adminKey?: string;
    overrides?: Overrides;
    build?: Omit<BuildOptions, 'logger'>;
    /** Serve HTTPS/WSS with the self-signed certificate under the data dir (same as `overrides.tls.enabled`). */
    tls?: boolean;
  } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? tempDir();
  const adminKey = opts.adminKey ?? mintToken('hive').token;
  const file = path.join(dataDir, 'server.yaml');
  const o = opts.tls ? { ...opts.overrides, tls: { ...opts.overrides?.tls, enabled: true } } : (opts.overrides ?? {});
  writeFileSync(file, JSON.stringify(o));

  const config = loadConfig({ file, env: { ADMIN_API_KEY: adminKey }, overrides: { port: opts.port ?? 0, dataDir, host: '127.0.0.1' } });
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  const hub = await buildHub(config, { logger, ...opts.build });
  const { url, port } = await hub.listen();
  const fingerprint = hub.tls?.fingerprint;
  const api = restClient(url, adminKey, fingerprint);
  return { hub, url, wsUrl: `${url.replace('http', 'ws')}/ws`, port, adminKey, dataDir, logs, fingerprint, close: () => hub.close(), api };
}

/** A REST call to an https hub whose certificate must have this fingerprint (text bodies only). */
export function pinnedFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }, fingerprint: string): Promise<Response> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: init.method,
        headers: init.headers,
        createConnection: secureConnector({ mode: 'pin', fingerprint }) as unknown as https.RequestOptions['createConnection'],
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve(
            new Response([204, 304].includes(res.statusCode ?? 0) ? null : Buffer.concat(chunks).toString('utf8'), {
              status: res.statusCode ?? 500,
              headers: res.headers as Record<string, string>,
            }),
          ),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `api(method, path, body?, key?)` against a hub's REST API (pinned to `fingerprint` over https); the body is parsed JSON (or `{ raw }`). */
export function restClient(url: string, defaultKey: string, fingerprint?: string): TestHub['api'] {
  return async (method: string, p: string, body?: unknown, key: string = defaultKey) => {
    const init = {
      method,
      headers: { 'x-api-key': key, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    };
    const res = fingerprint ? await pinnedFetch(`${url}${p}`, init, fingerprint) : await fetch(`${url}${p}`, init);
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { raw: text }; // e.g. an SSE stream
    }
    return { status: res.status, body: parsed };
  };
}

/** An operator connection (admin key) that records every event, for waiting on them. */
export async function operator(
  t: TestHub,
  key = t.adminKey,
): Promise<HiveClient & { waitEvent(name: string, pred?: (p: any) => boolean, timeoutMs?: number): Promise<any> }> {
  const c = new HiveClient({
    url: t.wsUrl,
    role: 'operator',
    apiKey: key,
    client: { name: 'test-operator', version: '0' },
    reconnect: false,
    ...(t.fingerprint ? { tls: { fingerprint: t.fingerprint } } : {}),
  }) as any;
  const seen: { name: string; payload: any }[] = [];
  c.on('event', (name: string, payload: any) => seen.push({ name, payload }));
  c.waitEvent = (name: string, pred: (p: any) => boolean = () => true, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const hit = seen.find((e) => e.name === name && pred(e.payload));
      if (hit) return resolve(hit.payload);
      const timer = setTimeout(() => {
        c.off('event', on);
        // What did come, for the failure message: the last few events of that name.
        const last = seen
          .filter((e) => e.name === name)
          .slice(-3)
          .map((e) => JSON.stringify(e.payload).slice(0, 300));
        reject(
          new Error(
            `timed out waiting for event ${name}; ${last.length ? `last seen: ${last.join(' | ')}` : 'none of that name seen'}; last events: ${seen
              .slice(-5)
              .map((e) => e.name)
              .join(', ')}`,
          ),
        );
      }, timeoutMs);
      const on = (n: string, p: any) => {
        if (n === name && pred(p)) {
          clearTimeout(timer);
          c.off('event', on);
          resolve(p);
        }
      };
      c.on('event', on);
    });
  await c.start();
  return c;
}

/** A TCP port free on 127.0.0.1 right now (for a process the test starts itself). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * After a hub restart: returns once satellite `id` is online on hub `t` again. The node may be back
 * before `op` subscribed (its event then came and went); the new hub starts with every row
 * offline, so a row that says online is the node back, and otherwise its event is still to come
 * (`op` keeps every event since it connected).
 */
export async function backOnline(t: TestHub, op: { waitEvent(name: string, pred?: (p: any) => boolean): Promise<any> }, id: string): Promise<void> {
  if ((await t.api('GET', `/api/v1/satellites/${encodeURIComponent(id)}`)).body.data?.status === 'online') return;
  await op.waitEvent('satellite:online', (p) => p.id === id);
}

export interface AgentProc {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout JSON line matching, waiting for it if needed. */
  waitLine(pred: (l: any) => boolean, timeoutMs?: number): Promise<any>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A real hive-agent process. */
export function spawnAgent(hubWsUrl: string, stateDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): AgentProc {
  const proc = spawn(process.execPath, [AGENT_BIN, '--hub', hubWsUrl, '--state', stateDir, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const listeners = new Set<(l: any) => void>();
  let buf = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      stdout.push(line);
      let parsed: any = null;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = { raw: line };
      }
      for (const l of listeners) l(parsed);
      i = buf.indexOf('\n');
    }
  });
  proc.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    stdout,
    stderr,
    exited,
    waitLine(pred, timeoutMs = 20_000) {
      for (const l of stdout) {
        try {
          if (pred(JSON.parse(l))) return Promise.resolve(JSON.parse(l));
        } catch {
          /* not JSON */
        }
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(on);
          reject(new Error(`agent line not seen; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('')}`));
        }, timeoutMs);
        const on = (l: any) => {
          if (pred(l)) {
            clearTimeout(timer);
            listeners.delete(on);
            resolve(l);
          }
        };
        listeners.add(on);
        void exited.then(() => {
          if (listeners.has(on)) {
            clearTimeout(timer);
            listeners.delete(on);
            reject(new Error(`agent exited before the line; stderr: ${stderr.join('')}`));
          }
        });
      });
    },
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await exited;
      }
    },
  };
}

/** Runs the `hive` CLI to completion; `stdin` (when given) is written to it, else stdin is closed. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [HIVE_BIN, ...args], {
      env: { ...process.env, XDG_CONFIG_HOME: tempDir('hive-cli-'), ...env },
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d) => {
      stdout += d;
    });
    p.stderr?.on('data', (d) => {
      stderr += d;
    });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    if (stdin !== undefined) p.stdin?.end(stdin);
  });
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
