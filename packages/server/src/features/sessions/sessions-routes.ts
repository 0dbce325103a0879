import { createReadStream } from 'node:fs';
import { HiveError, SessionOpenParams } from '@hive/protocol';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { type HiveApp, ok, paginated } from '../../http/app.js';
import type { PendingApproval, WaitHooks } from './approval-wait.js';
import { RECORDING_TEXT_MAX_BYTES, RUN_MAX_BYTES, RUN_MAX_TIMEOUT_MS, type SessionsService } from './sessions-service.js';
import type { Transfers } from './transfers.js';

const SessionIdParams = z.object({ id: z.string().trim().min(1).max(64) });
const SatelliteParams = z.object({ id: z.string().trim().min(1).max(128) });
const ListQuery = z.object({
  /** live = waiting for approval, opening or active; ended; all (default). */
  state: z.enum(['live', 'ended', 'all']).default('all'),
  page: z.coerce.number().int().min(1).default(1),
  per_page: z.coerce.number().int().min(1).max(500).default(50),
});
const RunBody = z
  .object({
    satellite: z.string().trim().min(1).max(128),
    command: z.union([z.string().trim().min(1).max(4096), z.array(z.string().max(4096)).min(1).max(256)]),
    cols: z.number().int().min(1).max(1000).optional(),
    rows: z.number().int().min(1).max(1000).optional(),
    timeout_ms: z.number().int().min(100).max(RUN_MAX_TIMEOUT_MS).optional(),
    max_bytes: z.number().int().min(1).max(RUN_MAX_BYTES).optional(),
    /** How long the request waits for the outcome (approval + run), seconds. */
    wait_seconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict();
const RecordingQuery = z.object({
  format: z.enum(['cast', 'text']).default('cast'),
  max_bytes: z.coerce.number().int().min(1).max(RECORDING_TEXT_MAX_BYTES).optional(),
  from: z.enum(['start', 'end']).optional(),
});

/**
 * A request that waits for an approval says so at once with an informational `103` response
 * (`Link: </api/v1/approvals/ID>; rel="hive-approval"`, `X-Hive-Approval-Id`); clients that do not
 * read 1xx responses just wait. A client that goes away withdraws the approval.
 */
export function approvalHooks(reply: FastifyReply): WaitHooks {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableEnded) ac.abort();
  });
  return {
    signal: ac.signal,
    onPendingApproval: (a: PendingApproval) => {
      try {
        reply.raw.writeEarlyHints({
          link: `</api/v1/approvals/${encodeURIComponent(a.approval_id)}>; rel="hive-approval"`,
          'x-hive-approval-id': a.approval_id,
          'x-hive-approval-expires': a.expires_at,
        });
      } catch {
        /* the hint is a courtesy */
      }
    },
  };
}

/** /api/v1/sessions (seed 003 §5.2): thin adapters over the sessions service. */
export function registerSessionsRoutes(app: HiveApp, sessions: SessionsService, transfers?: Transfers): void {
  if (transfers) registerTransferRoutes(app, transfers);
  app.post('/api/v1/sessions', {
    config: { scope: 'operator.write' },
    schema: { body: SessionOpenParams.omit({ attach: true }) },
    handler: async (req, reply) => reply.status(201).send(ok(await sessions.open({ ...req.principal, ip: req.ip }, req.body, approvalHooks(reply)))),
  });

  app.get('/api/v1/sessions', {
    config: { scope: 'operator.read' },
    schema: { querystring: ListQuery.extend({ satellite: z.string().trim().min(1).max(128).optional() }) },
    handler: async (req) => {
      const q = req.query;
      const { items, total } = await sessions.list(req.principal, q.satellite, q);
      return paginated(items, total, q.page, q.per_page);
    },
  });

  app.post('/api/v1/sessions/run', {
    config: { scope: 'operator.write' },
    schema: { body: RunBody },
    handler: async (req, reply) => {
      const { wait_seconds, ...q } = req.body;
      const r = await sessions.run({ ...req.principal, ip: req.ip }, { ...q, wait_ms: wait_seconds === undefined ? undefined : wait_seconds * 1000 });
      // 202: still waiting for approval or still running (GET /api/v1/sessions/:id/output later).
      return reply.status(r.session.status === 'ended' ? 200 : 202).send(ok(r));
    },
  });

  app.get('/api/v1/sessions/:id', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams },
    handler: async (req) => ok(await sessions.get(req.principal, req.params.id)),
  });

  app.get('/api/v1/sessions/:id/output', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams },
    handler: async (req) => ok(await sessions.result(req.principal, req.params.id)),
  });

  app.delete('/api/v1/sessions/:id', {
    config: { scope: 'operator.write' },
    schema: { params: SessionIdParams },
    handler: async (req) => ok(await sessions.close({ ...req.principal, ip: req.ip }, req.params.id)),
  });

  app.get('/api/v1/satellites/:id/sessions', {
    config: { scope: 'operator.read' },
    schema: { params: SatelliteParams, querystring: ListQuery },
    handler: async (req) => {
      const q = req.query;
      const { items, total } = await sessions.list(req.principal, req.params.id, q);
      return paginated(items, total, q.page, q.per_page);
    },
  });

  app.get('/api/v1/sessions/:id/recording', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams, querystring: RecordingQuery },
    handler: async (req, reply) => {
      if (req.query.format === 'text') return ok(await sessions.recordingText(req.principal, req.params.id, req.query));
      const file = await sessions.recording(req.principal, req.params.id);
      return reply.type('application/x-asciicast').header('content-disposition', `attachment; filename="${req.params.id}.cast"`).send(createReadStream(file));
    },
  });
}

const FileQuery = z.object({ path: z.string().min(1).max(4096), mode: z.enum(['overwrite', 'create']).optional() });

/** Streamed file transfer: PUT uploads the raw body, GET downloads; sha256 in `x-hive-sha256`. */
function registerTransferRoutes(app: HiveApp, transfers: Transfers): void {
  // Raw bodies are streamed to the node as they arrive; the global body limit does not apply.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.put('/api/v1/satellites/:id/files', {
    config: { scope: 'operator.write' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(128) }), querystring: FileQuery },
    handler: async (req, reply) => {
      const size = Number(req.headers['content-length']);
      if (!Number.isInteger(size) || size < 0) throw new HiveError('INVALID_PARAMETERS', 'Upload needs a content-length');
      if (!req.body || typeof (req.body as { pipe?: unknown }).pipe !== 'function') {
        throw new HiveError('INVALID_PARAMETERS', 'Upload the raw bytes with content-type application/octet-stream');
      }
      const sha = req.headers['x-hive-sha256'];
      const result = await transfers.push(
        { ...req.principal, ip: req.ip },
        req.params.id,
        {
          path: req.query.path,
          size,
          body: req.body as import('node:stream').Readable,
          sha256: typeof sha === 'string' ? sha : undefined,
          mode: req.query.mode,
        },
        approvalHooks(reply),
      );
      return reply.status(201).send(ok(result));
    },
  });

  app.get('/api/v1/satellites/:id/files', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(128) }), querystring: FileQuery.omit({ mode: true }) },
    handler: async (req, reply) => {
      const r = await transfers.pull({ ...req.principal, ip: req.ip }, req.params.id, req.query.path, approvalHooks(reply));
      return reply.type('application/octet-stream').header('content-length', String(r.size)).header('x-hive-sha256', r.sha256).send(r.body);
    },
  });
}
