import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import type { DevicesService } from './devices-service.js';

const Tag = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/, 'tags use letters, digits, . _ : -');
const IdParam = z.object({ id: z.string().trim().min(1).max(128) });

export function registerDevicesRoutes(app: HiveApp, devices: DevicesService): void {
  /** Fleet pages as sent, by the (cached) page they were made from. */
  const serialized = new WeakMap<object, string>();

  app.get('/api/v1/satellites', {
    config: { scope: 'operator.read' },
    schema: {
      querystring: z.object({
        status: z.enum(['online', 'offline']).optional(),
        tag: Tag.optional(),
        q: z.string().trim().max(128).optional(),
        page: z.coerce.number().int().min(1).max(1_000_000).default(1),
        per_page: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    handler: async (req, reply) => {
      const q = req.query;
      const page = await devices.listSatellites(req.principal, q);
      // A page served from the satellite read cache is the same object: serialized once.
      let body = serialized.get(page);
      if (body === undefined) {
        body = JSON.stringify(paginated(page.items, page.total, q.page, q.per_page));
        serialized.set(page, body);
      }
      return reply.type('application/json; charset=utf-8').send(body);
    },
  });

  app.get('/api/v1/satellites/:id', {
    config: { scope: 'operator.read' },
    schema: { params: IdParam },
    handler: async (req) => ok(await devices.getSatellite(req.principal, req.params.id)),
  });

  app.put('/api/v1/satellites/:id', {
    config: { scope: 'operator.write' },
    schema: {
      params: IdParam,
      body: z
        .object({
          name: z.string().trim().min(1).max(128).optional(),
          tags: z.array(Tag).max(32).optional(),
          project: z.string().trim().min(1).max(64).optional(),
        })
        .strict(),
    },
    handler: async (req) => ok(await devices.updateSatellite(req.principal, req.params.id, req.body)),
  });

  app.delete('/api/v1/satellites/:id', {
    config: { scope: 'operator.write' },
    schema: { params: IdParam },
    handler: async (req) => ok(await devices.deleteSatellite(req.principal, req.params.id)),
  });

  app.get('/api/v1/satellites/by-tag/:tag', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ tag: Tag }) },
    handler: async (req) => {
      const { items, total } = await devices.listSatellites(req.principal, { tag: req.params.tag, page: 1, per_page: 500 });
      return paginated(items, total, 1, 500);
    },
  });

  app.post('/api/v1/satellites/:id/claims/approve', {
    config: { scope: 'operator.admin' },
    schema: {
      params: IdParam,
      body: z
        .object({ commands: z.array(z.string().trim().min(1).max(128)).max(512).optional() })
        .strict()
        .nullish(),
    },
    handler: async (req) => ok(await devices.approveClaims(req.principal, req.params.id, req.body?.commands)),
  });

  app.get('/api/v1/satellites/:id/metrics', {
    config: { scope: 'operator.read' },
    schema: { params: IdParam, querystring: z.object({ limit: z.coerce.number().int().min(1).max(2880).default(60) }) },
    handler: async (req) => ok(await devices.statusHistory(req.principal, req.params.id, req.query.limit)),
  });

  for (const action of ['revoke', 'rotate'] as const) {
    app.post(`/api/v1/devices/:id/${action}`, {
      config: { scope: 'operator.admin' },
      schema: {
        params: IdParam,
        body: z
          .object({ role: z.enum(['node', 'operator']).default('node') })
          .strict()
          .nullish(),
      },
      handler: async (req) => {
        const role = req.body?.role ?? 'node';
        const device = (await devices.resolveRef(req.params.id).catch(() => ({ id: req.params.id }))).id;
        return ok(action === 'revoke' ? await devices.revokeDevice(req.principal, device, role) : await devices.rotateDevice(req.principal, device, role));
      },
    });
  }

  app.get('/api/v1/tags', {
    config: { scope: 'operator.read' },
    handler: async (req) => ok(await devices.listTags(req.principal)),
  });

  app.get('/api/v1/pairing', {
    config: { scope: 'operator.pairing' },
    schema: { querystring: z.object({ status: z.enum(['pending', 'approved', 'rejected', 'expired']).optional() }) },
    handler: async (req) => ok(await devices.listPairing(req.principal, req.query.status)),
  });

  app.post('/api/v1/pairing/:id/approve', {
    config: { scope: 'operator.pairing' },
    schema: { params: IdParam },
    handler: async (req) => ok(await devices.approvePairing(req.principal, req.params.id)),
  });

  app.post('/api/v1/pairing/:id/reject', {
    config: { scope: 'operator.pairing' },
    schema: { params: IdParam },
    handler: async (req) => ok(await devices.rejectPairing(req.principal, req.params.id)),
  });
}
