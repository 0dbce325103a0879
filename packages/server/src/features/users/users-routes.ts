import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { UsersService } from './users-service.js';

const Username = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._@-]+$/, 'usernames use letters, digits, . _ @ -');
const Password = z.string().min(12, 'at least 12 characters').max(1024);
const Role = z.enum(['admin', 'operator', 'viewer']);

export function registerUsersRoutes(app: HiveApp, users: UsersService): void {
  app.post('/api/v1/auth/login', {
    config: { scope: 'public' },
    schema: { body: z.object({ username: Username, password: z.string().min(1).max(1024) }).strict() },
    handler: async (req) => ok(await users.login(req.body.username, req.body.password, req.ip)),
  });
  app.post('/api/v1/auth/refresh', {
    config: { scope: 'public' },
    schema: { body: z.object({ refresh_token: z.string().min(8).max(512) }).strict() },
    handler: async (req) => ok(await users.refresh(req.body.refresh_token, req.ip)),
  });
  app.post('/api/v1/auth/logout', {
    config: { scope: 'public' },
    schema: { body: z.object({ refresh_token: z.string().min(8).max(512) }).strict() },
    handler: async (req) => ok(await users.logout(req.body.refresh_token, req.ip)),
  });
  app.get('/api/v1/auth/me', { config: { scope: 'operator.read' } }, async (req) => ok(await users.me(req.principal)));
  app.post('/api/v1/auth/password', {
    config: { scope: 'operator.read' },
    schema: { body: z.object({ current_password: z.string().min(1).max(1024), new_password: Password }).strict() },
    handler: async (req) => ok(await users.changePassword({ ...req.principal, ip: req.ip }, req.body.current_password, req.body.new_password)),
  });

  // Client credentials (seed 000 §4): both paths, the seed's and ours.
  for (const url of ['/v1/auth/client', '/api/v1/auth/client']) {
    app.post(url, {
      config: { scope: 'public' },
      schema: { body: z.object({ client_id: z.string().trim().min(1).max(64), client_secret: z.string().min(8).max(256) }).strict() },
      handler: async (req) => ok(await users.clientToken(req.body.client_id, req.body.client_secret, req.ip)),
    });
  }
  app.get('/api/v1/clients', { config: { scope: 'operator.admin' } }, async (req) => ok(await users.listClients(req.principal)));
  app.post('/api/v1/clients', {
    config: { scope: 'operator.admin' },
    schema: {
      body: z
        .object({
          client_id: z
            .string()
            .trim()
            .min(1)
            .max(64)
            .regex(/^[A-Za-z0-9._-]+$/),
          role: z.enum(['admin', 'cli_agent', 'desktop', 'mobile']),
          allowed_tools: z.array(z.string().trim().min(1).max(128)).max(256).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => reply.status(201).send(ok(await users.createClient({ ...req.principal, ip: req.ip }, req.body))),
  });
  app.delete('/api/v1/clients/:id', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) => ok(await users.revokeClient({ ...req.principal, ip: req.ip }, req.params.id)),
  });

  app.get('/api/v1/users', { config: { scope: 'operator.admin' } }, async (req) => ok(await users.list(req.principal)));
  app.post('/api/v1/users', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ username: Username, password: Password, role: Role.default('viewer') }).strict() },
    handler: async (req, reply) => reply.status(201).send(ok(await users.create({ ...req.principal, ip: req.ip }, req.body))),
  });
  app.put('/api/v1/users/:id', {
    config: { scope: 'operator.admin' },
    schema: {
      params: z.object({ id: z.string().trim().min(1).max(64) }),
      body: z.object({ role: Role.optional(), password: Password.optional(), disabled: z.boolean().optional() }).strict(),
    },
    handler: async (req) => ok(await users.update({ ...req.principal, ip: req.ip }, req.params.id, req.body)),
  });
  app.delete('/api/v1/users/:id', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) => ok(await users.remove({ ...req.principal, ip: req.ip }, req.params.id)),
  });
}
