import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import { ExpiresIn, expiresInMs } from '../../http/schemas.js';
import type { IdentitiesService } from './identities-service.js';

const Ref = z.object({ id: z.string().trim().min(1).max(64) });

export function registerIdentitiesRoutes(app: HiveApp, identities: IdentitiesService): void {
  app.get('/api/v1/ai-identities', { config: { scope: 'operator.admin' } }, async (req) => ok(await identities.list(req.principal)));
  app.post('/api/v1/ai-identities', {
    config: { scope: 'operator.admin' },
    schema: {
      body: z
        .object({
          name: z
            .string()
            .trim()
            .min(1)
            .max(64)
            .regex(/^[A-Za-z0-9._-]+$/),
          nickname: z.string().trim().max(64).optional(),
          expertise: z.array(z.string().trim().min(1).max(64)).max(32).optional(),
          version: z.string().trim().max(32).optional(),
        })
        .strict(),
    },
    handler: async (req, reply) => reply.status(201).send(ok(await identities.create(req.principal, req.body))),
  });
  app.post('/api/v1/ai-identities/:id/token', {
    config: { scope: 'operator.admin' },
    schema: { params: Ref, body: z.object({ expires_in: ExpiresIn.optional() }).strict().nullish() },
    handler: async (req, reply) =>
      reply
        .status(201)
        .send(ok(await identities.issueToken(req.principal, req.params.id, req.body?.expires_in ? expiresInMs(req.body.expires_in) : undefined))),
  });
  app.delete('/api/v1/ai-identities/:id/token', {
    config: { scope: 'operator.admin' },
    schema: { params: Ref },
    handler: async (req) => ok(await identities.revokeToken(req.principal, req.params.id)),
  });
}
