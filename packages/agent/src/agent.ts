import os from 'node:os';
import { type HelloResult, HiveError, InvokeParams, isNodeCommand, NODE_COMMANDS } from '@hive/protocol';
import { HiveClient, loadOrCreateIdentity, type RequestContext, TokenStore } from '@hive/sdk';
import { systemInfo } from './commands/system-info.js';
import { systemRun } from './commands/system-run.js';
import type { AgentConfig } from './config.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** Hub WebSocket URL (ws://host:port/ws); http(s):// is accepted and converted. */
  hub: string;
  stateDir: string;
  name?: string | undefined;
  tags?: string[] | undefined;
  config: AgentConfig;
  /** Extra ws client options (tests bind a local address). */
  wsOptions?: ConstructorParameters<typeof HiveClient>[0]['wsOptions'];
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export function hubWsUrl(hub: string): string {
  const u = new URL(hub);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

/** Local policy first, then the handler. The hub's word is never enough. */
async function handleInvoke(cfg: AgentConfig, method: string, raw: unknown, ctx: RequestContext): Promise<unknown> {
  if (method !== 'invoke') throw new HiveError('UNKNOWN_METHOD', `Unknown method ${method}`);
  const inv = InvokeParams.safeParse(raw);
  if (!inv.success) throw new HiveError('INVALID_PARAMETERS', 'Malformed invoke');
  const { command, params, deadline } = inv.data;
  if (Date.now() > deadline) throw new HiveError('TIMEOUT', 'Command deadline already passed; refusing to start');
  if (!isNodeCommand(command)) throw new HiveError('UNKNOWN_COMMAND', `This satellite does not serve ${command}`);
  const parsed = NODE_COMMANDS[command].params.safeParse(params ?? {});
  if (!parsed.success) {
    throw new HiveError('INVALID_PARAMETERS', `Invalid params for ${command}`, { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  switch (command) {
    case 'system.info':
      return systemInfo(AGENT_VERSION);
    case 'system.run':
      return systemRun(parsed.data as never, cfg.system_run, ctx.signal);
  }
}

export interface RunningAgent {
  client: HiveClient;
  deviceId: string;
  ready: Promise<HelloResult>;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = opts.log ?? (() => {});
  const identity = await loadOrCreateIdentity(opts.stateDir);
  const commands = Object.keys(NODE_COMMANDS).filter((c) => c !== 'system.run' || opts.config.system_run.enabled);
  const client = new HiveClient({
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
    commands,
    onRequest: (method, params, ctx) => handleInvoke(opts.config, method, params, ctx),
    ...(opts.wsOptions ? { wsOptions: opts.wsOptions } : {}),
  });
  client.on('pairing', (p: { requestId?: string }) =>
    log('warn', 'waiting for an operator to approve pairing', {
      requestId: p.requestId,
      deviceId: identity.deviceId,
      approve: `hive pairing approve ${p.requestId}`,
    }),
  );
  client.on('hello', (h: HelloResult) => log('info', 'connected', { slug: h.slug, deviceId: h.deviceId, hub: h.hubId }));
  client.on('disconnected', (d: { code: number; reason: string }) => log('warn', 'disconnected', d));
  client.on('reconnecting', (ms: number) => log('info', 'reconnecting', { inMs: ms }));
  const ready = client.start();
  ready.catch(() => {});
  return { client, deviceId: identity.deviceId, ready, stop: () => client.close() };
}
