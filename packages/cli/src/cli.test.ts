import { describe, expect, it } from 'vitest';
import { buildCli } from './main.js';

describe('hive CLI', () => {
  it('every command has a description and --help', () => {
    const walk = (cmd: ReturnType<typeof buildCli>, trail: string[]): string[] => {
      const here = [...trail, cmd.name()];
      const missing = cmd.description() ? [] : [here.join(' ')];
      return [...missing, ...cmd.commands.flatMap((c) => walk(c as ReturnType<typeof buildCli>, here))];
    };
    const cli = buildCli();
    expect(walk(cli, [])).toEqual([]);
    const names = cli.commands.map((c) => c.name());
    for (const n of ['server', 'start', 'agent', 'login', 'satellites', 'pairing', 'exec', 'audit', 'keygen']) expect(names).toContain(n);
    expect(cli.helpInformation()).toContain('Usage: hive');
  });
});
