import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import type { HubConfig } from '../config.js';
import type { AuditService } from '../features/audit/audit-service.js';
import type { AuthService } from '../features/auth/auth-service.js';
import type { HiveApp } from '../http/app.js';
import type { Db } from '../store/db.js';

export interface AiWiringDeps {
  app: HiveApp;
  db: Db;
  config: HubConfig;
  audit: AuditService;
  auth: AuthService;
  bus: Bus;
  logger: Logger;
}

/** Vault, task spawner and chat router: services and routes. Returns what shutdown must stop. */
export async function wireAi(_deps: AiWiringDeps): Promise<{ close(): Promise<void> }> {
  return { close: async () => {} };
}
