import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { ProjectsService } from './projects-service.js';

const ProjectId = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'project ids: lowercase letters, digits, . _ -');
const Grant = z
  .object({
    principal_type: z.enum(['api_key', 'user', 'client', 'ai']),
    principal_id: z.string().trim().min(1).max(128),
    project: ProjectId,
  })
  .strict();

export function registerProjectsRoutes(app: HiveApp, projects: ProjectsService): void {
  app.get('/api/v1/projects', { config: { scope: 'operator.read' } }, async (req) => ok(await projects.list(req.principal)));
  app.post('/api/v1/projects', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ id: ProjectId, description: z.string().trim().max(500).optional() }).strict() },
    handler: async (req, reply) => reply.status(201).send(ok(await projects.create(req.principal, req.body))),
  });
  app.get('/api/v1/projects/:id/members', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: ProjectId }) },
    handler: async (req) => ok(await projects.members(req.principal, req.params.id)),
  });
  app.post('/api/v1/permissions', {
    config: { scope: 'operator.admin' },
    schema: { body: Grant.extend({ role: z.enum(['admin', 'member', 'reviewer']) }).strict() },
    handler: async (req) => ok(await projects.grant(req.principal, req.body)),
  });
  app.delete('/api/v1/permissions', {
    config: { scope: 'operator.admin' },
    schema: { body: Grant },
    handler: async (req) => ok(await projects.revoke(req.principal, req.body)),
  });
}
