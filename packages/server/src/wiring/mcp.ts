import { HiveError } from '@hive/protocol';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { HubConfig } from '../config.js';
import { type HiveApp, ok } from '../http/app.js';
import type { Principal } from '../lib/principal.js';
import { HUB_VERSION, type HubServices } from '../main.js';
import { allowedTools, createHiveMcpServer, guardTransport } from '../mcp/server.js';
import { servicesExecutor } from '../mcp/services-executor.js';

export interface McpWiringDeps {
  app: HiveApp;
  config: HubConfig;
  logger: Logger;
  services: HubServices;
}

function keyOf(req: FastifyRequest): string | undefined {
  const authz = req.headers.authorization;
  if (authz) {
    const [type, token] = authz.split(' ');
    return type?.toLowerCase() === 'bearer' && token ? token.trim() : undefined;
  }
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header ? header : undefined;
}

/** OAuth-style bearer errors as the MCP SDK's `requireBearerAuth` sends them. */
function bearerError(reply: FastifyReply, status: 401 | 403, error: 'invalid_token' | 'insufficient_scope', description: string): FastifyReply {
  const safe = description.replace(/["\\\r\n]/g, ' ');
  return reply
    .status(status)
    .header('www-authenticate', `Bearer error="${error}", error_description="${safe}"`)
    .send({ error, error_description: description });
}

const AuditReport = z
  .object({
    kind: z.enum(['tool', 'resource', 'prompt']),
    name: z.string().trim().min(1).max(256),
    result: z.enum(['success', 'failure']),
    error: z.object({ code: z.string().max(64), message: z.string().max(2000) }).optional(),
    args: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/**
 * MCP over Streamable HTTP at /mcp (stateless: one McpServer per request, scoped to the key),
 * plus two small endpoints for `hive mcp` (stdio): `GET /mcp/whoami` (the key's scopes, so the
 * stdio server lists the same tools) and `POST /mcp/audit` (records each stdio tool call,
 * actor type `mcp`, actor = the key).
 */
export async function wireMcp({ app, config, logger, services }: McpWiringDeps): Promise<{ close(): Promise<void> }> {
  // mcp.enabled: false — no MCP at all (REST stays).
  if (!config.mcp.enabled) return { close: async () => {} };
  const open = new Set<McpServer>();
  const log = logger.child({ mod: 'mcp' });
  // Hive API keys, or a user's JWT access token — as on every other edge.
  const verify = (key: string, ip?: string) => services.credentials.verifyApiKey(key, ip);

  /** API key → principal of type `mcp`; null after answering 401/403 itself. */
  async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<Principal | null> {
    const key = keyOf(req);
    if (!key) {
      bearerError(
        reply,
        401,
        'invalid_token',
        req.headers.authorization ? "Invalid Authorization header format, expected 'Bearer TOKEN'" : 'Missing Authorization header',
      );
      return null;
    }
    let p: Principal;
    try {
      p = await verify(key, req.ip);
    } catch (err) {
      if (err instanceof HiveError) {
        bearerError(reply, 401, 'invalid_token', err.message);
        return null;
      }
      throw err;
    }
    if (allowedTools(p.scopes).length === 0) {
      bearerError(reply, 403, 'insufficient_scope', 'Insufficient scope: this key has none of the operator scopes MCP needs');
      return null;
    }
    return { ...p, type: 'mcp', ip: req.ip };
  }

  /** The same check for the JSON endpoints used by `hive mcp`, answered in the Hive envelope. */
  async function principalOf(req: FastifyRequest): Promise<Principal> {
    const key = keyOf(req);
    if (!key) throw new HiveError('AUTH_REQUIRED', 'Send an API key in X-API-Key or Authorization: Bearer');
    const p = await verify(key, req.ip);
    if (allowedTools(p.scopes).length === 0) throw new HiveError('FORBIDDEN', 'This key has none of the operator scopes MCP needs');
    return { ...p, type: 'mcp', ip: req.ip };
  }

  // mcp.transport: stdio — only the endpoints `hive mcp` needs; no Streamable HTTP.
  if (config.mcp.transport !== 'stdio')
    app.post('/mcp', { config: { scope: 'public' } }, async (req, reply) => {
      const principal = await authenticate(req, reply);
      if (!principal) return reply;
      const executor = servicesExecutor(services, principal);
      const server = createHiveMcpServer({ caller: principal, executor, version: HUB_VERSION });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      await server.connect(transport);
      guardTransport(transport, principal, executor);
      open.add(server);
      reply.hijack();
      reply.raw.on('close', () => {
        open.delete(server);
        void server.close().catch(() => {});
      });
      try {
        await transport.handleRequest(req.raw, reply.raw, req.body);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'mcp request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' });
          reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null }));
        }
      }
      return reply;
    });

  // Stateless: no server-initiated stream and no sessions to delete.
  for (const method of ['GET', 'DELETE'] as const) {
    app.route({
      method,
      url: '/mcp',
      config: { scope: 'public' },
      handler: async (_req, reply) =>
        reply
          .status(405)
          .header('allow', 'POST')
          .send({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this endpoint is stateless, use POST' }, id: null }),
    });
  }

  app.get('/mcp/whoami', { config: { scope: 'public' } }, async (req) => {
    const p = await principalOf(req);
    return ok({ id: p.id, name: p.name, type: p.type, scopes: [...p.scopes], tools: allowedTools(p.scopes).map((t) => t.name) });
  });

  app.post('/mcp/audit', { config: { scope: 'public' }, schema: { body: AuditReport } }, async (req) => {
    const p = await principalOf(req);
    const rec = req.body;
    services.audit.log({
      actor: p,
      action: `mcp.${rec.kind}`,
      target: { type: `mcp_${rec.kind}`, id: rec.name },
      details: { transport: 'stdio', ...(rec.args ? { args: rec.args } : {}) },
      result: rec.result,
      error: rec.error ? `${rec.error.code}: ${rec.error.message}` : undefined,
    });
    return ok({ recorded: true });
  });

  return {
    close: async () => {
      await Promise.allSettled([...open].map((s) => s.close()));
      open.clear();
    },
  };
}
