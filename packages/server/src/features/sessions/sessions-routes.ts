import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { HiveError, SessionOpenParams } from '@hive/protocol';
import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { SessionsService } from './sessions-service.js';
import type { Transfers } from './transfers.js';

const SessionIdParams = z.object({ id: z.string().trim().min(1).max(64) });

/** /api/v1/sessions (seed 003 §5.2): thin adapters over the sessions service. */
export function registerSessionsRoutes(app: HiveApp, sessions: SessionsService, transfers?: Transfers): void {
  if (transfers) registerTransferRoutes(app, transfers);
  app.post('/api/v1/sessions', {
    config: { scope: 'operator.write' },
    schema: { body: SessionOpenParams.omit({ attach: true }) },
    handler: async (req, reply) => reply.status(201).send(ok(await sessions.open({ ...req.principal, ip: req.ip }, req.body))),
  });

  app.get('/api/v1/sessions/:id', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams },
    handler: async (req) => ok(await sessions.get(req.principal, req.params.id)),
  });

  app.delete('/api/v1/sessions/:id', {
    config: { scope: 'operator.write' },
    schema: { params: SessionIdParams },
    handler: async (req) => ok(await sessions.close({ ...req.principal, ip: req.ip }, req.params.id)),
  });

  app.get('/api/v1/satellites/:id/sessions', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams.extend({ id: z.string().trim().min(1).max(128) }) },
    handler: async (req) => ok(await sessions.list(req.principal, req.params.id)),
  });

  app.get('/api/v1/sessions/:id/recording', {
    config: { scope: 'operator.read' },
    schema: { params: SessionIdParams },
    handler: async (req, reply) => {
      const file = await sessions.recording(req.principal, req.params.id);
      try {
        await stat(file);
      } catch {
        throw new HiveError('NOT_FOUND', `Recording of ${req.params.id} is gone (retention)`);
      }
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
      const result = await transfers.push({ ...req.principal, ip: req.ip }, req.params.id, {
        path: req.query.path,
        size,
        body: req.body as import('node:stream').Readable,
        sha256: typeof sha === 'string' ? sha : undefined,
        mode: req.query.mode,
      });
      return reply.status(201).send(ok(result));
    },
  });

  app.get('/api/v1/satellites/:id/files', {
    config: { scope: 'operator.read' },
    schema: { params: z.object({ id: z.string().trim().min(1).max(128) }), querystring: FileQuery.omit({ mode: true }) },
    handler: async (req, reply) => {
      const r = await transfers.pull({ ...req.principal, ip: req.ip }, req.params.id, req.query.path);
      return reply.type('application/octet-stream').header('content-length', String(r.size)).header('x-hive-sha256', r.sha256).send(r.body);
    },
  });
}
