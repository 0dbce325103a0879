import type { Command } from 'commander';
import { ApiError, type CliFlags, hubFetch, resolveAuth } from '../api.js';

// The MCP surface lives in the server package; the CLI loads it on demand so `hive` itself starts
// without it.
type McpModule = typeof import('@hive/server/mcp');

const VERSION = '0.1.0';

/**
 * The MCP module of @hive/server (`@hive/server/mcp`). Loaded on demand and on its own, so `hive mcp` opens no store and starts no server.
 */
function loadMcp(): Promise<McpModule> {
  return import('@hive/server/mcp');
}

/** `hive mcp`: MCP over stdio, connected to the hub as an operator with the given key. */
export function addMcpCommands(program: Command): void {
  program
    .command('mcp')
    .description(
      'Serve the Hive MCP tools over stdio for an AI assistant (Claude Desktop, Cursor, …); calls the hub with HIVE_URL / HIVE_API_KEY and offers only what the key allows',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const auth = resolveAuth(cmd.optsWithGlobals() as CliFlags);
      if (!auth.apiKey) throw new ApiError(0, 'AUTH_REQUIRED', 'Give --api-key or set HIVE_API_KEY (an API key of the hub)');
      const mcp = await loadMcp();
      try {
        await mcp.runStdioMcp({ url: auth.url, apiKey: auth.apiKey, version: VERSION, fetch: (url, init) => hubFetch(auth, url, init) });
      } catch (err) {
        const e = err as { code?: string; message?: string; details?: Record<string, unknown> };
        if (e.code)
          throw new ApiError(
            e.code === 'SERVICE_NOT_RUNNING' ? 0 : 1,
            e.code === 'SERVICE_NOT_RUNNING' ? 'HUB_UNREACHABLE' : e.code,
            e.message ?? '',
            e.details,
          );
        throw err;
      }
    });
}
