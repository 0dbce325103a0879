import { OPERATOR_SCOPES } from '@hive/protocol';
import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import { ExpiresIn, expiresInMs } from '../../http/schemas.js';
import type { Principal } from '../../lib/principal.js';
import type { AuthService } from './auth-service.js';

export function registerAuthRoutes(
  app: HiveApp,
  auth: AuthService,
  deps: {
    grant: (p: Principal, g: { principal_type: 'api_key'; principal_id: string; project: string; role: 'admin' | 'member' | 'reviewer' }) => Promise<unknown>;
  },
): void {
  app.get('/api/v1/apikeys', { config: { scope: 'operator.admin' } }, async () => ok(await auth.listKeys()));
  app.post('/api/v1/apikeys', {
    config: { scope: 'operator.admin' },
    schema: {
      body: z
        .object({
          name: z.string().trim().min(1).max(64),
          scopes: z.array(z.enum(OPERATOR_SCOPES)).min(1).max(OPERATOR_SCOPES.length),
          expires_in: ExpiresIn.optional(),
          /** Restrict the key to a project right away (role default: member). */
          project: z.string().trim().min(1).max(64).optional(),
          role: z.enum(['admin', 'member', 'reviewer']).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => {
      const expiresAt = req.body.expires_in ? new Date(Date.now() + expiresInMs(req.body.expires_in)).toISOString() : null;
      const created = await auth.createApiKey(req.body.name, req.body.scopes, req.principal, expiresAt);
      if (req.body.project) {
        try {
          await deps.grant(req.principal, { principal_type: 'api_key', principal_id: created.id, project: req.body.project, role: req.body.role ?? 'member' });
        } catch (err) {
          // A key that could not be restricted must not exist unrestricted.
          await auth.revokeApiKey(req.principal, created.id);
          throw err;
        }
      }
      // The key is shown once, here; only its hash is stored.
      return reply.status(201).send(ok({ ...created, name: req.body.name, scopes: req.body.scopes, expires_at: expiresAt, project: req.body.project ?? null }));
    },
  });
  app.post('/api/v1/apikeys/:id/rotate', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(32) }) },
    handler: async (req) => ok(await auth.rotateApiKey({ ...req.principal, ip: req.ip }, req.params.id)),
  });
  app.delete('/api/v1/apikeys/:id', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(32) }) },
    handler: async (req) => ok(await auth.revokeApiKey({ ...req.principal, ip: req.ip }, req.params.id)),
  });
}
