import { HiveError, type Scope } from '@hive/protocol';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { AuthService } from '../features/auth/auth-service.js';
import type { Principal } from '../lib/principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scope a caller needs, or 'public'. Every /api route must declare one. */
    scope?: Scope | 'public';
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

export type HiveApp = FastifyInstance<any, any, any, any, ZodTypeProvider>;

export const ok = (data: unknown) => ({ success: true as const, data });

export const paginated = (items: unknown[], total: number, page: number, perPage: number) => ({
  success: true as const,
  data: items,
  pagination: { page, per_page: perPage, total, total_pages: Math.max(1, Math.ceil(total / perPage)) },
});

function apiKeyOf(req: FastifyRequest): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header) return header;
  const authz = req.headers.authorization;
  if (authz?.startsWith('Bearer ')) return authz.slice(7).trim();
  return undefined;
}

/**
 * The Fastify app: zod validation, one error handler rendering seed 003's envelope, and an
 * auth hook enforcing each route's declared scope.
 */
export function createApp({ logger, auth }: { logger: Logger; auth: Pick<AuthService, 'verifyApiKey'> }): HiveApp {
  const app = Fastify({
    // Fastify's per-request logs are noise at fleet scale; errors are still logged below.
    loggerInstance: logger.child({}, { level: 'warn' }),
    bodyLimit: 2 * 1024 * 1024,
    trustProxy: false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null as unknown as Principal);

  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/') && !route.config?.scope) {
      throw new Error(`route ${route.method} ${route.url} declares no scope`);
    }
  });

  app.addHook('preHandler', async (req) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope || scope === 'public') return;
    const key = apiKeyOf(req);
    if (!key) throw new HiveError('AUTH_REQUIRED', 'Send an API key in X-API-Key or Authorization: Bearer');
    const principal = await auth.verifyApiKey(key, req.ip);
    if (!principal.scopes.has(scope) && !principal.scopes.has('operator.admin')) {
      throw new HiveError('FORBIDDEN', `This needs scope ${scope}`, { required: scope });
    }
    // `hive mcp` (stdio) calls REST with this header: its calls are audited as actor type `mcp`.
    req.principal = req.headers['x-hive-client'] === 'mcp' ? { ...principal, type: 'mcp' } : principal;
  });

  app.setErrorHandler((err: any, req, reply) => {
    if (err instanceof HiveError) {
      if (err.hint?.retryAfterMs) reply.header('retry-after', Math.ceil(err.hint.retryAfterMs / 1000));
      return reply.status(err.httpStatus).send({ success: false, error: err.toWire() });
    }
    if (err.validation) {
      return reply.status(400).send({
        success: false,
        error: {
          code: 'INVALID_PARAMETERS',
          message: `Invalid ${err.validationContext ?? 'request'}`,
          details: {
            issues: (err.validation as { instancePath?: string; message?: string }[])
              .slice(0, 10)
              .map((i) => `${i.instancePath ?? ''} ${i.message ?? ''}`.trim()),
          },
        },
      });
    }
    if (err.statusCode === 429) {
      return reply.status(429).send({ success: false, error: { code: 'RATE_LIMITED', message: err.message } });
    }
    if (err.statusCode && err.statusCode < 500) {
      const code = err.statusCode === 413 ? 'FRAME_TOO_LARGE' : err.statusCode === 404 ? 'NOT_FOUND' : 'INVALID_PARAMETERS';
      return reply.status(err.statusCode).send({ success: false, error: { code, message: err.message } });
    }
    req.log.error({ err: err.message, stack: err.stack, url: req.url }, 'request failed');
    return reply.status(500).send({ success: false, error: { code: 'INTERNAL_ERROR', message: 'Unexpected server error' } });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ success: false, error: { code: 'NOT_FOUND', message: `No route ${req.method} ${req.url.split('?')[0]}` } });
  });
  return app;
}
