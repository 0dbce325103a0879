import { HiveError, isNodeCommand, isScriptCommand, NODE_COMMANDS, type NodeCommandName, type NodeCommandParams, SCRIPT_COMMAND_PREFIX } from '@hive/protocol';
import { commandRefusal, type Policy } from '../policy.js';
import { containerList } from './container-list.js';
import { containerSpawn } from './container-spawn.js';
import { containerStop } from './container-stop.js';
import { fileList } from './file-list.js';
import { fileRead } from './file-read.js';
import { fileWrite } from './file-write.js';
import { logsAnalyze } from './logs-analyze.js';
import { logsCollect } from './logs-collect.js';
import { logsSearch } from './logs-search.js';
import { power } from './power.js';
import { processList } from './process-list.js';
import { runScript } from './script.js';
import { serviceStatus } from './service-status.js';
import { systemHealth } from './system-health.js';
import { systemInfo } from './system-info.js';
import { systemMetrics } from './system-metrics.js';
import { systemRun } from './system-run.js';
import { taskRun } from './task-run.js';

export type AgentLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface CommandContext {
  policy: Policy;
  version: string;
  log: AgentLog;
}

export interface InvokeContext {
  signal?: AbortSignal | undefined;
  deadline?: number | undefined;
  correlationId?: string | undefined;
  /** Streams partial output to the hub (relayed to operators as job:output). */
  output?: ((stream: 'stdout' | 'stderr', data: string) => void) | undefined;
}

type Handlers = { [C in NodeCommandName]: (p: NodeCommandParams<C>, ctx: CommandContext, inv: InvokeContext) => unknown };

const handlers: Handlers = {
  'system.info': (_p, ctx) => systemInfo(ctx.version),
  'system.health': () => systemHealth(),
  'system.metrics': () => systemMetrics(),
  'process.list': (p) => processList(p),
  'service.status': (p, ctx, inv) => serviceStatus(p, ctx.policy.config.services.watch, inv.signal),
  'logs.collect': (p, ctx, inv) => logsCollect(p, { policy: ctx.policy, config: ctx.policy.config, signal: inv.signal, deadline: inv.deadline }),
  'logs.search': (p, ctx, inv) => logsSearch(p, { policy: ctx.policy, config: ctx.policy.config, signal: inv.signal, deadline: inv.deadline }),
  'logs.analyze': (p, ctx, inv) => logsAnalyze(p, { policy: ctx.policy, config: ctx.policy.config, signal: inv.signal, deadline: inv.deadline }),
  'file.read': (p, ctx) => fileRead(p, ctx.policy),
  'file.write': (p, ctx) => fileWrite(p, ctx.policy),
  'file.list': (p, ctx) => fileList(p, ctx.policy),
  'container.list': (p, ctx) => containerList(p, ctx.policy.config.containers),
  'container.spawn': (p, ctx) => containerSpawn(p, ctx.policy.config.containers),
  'container.stop': (p, ctx) => containerStop(p, ctx.policy.config.containers),
  power: (p, ctx) => {
    const r = power(p, ctx.policy.config, (err) => ctx.log('error', 'power action failed', { error: err.message }));
    ctx.log('warn', 'power action scheduled', { action: r.action, at: r.scheduledAt, reason: p.reason });
    return r;
  },
  'system.run': (p, ctx, inv) => systemRun(p, ctx.policy.config, inv.signal, inv.output),
  'task.run': (p, ctx, inv) => taskRun(p, ctx.policy.config, inv.signal, inv.output),
};

/**
 * Runs one command under the local policy: refused with PERMISSION_DENIED when a policy switch
 * turns it off (whatever the hub says), params re-validated against the catalog (or the script's
 * declaration), then the handler.
 */
export async function runCommand(ctx: CommandContext, command: string, params: unknown, inv: InvokeContext = {}): Promise<unknown> {
  if (!isNodeCommand(command) && !isScriptCommand(command)) throw new HiveError('UNKNOWN_COMMAND', `This satellite does not serve ${command}`);
  const refusal = commandRefusal(ctx.policy.config, command);
  if (refusal) {
    if (isScriptCommand(command)) throw new HiveError('UNKNOWN_COMMAND', refusal);
    throw new HiveError('PERMISSION_DENIED', refusal, { command });
  }
  if (!isNodeCommand(command)) {
    const name = command.slice(SCRIPT_COMMAND_PREFIX.length);
    return runScript(name, ctx.policy.config.scripts[name] as NonNullable<(typeof ctx.policy.config.scripts)[string]>, params, inv);
  }
  const parsed = NODE_COMMANDS[command].params.safeParse(params ?? {});
  if (!parsed.success) {
    throw new HiveError('INVALID_PARAMETERS', `Invalid params for ${command}`, { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  const handler = handlers[command] as (p: unknown, ctx: CommandContext, inv: InvokeContext) => unknown;
  return handler(parsed.data, ctx, inv);
}
