import type { Logger } from 'pino';
import type { HubConfig } from '../config.js';
import type { HiveApp } from '../http/app.js';
import type { HubServices } from '../main.js';

export interface McpWiringDeps {
  app: HiveApp;
  config: HubConfig;
  logger: Logger;
  services: HubServices;
}

/** MCP over Streamable HTTP at /mcp (tools come from the feature services). */
export async function wireMcp(_deps: McpWiringDeps): Promise<{ close(): Promise<void> }> {
  return { close: async () => {} };
}
