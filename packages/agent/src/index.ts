export { AGENT_VERSION, type AgentOptions, handleInvoke, hubWsUrl, type RunningAgent, startAgent } from './agent.js';
export { agentCommand, defaultStateDir } from './cli.js';
export { type AgentLog, type CommandContext, runCommand } from './commands/index.js';
export { LOG_RULES } from './commands/logs-analyze.js';
export { SCRIPT_ERROR_CODES, SCRIPT_EXIT_CODES } from './commands/script.js';
export { matchAllow, SAFE_PATH } from './commands/system-run.js';
export {
  type AgentConfig,
  type AgentConfigInput,
  AgentConfigSchema,
  DEFAULT_ALLOW,
  DEFAULT_ALLOWED_PATHS,
  DEFAULT_BLOCKED_PATHS,
  loadAgentConfig,
  parseAgentConfig,
} from './config.js';
export { blockedArgv, commandRefusal, compilePolicy, enabledCommands, type Policy, policySummary } from './policy.js';
export { buildStatusReport } from './status.js';
