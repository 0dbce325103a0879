import type { Scope } from '@hive/protocol';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { hubRequest, type RestTarget, restExecutor } from './rest-executor.js';
import { createHiveMcpServer, guardTransport } from './server.js';

export interface McpIdentity {
  id: string;
  name: string;
  type: string;
  scopes: Scope[];
  tools: string[];
}

/** Who the key is, as the hub sees it (`GET /mcp/whoami`); fails with AUTH_* on a bad key. */
export async function mcpWhoami(t: RestTarget): Promise<McpIdentity> {
  return (await hubRequest<McpIdentity>(t, 'GET', '/mcp/whoami')).data;
}

/**
 * `hive mcp`: an MCP server on stdin/stdout whose tools call the hub's REST API with the key.
 * Resolves when the client closes the connection. Nothing but JSON-RPC is written to stdout.
 */
export async function runStdioMcp(
  t: RestTarget & { version: string },
  io: { stdin?: NodeJS.ReadableStream; stdout?: NodeJS.WritableStream } = {},
): Promise<void> {
  const me = await mcpWhoami(t);
  const caller = { id: me.id, name: me.name, scopes: me.scopes };
  const executor = restExecutor(t);
  const server = createHiveMcpServer({ caller, executor, version: t.version });
  const transport = new StdioServerTransport(
    (io.stdin ?? process.stdin) as ConstructorParameters<typeof StdioServerTransport>[0],
    (io.stdout ?? process.stdout) as ConstructorParameters<typeof StdioServerTransport>[1],
  );
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  guardTransport(transport, caller, executor);
  const stdin = io.stdin ?? process.stdin;
  // The client ends the session by closing our stdin.
  stdin.once('end', () => void server.close());
  await closed;
}
