import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { ApprovalsService } from './approvals-service.js';

const IdParam = z.object({ id: z.string().trim().min(1).max(64) });

export function registerApprovalsRoutes(app: HiveApp, approvals: ApprovalsService): void {
  app.get('/api/v1/approvals', {
    config: { scope: 'operator.approvals' },
    schema: { querystring: z.object({ status: z.enum(['pending', 'approved', 'denied', 'expired']).optional() }) },
    handler: async (req) => ok(await approvals.list(req.principal, req.query.status)),
  });
  app.get('/api/v1/approvals/:id', {
    config: { scope: 'operator.approvals' },
    schema: { params: IdParam },
    handler: async (req) => ok(await approvals.get(req.principal, req.params.id)),
  });
  for (const decision of ['approve', 'deny'] as const) {
    app.post(`/api/v1/approvals/:id/${decision}`, {
      config: { scope: 'operator.approvals' },
      schema: {
        params: IdParam,
        body: z
          .object({ reason: z.string().trim().max(500).optional() })
          .strict()
          .nullish(),
      },
      handler: async (req) => ok(await approvals.resolve({ ...req.principal, ip: req.ip }, req.params.id, decision, req.body?.reason)),
    });
  }
}
