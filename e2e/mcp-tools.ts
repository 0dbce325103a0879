/** MCP tools an operator.read key may use (mcp.test.ts and mcp-stdio.test.ts expect exactly these). */
export const READ_TOOLS = [
  'client_list_tasks',
  'client_task_output',
  'client_task_status',
  'job_get',
  'satellite_get',
  'satellite_metrics',
  'satellites_list',
  'session_get',
  'session_recording',
  'sessions_list',
  'vault_status',
];
