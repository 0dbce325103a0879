import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import type { TasksService } from './tasks-service.js';

const TaskId = z.object({ id: z.string().trim().min(1).max(128) });
const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out'] as const;

/** /api/v1/tasks: thin adapters over the tasks service (the MCP client_* tools will be too). */
export function registerTasksRoutes(app: HiveApp, tasks: TasksService): void {
  app.get('/api/v1/tasks/types', {
    config: { scope: 'operator.read' },
    handler: async () => ok(tasks.agentTypes()),
  });

  app.post('/api/v1/tasks', {
    config: { scope: 'operator.write' },
    schema: {
      body: z
        .object({
          agent_type: z.string().trim().min(1).max(32),
          description: z.string().trim().min(1).max(100_000),
          timeout_ms: z.number().int().min(100).max(86_400_000).optional(),
          target_satellite: z.string().trim().min(1).max(128).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => {
      const task = await tasks.create({ ...req.principal, ip: req.ip }, req.body);
      return reply.status(201).send(ok(task));
    },
  });

  app.get('/api/v1/tasks', {
    config: { scope: 'operator.read' },
    schema: {
      querystring: z.object({
        mine: z
          .enum(['true', 'false', '1', '0'])
          .transform((v) => v === 'true' || v === '1')
          .optional(),
        status: z.enum(STATUSES).optional(),
        agent_type: z.string().trim().max(32).optional(),
        page: z.coerce.number().int().min(1).default(1),
        per_page: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    handler: async (req) => {
      const q = req.query;
      const { items, total } = await tasks.list(req.principal, q);
      return paginated(items, total, q.page, q.per_page);
    },
  });

  app.get('/api/v1/tasks/:id', {
    config: { scope: 'operator.read' },
    schema: { params: TaskId },
    handler: async (req) => ok(await tasks.get(req.principal, req.params.id)),
  });

  app.get('/api/v1/tasks/:id/output', {
    config: { scope: 'operator.read' },
    schema: {
      params: TaskId,
      querystring: z.object({
        since: z.coerce.number().int().min(0).default(0),
        limit: z.coerce.number().int().min(1).max(5000).default(1000),
      }),
    },
    handler: async (req) => ok(await tasks.output(req.principal, req.params.id, req.query.since, req.query.limit)),
  });

  app.post('/api/v1/tasks/:id/cancel', {
    config: { scope: 'operator.write' },
    schema: { params: TaskId },
    handler: async (req) => ok(await tasks.cancel({ ...req.principal, ip: req.ip }, req.params.id)),
  });
}
