import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HiveError } from '@hive/protocol';
import { normalizeFingerprint } from '@hive/sdk';
import { Command } from 'commander';
import { AGENT_VERSION, startAgent } from './agent.js';
import type { AgentLog } from './commands/index.js';
import type { AgentConfig } from './config.js';
import { readAgentConfig } from './config-defaults.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

type Flags = { hub: string; state: string; name?: string; tags?: string; config?: string; logLevel: string; hubFingerprint?: string; caFile?: string };

export function defaultStateDir(): string {
  return process.env.HIVE_AGENT_STATE ?? path.join(os.homedir(), '.hive-agent');
}

/** `hive-agent` / `hive agent`: runs until SIGINT/SIGTERM, exits non-zero on a fatal hub answer. */
export function agentCommand(name = 'hive-agent'): Command {
  return new Command(name)
    .description('Run the Hive agent: connects out to the hub and serves allowlisted commands')
    .option('--hub <url>', 'hub URL (ws://host:7420/ws or http://host:7420)', process.env.HIVE_HUB ?? 'ws://127.0.0.1:7420/ws')
    .option('--state <dir>', 'state directory (device key, token)', defaultStateDir())
    .option('--name <name>', 'display name for this satellite (default: hostname)')
    .option('--tags <list>', 'comma-separated tags requested at pairing')
    .option('--config <file>', 'agent config (YAML): policy, allowlist, paths, scripts, limits', process.env.HIVE_AGENT_CONFIG)
    .option('--log-level <level>', 'debug | info | warn | error', process.env.HIVE_AGENT_LOG_LEVEL ?? 'info')
    .option('--hub-fingerprint <sha256>', "pin the hub's TLS certificate (sha256:AB:CD:…, from `hive server fingerprint`)", process.env.HIVE_HUB_FINGERPRINT)
    .option('--ca-file <file>', "verify the hub's TLS certificate against this CA (PEM) instead", process.env.HIVE_CA_FILE)
    .version(AGENT_VERSION)
    .action(async (o: Flags) => {
      const min = LEVELS.indexOf(o.logLevel as (typeof LEVELS)[number]);
      const log: AgentLog = (level, msg, fields = {}) => {
        if (LEVELS.indexOf(level) < (min < 0 ? 1 : min)) return;
        process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), svc: 'hive-agent', msg, ...fields })}\n`);
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
    });
}

export { deferOptimizingCompiler } from './lib/tiering.js';
