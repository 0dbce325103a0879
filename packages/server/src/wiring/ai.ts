import path from 'node:path';
import type { Logger } from 'pino';
import type { tasksServiceFactory as TasksFactory } from '../features/tasks/tasks-service.js';

type TasksDeps = Parameters<typeof TasksFactory>[0];

import type { Bus } from '../bus/bus.js';
import type { HubConfig } from '../config.js';
import type { AuditService } from '../features/audit/audit-service.js';
import type { AuthService } from '../features/auth/auth-service.js';
import { registerChatRoutes } from '../features/chat/chat-routes.js';
import { chatServiceFactory } from '../features/chat/chat-service.js';
import { registerTasksRoutes } from '../features/tasks/tasks-routes.js';
import { tasksServiceFactory } from '../features/tasks/tasks-service.js';
import { tasksStoreFactory } from '../features/tasks/tasks-store.js';
import { registerVaultRoutes } from '../features/vault/vault-routes.js';
import { vaultServiceFactory } from '../features/vault/vault-service.js';
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
  /** For remote tasks (`target_satellite`). */
  commands?: TasksDeps['commands'];
  resolveSatellite?: TasksDeps['resolveSatellite'];
}

/** Vault, task spawner and chat router: services and routes. Returns what shutdown must stop. */
export async function wireAi({ app, db, config, audit, bus, logger, commands, resolveSatellite }: AiWiringDeps) {
  const vault = vaultServiceFactory({ db, audit, logger: logger.child({ svc: 'vault' }), config: config.vault });
  const tasks = tasksServiceFactory({
    store: tasksStoreFactory({ db }),
    vault,
    audit,
    bus,
    commands,
    resolveSatellite,
    logger: logger.child({ svc: 'tasks' }),
    config: config.tasks,
    workDir: path.resolve(config.tasks.work_dir ?? path.join(config.server.data_dir, 'tasks')),
    defaultPath: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
  });
  const failed = await tasks.recover();
  if (failed) logger.warn({ tasks: failed }, 'tasks of the previous run marked failed');

  const chat = chatServiceFactory({ vault, audit, logger: logger.child({ svc: 'chat' }), config: config.chat });

  registerVaultRoutes(app, vault);
  registerTasksRoutes(app, tasks);
  registerChatRoutes(app, chat);

  return {
    services: { vault, tasks, chat },
    async close() {
      const ended = await tasks.shutdown();
      if (ended) logger.warn({ tasks: ended }, 'tasks ended by shutdown');
      vault.close();
    },
  };
}
