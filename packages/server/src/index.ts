export { type Bus, createLocalBus, type NodeLink } from './bus/bus.js';
export { ConfigError, ConfigSchema, type HubConfig, type HubConfigInput, isLoopbackHost, loadConfig, substituteEnv } from './config.js';
export type { ChainProblem, ChainReport, VerifyReport } from './features/audit/audit-chain.js';
export { createApp, type RouteEntry, routeTables } from './http/app.js';
export { mintToken } from './lib/ids.js';
export { redact, redactArgv } from './lib/redact.js';
export { type BuildOptions, buildHub, HUB_VERSION, type Hub } from './main.js';
export { type DbConfig, openStore, type Store } from './store/db.js';
export { certPaths, type HubCert, loadOrCreateHubCert, tlsEnabled } from './tls/hub-cert.js';
