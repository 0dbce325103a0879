import { HiveError, type Scope } from '@hive/protocol';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { AuditService } from '../features/audit/audit-service.js';
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
export interface RouteEntry {
  method: string;
  url: string;
  scope: Scope | 'public' | undefined;
}

export interface AppOptions {
  logger: Logger;
  auth: Pick<AuthService, 'verifyApiKey'>;
  /** Denied requests (who, what, why) go to the audit log. */
  audit?: Pick<AuditService, 'log'> | undefined;
  /** Requests per minute per credential (API key, user); 0 = unlimited. */
  requestsPerMinute?: number | undefined;
  /** Metrics: every answered request, labelled by route pattern (not the raw URL). */
  onResponse?: ((method: string, route: string, status: number, seconds: number) => void) | undefined;
  /** Serve HTTPS (and WSS) with this key and certificate (PEM) instead of plain HTTP. */
  https?: { key: string; cert: string } | undefined;
}

/** Every route with the scope it declared, for the "no route without a scope" check. */
export const routeTables = new WeakMap<object, RouteEntry[]>();

export function createApp({ logger, auth, audit, requestsPerMinute = 0, onResponse, https }: AppOptions): HiveApp {
  const app = Fastify({
    // Fastify's per-request logs are noise at fleet scale; errors are still logged below.
    loggerInstance: logger.child({}, { level: 'warn' }),
    // …and no child logger per request (a pino child for every request showed in profiles at
    // thousands of requests a second); the error log below names the request itself.
    childLoggerFactory: (parent) => parent,
    bodyLimit: 2 * 1024 * 1024,
    trustProxy: false,
    ...(https ? { https } : {}),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null as unknown as Principal);

  if (onResponse) {
    app.addHook('onResponse', async (req, reply) => {
      onResponse(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    });
  }

  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/') && !route.config?.scope) {
      throw new Error(`route ${route.method} ${route.url} declares no scope`);
    }
    for (const method of [route.method].flat()) table.push({ method: String(method), url: route.url, scope: route.config?.scope });
  });

  // Token bucket per credential: bursts of ten seconds' worth, refilled per minute rate.
  const buckets = new Map<string, { tokens: number; at: number }>();
  const admit = (id: string): number => {
    if (!requestsPerMinute) return 0;
    const now = Date.now();
    const cap = Math.max(1, requestsPerMinute / 6);
    const b = buckets.get(id) ?? { tokens: cap, at: now };
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) * requestsPerMinute) / 60_000);
    b.at = now;
    buckets.set(id, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / requestsPerMinute);
  };

  const denied = (req: FastifyRequest, who: { type: string; id: string; name: string }, err: HiveError) => {
    audit?.log({
      actor: { ...who, ip: req.ip },
      action: 'access.denied',
      details: { method: req.method, route: req.routeOptions.url, required: req.routeOptions.config?.scope, code: err.code },
      result: 'failure',
      error: err.message,
    });
  };

  app.addHook('preHandler', async (req) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope || scope === 'public') return;
    const key = apiKeyOf(req);
    if (!key) throw new HiveError('AUTH_REQUIRED', 'Send an API key in X-API-Key or Authorization: Bearer');
    let principal: Principal;
    try {
      principal = await auth.verifyApiKey(key, req.ip);
    } catch (err) {
      if (err instanceof HiveError) denied(req, { type: 'unknown', id: key.startsWith('hive_') ? key.slice(5, 17) : 'bearer', name: 'unknown' }, err);
      throw err;
    }
    if (!principal.scopes.has(scope) && !principal.scopes.has('operator.admin')) {
      const err = new HiveError('FORBIDDEN', `This needs scope ${scope}`, { required: scope });
      denied(req, principal, err);
      throw err;
    }
    const wait = admit(principal.id);
    if (wait)
      throw new HiveError('RATE_LIMITED', `More than ${requestsPerMinute} requests per minute for this credential`, undefined, {
        action: 'retry',
        retryAfterMs: wait,
      });
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
    req.log.error({ err: err.message, stack: err.stack, method: req.method, url: req.url, req_id: req.id }, 'request failed');
    return reply.status(500).send({ success: false, error: { code: 'INTERNAL_ERROR', message: 'Unexpected server error' } });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ success: false, error: { code: 'NOT_FOUND', message: `No route ${req.method} ${req.url.split('?')[0]}` } });
  });
  return app;
}
