import { Command } from 'commander';
import { AGENT_VERSION } from './agent.js';
import { AGENT_OPTIONS, type AgentFlags, runAgent } from './launch.js';

/** `hive-agent` / `hive agent`: runs until SIGINT/SIGTERM, exits non-zero on a fatal hub answer. */
export function agentCommand(name = 'hive-agent'): Command {
  const cmd = new Command(name).description('Run the Hive agent: connects out to the hub and serves allowlisted commands');
  for (const o of AGENT_OPTIONS) cmd.option(o.flags, o.description, o.default?.());
  return cmd.version(AGENT_VERSION).action((o: AgentFlags) => runAgent(o));
}

export { defaultStateDir } from './launch.js';
export { deferOptimizingCompiler } from './lib/tiering.js';
