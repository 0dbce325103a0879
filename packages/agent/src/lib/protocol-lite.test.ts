import * as protocol from '@hive/protocol';
import { describe, expect, it } from 'vitest';
import { AgentConfigSchema } from '../config.js';
import { configWithoutFile, DEFAULT_ALLOW, defaultAgentConfig, readAgentConfig } from '../config-defaults.js';
import { COMMAND_SWITCH, isNodeCommand } from '../policy.js';
import * as lite from './protocol-lite.js';

describe('zod-free start path', () => {
  it('protocol-lite is the protocol: the same HiveError, names, patterns and lists (one module instance each)', () => {
    expect(lite.HiveError).toBe(protocol.HiveError);
    expect(lite.SCRIPT_COMMAND_PREFIX).toBe(protocol.SCRIPT_COMMAND_PREFIX);
    expect(lite.SCRIPT_NAME_RE).toBe(protocol.SCRIPT_NAME_RE);
    expect(lite.SCRIPT_PARAM_NAME_RE).toBe(protocol.SCRIPT_PARAM_NAME_RE);
    expect(lite.UNIT_NAME_RE).toBe(protocol.UNIT_NAME_RE);
    expect(lite.DEFAULT_SYSTEM_RUN_ALLOW).toBe(protocol.DEFAULT_SYSTEM_RUN_ALLOW);
    expect(lite.isScriptCommand).toBe(protocol.isScriptCommand);
  });

  it('the policy lists the catalog commands in the catalog order', () => {
    expect(Object.keys(COMMAND_SWITCH)).toEqual(Object.keys(protocol.NODE_COMMANDS));
    for (const name of [...Object.keys(protocol.NODE_COMMANDS), 'session.open', 'script.x', 'toString', '__proto__', 'nope']) {
      expect(isNodeCommand(name)).toBe(protocol.isNodeCommand(name));
    }
  });

  it('the written-out defaults are the schema defaults, key order included', () => {
    const zod = AgentConfigSchema.parse({});
    expect(defaultAgentConfig()).toStrictEqual(zod);
    expect(JSON.stringify(defaultAgentConfig())).toBe(JSON.stringify(zod));
    expect(DEFAULT_ALLOW).toEqual(protocol.DEFAULT_SYSTEM_RUN_ALLOW);
    // A new object each time: nothing a caller changes leaks into the next config.
    const a = defaultAgentConfig();
    a.policy.allowed_paths.push('/x');
    a.system_run.allow.push('rm');
    expect(defaultAgentConfig()).toStrictEqual(zod);
  });

  it('without a file the agent runs on the defaults, unless HIVE_AGENT_CONFIG named that file', async () => {
    expect(await readAgentConfig(undefined)).toStrictEqual(AgentConfigSchema.parse({}));
    expect(await readAgentConfig('/nonexistent/agent.yaml')).toStrictEqual(AgentConfigSchema.parse({}));
    const before = process.env.HIVE_AGENT_CONFIG;
    process.env.HIVE_AGENT_CONFIG = '/nonexistent/agent.yaml';
    try {
      expect(() => configWithoutFile('/nonexistent/agent.yaml')).toThrow(/not found/);
      await expect(readAgentConfig('/nonexistent/agent.yaml')).rejects.toThrow(/not found/);
    } finally {
      if (before === undefined) delete process.env.HIVE_AGENT_CONFIG;
      else process.env.HIVE_AGENT_CONFIG = before;
    }
  });
});
