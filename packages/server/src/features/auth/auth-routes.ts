import { OPERATOR_SCOPES } from '@hive/protocol';
import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { AuthService } from './auth-service.js';

const Expires = z.string().regex(/^\d+(m|h|d)$/, 'e.g. 30d, 12h, 90m');
const toMs = (s: string) => Number(s.slice(0, -1)) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[s.slice(-1) as 'm'];

export function registerAuthRoutes(app: HiveApp, auth: AuthService): void {
  app.get('/api/v1/apikeys', { config: { scope: 'operator.admin' } }, async () => ok(await auth.listKeys()));
  app.post('/api/v1/apikeys', {
    config: { scope: 'operator.admin' },
    schema: {
      body: z
        .object({
          name: z.string().trim().min(1).max(64),
          scopes: z.array(z.enum(OPERATOR_SCOPES)).min(1).max(OPERATOR_SCOPES.length),
          expires_in: Expires.optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => {
      const expiresAt = req.body.expires_in ? new Date(Date.now() + toMs(req.body.expires_in)).toISOString() : null;
      const created = await auth.createApiKey(req.body.name, req.body.scopes, req.principal, expiresAt);
      // The key is shown once, here; only its hash is stored.
      return reply.status(201).send(ok({ ...created, name: req.body.name, scopes: req.body.scopes, expires_at: expiresAt }));
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
