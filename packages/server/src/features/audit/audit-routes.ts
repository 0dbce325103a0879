import { HiveError } from '@hive/protocol';
import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import { parseAnchors } from './audit-chain.js';
import type { AuditService } from './audit-service.js';

export function registerAuditRoutes(app: HiveApp, audit: AuditService): void {
  app.get('/api/v1/audit/logs', {
    config: { scope: 'operator.admin' },
    schema: {
      querystring: z.object({
        action: z.string().trim().max(128).optional(),
        actor_id: z.string().trim().max(128).optional(),
        target_id: z.string().trim().max(128).optional(),
        correlation_id: z.string().trim().max(64).optional(),
        result: z.enum(['success', 'failure']).optional(),
        since: z.string().datetime().optional(),
        until: z.string().datetime().optional(),
        page: z.coerce.number().int().min(1).default(1),
        per_page: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    handler: async (req) => {
      const q = req.query;
      const p = req.principal;
      const { items, total } = await audit.query({ ...q, ...(p.projects ? { scope: { projects: [...p.projects.keys()], actorId: p.id } } : {}) });
      return paginated(items, total, q.page, q.per_page);
    },
  });

  // Hash-chain check of the whole log (every instance's chain), streamed through in pages.
  app.get('/api/v1/audit/verify', {
    config: { scope: 'operator.admin' },
    schema: {
      querystring: z.object({
        /** Heads noted from an earlier run: `chain:seq:hash`, comma-separated. */
        anchors: z.string().max(64_000).optional(),
      }),
    },
    handler: async (req) => {
      if (req.principal.projects) throw new HiveError('FORBIDDEN', 'Only an administrator not restricted to projects verifies the whole audit log');
      return ok(await audit.verify({ anchors: parseAnchors(req.query.anchors) }));
    },
  });

  app.get('/api/v1/audit/logs/:id', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(64) }) },
    handler: async (req) => ok(await audit.get(req.params.id)),
  });
}
