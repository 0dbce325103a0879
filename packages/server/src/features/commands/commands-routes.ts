import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import type { BatchSink, CommandsService } from './commands-service.js';

/** Releases a fan-out's held database writes once the response has gone out (or the client left). */
const afterSent =
  (reply: { raw: NodeJS.WritableStream & { writableFinished: boolean; destroyed: boolean } }) =>
  (release: () => void): void => {
    const raw = reply.raw;
    if (raw.writableFinished || raw.destroyed) {
      release();
      return;
    }
    raw.once('finish', release);
    raw.once('close', release);
  };

/**
 * A fan-out's answer, streamed: the response starts once the batch exists and carries each
 * target's result as soon as it and those before it are in (`BatchSink`), so a 10,000-target
 * answer (~5 MB) is mostly sent by the time the last result arrives instead of serialized and sent
 * after it. The JSON is the same as `ok(result)` would give. An error before the batch exists is
 * answered as usual; one after the response started (which a fan-out does not raise once it has
 * begun: every target's failure is a result) cuts the response (or, if no byte went out yet, is
 * answered as usual), so the client cannot take it as complete.
 */
export async function streamBatch(reply: FastifyReply, exec: (afterAnswer: (release: () => void) => void, sink: BatchSink) => Promise<{ summary: unknown }>) {
  const out = new PassThrough();
  let first = true;
  let started = false;
  const sink: BatchSink = {
    head(batchId, command) {
      started = true;
      reply.type('application/json; charset=utf-8').send(out);
      out.write(`{"success":true,"data":{"batch_id":${JSON.stringify(batchId)},"command":${JSON.stringify(command)},"results":[`);
    },
    results(run) {
      if (out.destroyed) return; // the client left
      let text = first ? '' : ',';
      first = false;
      for (let i = 0; i < run.length; i++) text += (i ? ',' : '') + JSON.stringify(run[i]);
      out.write(text);
    },
  };
  try {
    const result = await exec(afterSent(reply), sink);
    if (!out.destroyed) out.end(`],"summary":${JSON.stringify(result.summary)}}}`);
  } catch (err) {
    if (!started) throw err;
    // Fastify answers with the error if no byte went out yet; otherwise it logs it and cuts the response.
    out.destroy(err as Error);
  }
  return reply;
}

const Ref = z.string().trim().min(1).max(128);
const ExecBody = {
  command: z.string().trim().min(1).max(128),
  params: z.record(z.string(), z.unknown()).default({}),
  timeout_ms: z.number().int().min(100).max(3_600_000).optional(),
  queue_until: z.iso.datetime({ offset: true }).optional(),
  async: z.boolean().optional(),
};
const AsyncQuery = z.object({ async: z.enum(['true', 'false']).optional() });

export function registerCommandsRoutes(app: HiveApp, commands: CommandsService, deps: { groupSatellites: (ref: string) => Promise<{ id: string }[]> }): void {
  app.post('/api/v1/satellites/:id/exec', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: Ref }), querystring: AsyncQuery, body: z.object(ExecBody).strict() },
    handler: async (req, reply) => {
      const asyncMode = req.body.async ?? req.query.async === 'true';
      const job = await commands.exec({ ...req.principal, ip: req.ip }, { satellite: req.params.id, ...req.body, async: asyncMode });
      return reply.status(job.state === 'queued' || (asyncMode && job.finished_at === null) ? 202 : 200).send(ok(job));
    },
  });

  app.post('/api/v1/exec', {
    config: { scope: 'operator.write' },
    schema: {
      body: z
        .object({
          target: z
            .object({
              satellites: z.array(Ref).max(10_000).optional(),
              tag: z.string().trim().min(1).max(64).optional(),
              group: Ref.optional(),
            })
            .strict()
            .refine((t) => !!(t.satellites?.length || t.tag || t.group), 'give satellites, tag or group'),
          concurrency: z.number().int().min(1).max(100_000).optional(),
          ...ExecBody,
        })
        .strict(),
    },
    handler: async (req, reply) => {
      const { target, ...rest } = req.body;
      const ids = target.group ? (await deps.groupSatellites(target.group)).map((s) => s.id) : [];
      return streamBatch(reply, (afterAnswer, sink) =>
        commands.execMany(
          { ...req.principal, ip: req.ip },
          { ...rest, target: { satellites: [...(target.satellites ?? []), ...ids], tag: target.tag, group: target.group } },
          afterAnswer,
          sink,
        ),
      );
    },
  });

  app.post('/api/v1/groups/:id/exec', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: Ref }), body: z.object({ concurrency: z.number().int().min(1).max(100_000).optional(), ...ExecBody }).strict() },
    handler: async (req, reply) => {
      const ids = (await deps.groupSatellites(req.params.id)).map((s) => s.id);
      return streamBatch(reply, (afterAnswer, sink) =>
        commands.execMany({ ...req.principal, ip: req.ip }, { ...req.body, target: { satellites: ids, group: req.params.id } }, afterAnswer, sink),
      );
    },
  });

  app.get('/api/v1/commands/:id', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ id: Ref }) },
    handler: async (req) => ok(await commands.get(req.principal, req.params.id)),
  });

  app.post('/api/v1/commands/:id/fixes/:index', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: Ref, index: z.coerce.number().int().min(0).max(1000) }) },
    handler: async (req, reply) => reply.status(202).send(ok(await commands.applyFix({ ...req.principal, ip: req.ip }, req.params.id, req.params.index))),
  });

  app.post('/api/v1/commands/:id/cancel', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: Ref }) },
    handler: async (req) => ok(await commands.cancel({ ...req.principal, ip: req.ip }, req.params.id)),
  });

  app.get('/api/v1/commands', {
    config: { scope: 'operator.read' },
    schema: {
      querystring: z.object({
        satellite: z.string().trim().max(128).optional(),
        batch: z.string().trim().max(64).optional(),
        state: z.enum(['queued', 'pending_approval', 'running', 'succeeded', 'failed', 'timed_out', 'denied', 'cancelled']).optional(),
        page: z.coerce.number().int().min(1).default(1),
        per_page: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    handler: async (req) => {
      const q = req.query;
      const { items, total } = await commands.list(req.principal, q);
      return paginated(items, total, q.page, q.per_page);
    },
  });
}
