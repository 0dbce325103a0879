import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { HiveError } from '@hive/protocol';
import { normalizeFingerprint } from '@hive/sdk';
import { startAgent } from './agent.js';
import type { AgentLog } from './commands/index.js';
import type { AgentConfig } from './config.js';
import { readAgentConfig } from './config-defaults.js';
import { isoTimestamp } from './lib/time.js';

/**
 * What `hive-agent` runs, without commander. The launcher (bin/hive-agent.js) parses the usual
 * command line here with node's own parseArgs; `--help`, `--version` and anything this parser
 * refuses go to the commander command (cli.ts), built from the same options, which answers
 * exactly as before. Commander and its help stay out of an idle agent's heap (SPEC: idle RSS
 * under 50 MB); launch.test.ts checks both parsers agree.
 */

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export type AgentFlags = {
  hub: string;
  state: string;
  name?: string;
  tags?: string;
  config?: string;
  logLevel: string;
  hubFingerprint?: string;
  caFile?: string;
};

export function defaultStateDir(): string {
  return process.env.HIVE_AGENT_STATE ?? path.join(os.homedir(), '.hive-agent');
}

/** The agent's options: `flags` as commander spells them, and the default (read when parsing). */
export const AGENT_OPTIONS: readonly { flags: string; description: string; default?: () => string | undefined }[] = [
  { flags: '--hub <url>', description: 'hub URL (ws://host:7420/ws or http://host:7420)', default: () => process.env.HIVE_HUB ?? 'ws://127.0.0.1:7420/ws' },
  { flags: '--state <dir>', description: 'state directory (device key, token)', default: defaultStateDir },
  { flags: '--name <name>', description: 'display name for this satellite (default: hostname)' },
  { flags: '--tags <list>', description: 'comma-separated tags requested at pairing' },
  { flags: '--config <file>', description: 'agent config (YAML): policy, allowlist, paths, scripts, limits', default: () => process.env.HIVE_AGENT_CONFIG },
  { flags: '--log-level <level>', description: 'debug | info | warn | error', default: () => process.env.HIVE_AGENT_LOG_LEVEL ?? 'info' },
  {
    flags: '--hub-fingerprint <sha256>',
    description: "pin the hub's TLS certificate (sha256:AB:CD:…, from `hive server fingerprint`)",
    default: () => process.env.HIVE_HUB_FINGERPRINT,
  },
  { flags: '--ca-file <file>', description: "verify the hub's TLS certificate against this CA (PEM) instead", default: () => process.env.HIVE_CA_FILE },
];

/** `--log-level <level>` → `log-level`; its key in the flags: `logLevel`. */
const longName = (flags: string) => flags.slice(2, flags.indexOf(' '));
const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The flags commander would hand to the action for these arguments (`process.argv.slice(2)`), or
 * undefined for anything but `--option value` / `--option=value` pairs of the options above
 * (help, version, unknown options, operands, a value that looks like an option): commander then
 * parses them itself, with its own messages.
 */
export function parseAgentArgs(args: readonly string[]): AgentFlags | undefined {
  if (args.includes('--')) return undefined;
  const options = Object.fromEntries(AGENT_OPTIONS.map((o) => [longName(o.flags), { type: 'string' as const }]));
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch {
    return undefined;
  }
  const flags: Record<string, string> = {};
  for (const o of AGENT_OPTIONS) {
    const name = longName(o.flags);
    const value = (values[name] as string | undefined) ?? o.default?.();
    if (value !== undefined) flags[camel(name)] = value;
  }
  return flags as AgentFlags;
}

/** Runs the agent until SIGINT/SIGTERM; exits non-zero on a bad config or a fatal hub answer. */
export async function runAgent(o: AgentFlags): Promise<void> {
  const min = LEVELS.indexOf(o.logLevel as (typeof LEVELS)[number]);
  const log: AgentLog = (level, msg, fields = {}) => {
    if (LEVELS.indexOf(level) < (min < 0 ? 1 : min)) return;
    process.stdout.write(`${JSON.stringify({ level, time: isoTimestamp(), svc: 'hive-agent', msg, ...fields })}\n`);
  };
  const configFile = path.resolve(o.config ?? path.join(o.state, 'agent.yaml'));
  let config: AgentConfig;
  try {
    config = await readAgentConfig(configFile);
  } catch (err) {
    process.stderr.write(`hive-agent: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Flags win over agent.yaml's hub_fingerprint / ca_file.
  const tls: { fingerprint?: string; ca?: Buffer } = {};
  const caFile = o.caFile ?? config.ca_file;
  try {
    if (o.hubFingerprint) tls.fingerprint = normalizeFingerprint(o.hubFingerprint);
  } catch (err) {
    process.stderr.write(`hive-agent: --hub-fingerprint: ${(err as Error).message}\n`);
    process.exit(2);
  }
  try {
    if (caFile) tls.ca = readFileSync(caFile);
  } catch (err) {
    process.stderr.write(`hive-agent: ca_file ${caFile}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const agent = await startAgent({
    hub: o.hub,
    stateDir: path.resolve(o.state),
    name: o.name,
    tags: o.tags
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    config,
    configFile,
    log,
    tls,
  });
  log('info', 'starting', { deviceId: agent.deviceId, hub: o.hub, state: o.state });
  agent.client.on('fatal', (e: HiveError) => {
    process.stderr.write(`hive-agent: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'PROTOCOL_VERSION' ? 3 : 1);
  });
  const stop = async () => {
    await agent.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
export { deferOptimizingCompiler } from './lib/tiering.js';
