/**
 * The MCP surface of Hive. The hub serves it at /mcp (Streamable HTTP, see wiring/mcp.ts);
 * `hive mcp` loads this module at run time for stdio. Keep it free of imports that open stores
 * or start servers: the CLI imports it on its own.
 */
export type { HiveExecutor, McpBatch, McpCaller, McpCallRecord, McpJob } from './executor.js';
export { hubRequest, type RestTarget, restExecutor } from './rest-executor.js';
export { allowedTools, createHiveMcpServer, guardTransport, HIVE_TOOLS, type HiveTool, hasScope, waitJobs } from './server.js';
export { type McpIdentity, mcpWhoami, runStdioMcp } from './stdio.js';
