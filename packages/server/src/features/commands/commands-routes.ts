import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import type { CommandsService } from './commands-service.js';

export function registerCommandsRoutes(app: HiveApp, commands: CommandsService): void {
  app.post('/api/v1/satellites/:id/exec', {
    config: { scope: 'operator.write' },
    schema: {
      params: z.object({ id: z.string().trim().min(1).max(128) }),
      body: z
        .object({
          command: z.string().trim().min(1).max(128),
          params: z.record(z.string(), z.unknown()).default({}),
          timeout_ms: z.number().int().min(100).max(3_600_000).optional(),
        })
        .strict(),
    },
    handler: async (req) => ok(await commands.exec({ ...req.principal, ip: req.ip }, { satellite: req.params.id, ...req.body })),
  });

  app.get('/api/v1/commands/:id', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(128) }) },
    handler: async (req) => ok(await commands.get(req.principal, req.params.id)),
  });

  app.get('/api/v1/commands', {
    config: { scope: 'operator.read' },
    schema: {
      querystring: z.object({
        satellite: z.string().trim().max(128).optional(),
        state: z.enum(['pending_approval', 'running', 'succeeded', 'failed', 'timed_out', 'denied', 'cancelled']).optional(),
        page: z.coerce.number().int().min(1).default(1),
        per_page: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    handler: async (req) => {
      const q = req.query;
      const { items, total } = await commands.list(req.principal, q);
      return paginated(items, total, q.page, q.per_page);
    },
  });
}
