import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { GroupsService } from './groups-service.js';

const Tag = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/);

export function registerGroupsRoutes(app: HiveApp, groups: GroupsService): void {
  app.post('/api/v1/groups', {
    config: { scope: 'operator.write' },
    schema: {
      body: z
        .object({
          name: z
            .string()
            .trim()
            .min(1)
            .max(64)
            .regex(/^[A-Za-z0-9._-]+$/, 'group names use letters, digits, . _ -'),
          description: z.string().trim().max(500).optional(),
          members: z.array(z.string().trim().min(1).max(128)).max(10_000).optional(),
          tags: z.array(Tag).max(32).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => reply.status(201).send(ok(await groups.create(req.principal, req.body))),
  });
  app.get('/api/v1/groups', { config: { scope: 'operator.read' } }, async (req) => ok(await groups.list(req.principal)));
  app.get('/api/v1/groups/:id', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) =>
      ok({
        ...(await groups.get(req.principal, req.params.id)),
        satellites: (await groups.satellites(req.params.id)).map((s) => ({ id: s.id, slug: s.slug, status: s.status })),
      }),
  });
  app.delete('/api/v1/groups/:id', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) => ok(await groups.remove(req.principal, req.params.id)),
  });
}
