import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { HelloResult } from '@hive/protocol';
import { HiveClient, type HiveClientOptions, type HubTlsOptions, loadOrCreateIdentity, parseInvoke, type RequestContext, TokenStore } from '@hive/sdk';
import type { AgentLog, CommandContext } from './commands/index.js';
import type { AgentConfig } from './config.js';
import { HiveError } from './lib/protocol-lite.js';
import { enableBaselineCompiler, enableOptimizingCompiler } from './lib/tiering.js';
import { compilePolicy, enabledCommands, type Policy, policySummary } from './policy.js';
import type { SessionHost } from './sessions.js';
import { startStatusReports } from './status.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** Hub WebSocket URL (ws://host:port/ws); http(s):// is accepted and converted. */
  hub: string;
  stateDir: string;
  name?: string | undefined;
  tags?: string[] | undefined;
  config: AgentConfig;
  /** The config file the agent was started with; blocked for remote file access. */
  configFile?: string | undefined;
  /** Trust in the hub's TLS certificate (flags); `config.hub_fingerprint` / `ca_file` / `trust_on_first_use` fill the gaps. */
  tls?: HubTlsOptions | undefined;
  /** Extra ws client options (tests bind a local address). */
  wsOptions?: ConstructorParameters<typeof HiveClient>[0]['wsOptions'];
  log?: AgentLog;
}

export function hubWsUrl(hub: string): string {
  const u = new URL(hub);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

/**
 * Handles a hub request on the node. The hub's word is never enough: the invoke's deadline is
 * checked, then the local policy and the params again, then the handler runs.
 *
 * The command handlers, file transfers and PTY sessions (node-pty, their zod schemas), and the
 * protocol's schemas with zod, are loaded on first use, not at start: the handshake needs none of
 * them, and an idle agent should not carry them (SPEC: idle RSS under 50 MB; lib/protocol-lite.ts).
 * `sessions` may be a loader for the same reason. The invoke itself is checked with the SDK's
 * zod-free `parseInvoke` (the rules of `InvokeParams`, under half the cost of zod's parse).
 */
export async function handleInvoke(
  ctx: CommandContext,
  method: string,
  raw: unknown,
  req: Partial<RequestContext> = {},
  sessions?: SessionHost | (() => Promise<SessionHost>),
): Promise<unknown> {
  // Resizing a session the hub opened with a signed invoke: bound to the live session id.
  if (method === 'session.resize' && sessions) return (typeof sessions === 'function' ? await sessions() : sessions).resize(raw);
  if (method !== 'invoke') throw new HiveError('UNKNOWN_METHOD', `Unknown method ${method}`);
  enableBaselineCompiler(); // an agent at work: see lib/tiering.ts
  const inv = parseInvoke(raw);
  if (!inv) throw new HiveError('INVALID_PARAMETERS', 'Malformed invoke');
  const { command, params, deadline, correlationId } = inv;
  if (Date.now() > deadline) throw new HiveError('TIMEOUT', 'Command deadline already passed; refusing to start');
  const started = Date.now();
  if (command === 'file.push') return (await import('./transfer.js')).filePush(params, ctx.policy, req, ctx.log);
  if (command === 'file.pull') {
    enableOptimizingCompiler(); // bulk upload: see lib/tiering.ts
    return (await import('./transfer.js')).filePull(params, ctx.policy, req, ctx.log);
  }
  if (command === 'session.open') {
    if (!sessions) throw new HiveError('UNKNOWN_COMMAND', 'This satellite does not serve session.open');
    return (typeof sessions === 'function' ? await sessions() : sessions).open(params, req);
  }
  try {
    const { runCommand } = await import('./commands/index.js');
    // `signal` read only by the commands that use it (the SDK makes its AbortController on first read).
    const invoke = {
      get signal() {
        return req.signal;
      },
      deadline,
      correlationId,
      output: req.output,
    };
    const result = await runCommand(ctx, command, params, invoke);
    ctx.log('debug', 'command ran', { command, correlationId, ms: Date.now() - started });
    return result;
  } catch (err) {
    const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
    ctx.log(e.code === 'PERMISSION_DENIED' ? 'warn' : 'debug', 'command refused or failed', { command, correlationId, code: e.code, error: e.message });
    throw e;
  }
}

export interface RunningAgent {
  client: HiveClient;
  deviceId: string;
  policy: Policy;
  ready: Promise<HelloResult>;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log: AgentLog = opts.log ?? (() => {});
  const identity = await loadOrCreateIdentity(opts.stateDir);
  const policy = compilePolicy(opts.config, { stateDir: opts.stateDir, configFile: opts.configFile });
  const ctx: CommandContext = { policy, version: AGENT_VERSION, log };
  // PTY sessions (node-pty, zod schemas) are set up at the first session.open.
  let sessionHost: Promise<SessionHost> | undefined;
  const sessions = () => {
    sessionHost ??= import('./sessions.js').then((m) => m.createSessionHost(policy, log));
    return sessionHost;
  };
  // The effective policy travels in `connect` so operators see it on the hub (ConnectParams.policy).
  const clientOpts: HiveClientOptions & { policy?: Record<string, unknown> } = {
    url: hubWsUrl(opts.hub),
    role: 'node',
    identity,
    tokenStore: new TokenStore(opts.stateDir),
    client: {
      name: 'hive-agent',
      version: AGENT_VERSION,
      platform: os.platform(),
      arch: os.arch(),
      hostname: os.hostname(),
      osRelease: os.release(),
      ...(opts.name ? { displayName: opts.name } : {}),
    },
    ...(opts.tags?.length ? { tags: opts.tags } : {}),
    commands: enabledCommands(opts.config),
    policy: policySummary(policy),
    onRequest: (method, params, req) => handleInvoke(ctx, method, params, req, sessions),
    ...(opts.wsOptions ? { wsOptions: opts.wsOptions } : {}),
    tls: {
      fingerprint: opts.tls?.fingerprint ?? opts.config.hub_fingerprint,
      ca: opts.tls?.ca ?? (opts.config.ca_file ? await readFile(opts.config.ca_file) : undefined),
      tofu: opts.tls?.tofu ?? opts.config.trust_on_first_use,
    },
  };
  const client = new HiveClient(clientOpts);
  client.on('pairing', (p: { requestId?: string }) =>
    log('warn', 'waiting for an operator to approve pairing', {
      requestId: p.requestId,
      deviceId: identity.deviceId,
      approve: `hive pairing approve ${p.requestId}`,
    }),
  );
  client.on('hello', (h: HelloResult) => log('info', 'connected', { slug: h.slug, deviceId: h.deviceId, hub: h.hubId }));
  client.on('tls-pinned', (p: { fingerprint: string; mode: string }) =>
    log('warn', p.mode === 'ca' ? 'hub certificate is CA-signed; CA verification required from now on' : 'pinned the hub certificate (trust on first use)', p),
  );
  client.on('disconnected', (d: { code: number; reason: string }) => log('warn', 'disconnected', d));
  client.on('reconnecting', (ms: number) => log('info', 'reconnecting', { inMs: ms }));
  client.on('invoke-refused', (r: { reason: string; correlationId?: string; command?: string }) => log('warn', 'invoke refused', r));
  const status = startStatusReports(client, policy, log);
  const ready = client.start();
  ready.catch(() => {});
  return {
    client,
    deviceId: identity.deviceId,
    policy,
    ready,
    stop: async () => {
      status.stop();
      if (sessionHost) (await sessionHost).closeAll('agent stopping');
      await client.close();
    },
  };
}
