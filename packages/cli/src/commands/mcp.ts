import type { Command } from 'commander';

/** `hive mcp`: MCP over stdio, connected to the hub as an operator with the given key. */
export function addMcpCommands(_program: Command): void {}
