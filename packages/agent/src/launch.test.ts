import { afterEach, describe, expect, it } from 'vitest';
import { agentCommand } from './cli.js';
import { parseAgentArgs } from './launch.js';

/** The options commander hands to the action for `hive-agent <args>`, or 'refused' (help, version, errors). */
function commanderFlags(args: string[]): Record<string, unknown> | 'refused' {
  let got: Record<string, unknown> | undefined;
  const cmd = agentCommand('hive-agent')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .action((o: Record<string, unknown>) => {
      got = { ...o };
    });
  try {
    cmd.parse(['node', 'hive-agent', ...args]);
  } catch {
    return 'refused';
  }
  return got ?? 'refused';
}

const ENV = ['HIVE_HUB', 'HIVE_AGENT_STATE', 'HIVE_AGENT_CONFIG', 'HIVE_AGENT_LOG_LEVEL', 'HIVE_HUB_FINGERPRINT', 'HIVE_CA_FILE'];
const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

const ARGVS: string[][] = [
  [],
  ['--hub', 'ws://10.0.0.1:7420/ws', '--state', '/tmp/s', '--name', 'web-1', '--log-level', 'warn'],
  ['--hub=http://hub:7420', '--tags', 'a, b,,c', '--config', '/etc/hive/agent.yaml'],
  ['--hub-fingerprint', 'sha256:AB:CD', '--ca-file', '/ca.pem'],
  ['--name', 'a', '--name', 'b'],
  ['--name', ''],
  ['--name='],
  ['--name=a=b'],
  ['--name', '-x'],
  ['--name', '--hub', 'x'],
  ['--hub'],
  ['--help'],
  ['-h'],
  ['--version'],
  ['-V'],
  ['--bogus'],
  ['--bogus', 'x'],
  ['operand'],
  ['--hub', 'x', 'operand'],
  ['--'],
  ['--', '--hub', 'x'],
  ['-n', 'x'],
  ['--log-level', 'debug', '--state=/var/lib/hive-agent'],
];

describe('hive-agent command line without commander', () => {
  for (const env of [
    {},
    {
      HIVE_HUB: 'ws://env/ws',
      HIVE_AGENT_STATE: '/env/state',
      HIVE_AGENT_CONFIG: '/env/agent.yaml',
      HIVE_AGENT_LOG_LEVEL: 'debug',
      HIVE_HUB_FINGERPRINT: 'sha256:EE',
      HIVE_CA_FILE: '/env/ca.pem',
    },
  ]) {
    it(`gives the action what commander gives it, or leaves the line to commander (env: ${Object.keys(env).length ? 'set' : 'unset'})`, () => {
      for (const k of ENV) delete process.env[k];
      Object.assign(process.env, env);
      let fast = 0;
      for (const args of ARGVS) {
        const mine = parseAgentArgs(args);
        if (mine === undefined) continue;
        fast++;
        expect({ args, flags: mine }).toStrictEqual({ args, flags: commanderFlags(args) });
      }
      expect(fast).toBeGreaterThanOrEqual(8);
    });
  }

  it('the launcher takes the usual command line itself', () => {
    expect(parseAgentArgs(['--hub', 'ws://h/ws', '--state', '/s', '--name', 'n', '--log-level', 'warn'])).toMatchObject({
      hub: 'ws://h/ws',
      state: '/s',
      name: 'n',
      logLevel: 'warn',
    });
    for (const args of [['--help'], ['--version'], ['-V'], ['--bogus'], ['x'], ['--name', '-x']]) expect(parseAgentArgs(args)).toBeUndefined();
  });
});
