import { describe, expect, it } from 'vitest';
import { allowedTools } from './server.js';

describe('MCP tool filter', () => {
  it('scopes decide the tools; client credentials narrow them to their allowed_tools', () => {
    const all = allowedTools(['operator.read', 'operator.write']).map((t) => t.name);
    expect(all).toContain('satellite_exec');
    expect(all).not.toContain('audit_query');
    expect(allowedTools(['operator.read', 'operator.write'], ['chat_smart', 'satellites_list']).map((t) => t.name)).toEqual(['satellites_list', 'chat_smart']);
    // a name the scopes do not allow stays out
    expect(allowedTools(['operator.read'], ['satellite_exec']).map((t) => t.name)).toEqual([]);
  });
});
