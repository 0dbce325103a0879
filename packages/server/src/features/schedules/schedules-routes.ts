import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { SchedulesService } from './schedules-service.js';

export function registerSchedulesRoutes(app: HiveApp, schedules: SchedulesService): void {
  app.post('/api/v1/schedules', {
    config: { scope: 'operator.write' },
    schema: {
      body: z
        .object({
          name: z.string().trim().min(1).max(64),
          cron: z.string().trim().min(9).max(128),
          timezone: z.string().trim().min(1).max(64),
          target: z
            .object({
              satellites: z.array(z.string().trim().min(1).max(128)).max(10_000).optional(),
              tag: z.string().trim().min(1).max(64).optional(),
              group: z.string().trim().min(1).max(128).optional(),
            })
            .strict()
            .refine((t) => !!(t.satellites?.length || t.tag || t.group), 'give satellites, tag or group'),
          command: z.string().trim().min(1).max(128),
          params: z.record(z.string(), z.unknown()).default({}),
          timeout_ms: z.number().int().min(100).max(3_600_000).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => reply.status(201).send(ok(await schedules.create({ ...req.principal, ip: req.ip }, req.body))),
  });
  app.get('/api/v1/schedules', { config: { scope: 'operator.read' } }, async (req) => ok(await schedules.list(req.principal)));
  app.delete('/api/v1/schedules/:id', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) => ok(await schedules.remove(req.principal, req.params.id)),
  });
}
