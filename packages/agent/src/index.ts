export { AGENT_VERSION, type AgentOptions, hubWsUrl, type RunningAgent, startAgent } from './agent.js';
export { agentCommand, defaultStateDir } from './cli.js';
export { matchAllow, SAFE_PATH } from './commands/system-run.js';
export { type AgentConfig, AgentConfigSchema, DEFAULT_ALLOW, loadAgentConfig } from './config.js';
