import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../config.js';
import { parseScriptOutput, runScript, scriptInvocation, scriptParamsSchema } from './script.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A script that echoes how it was called as its JSON result, or fails as told by --mode. */
const script = path.join(dir, 'probe.sh');
writeFileSync(
  script,
  `#!/bin/sh
mode=ok
for a in "$@"; do case "$a" in --mode=*) mode=\${a#--mode=} ;; esac; done
[ -n "\${HIVE_PARAM_MODE:-}" ] && mode=$HIVE_PARAM_MODE
stdin=$(cat)
case "$mode" in
  ok) echo "some log line"; printf '{"ok":true,"data":{"argc":%d,"args":"%s","env_user":"%s","stdin":%s,"path":"%s"}}\\n' "$#" "$*" "\${HIVE_PARAM_USERNAME:-}" "\${stdin:-null}" "$PATH" ;;
  exists) echo '{"ok":false,"error":{"code":"USER_ALREADY_EXISTS","message":"alice exists"}}'; exit 1 ;;
  weird) echo '{"ok":false,"error":{"code":"DROP_TABLES","message":"nope"}}'; exit 1 ;;
  exit3) echo "no json here" >&2; exit 3 ;;
  exit42) exit 42 ;;
  slow) sleep 5 ;;
esac
`,
);
chmodSync(script, 0o755);

const params = {
  username: { type: 'string', required: true, pattern: '[a-z][a-z0-9_-]{2,31}', max_length: 32 },
  mode: { type: 'enum', values: ['ok', 'exists', 'weird', 'exit3', 'exit42', 'slow'], default: 'ok' },
  days: { type: 'int', min: 1, max: 3650 },
  admin: { type: 'bool' },
};
const cfg = parseAgentConfig({
  scripts: {
    argv_probe: { path: script, params },
    env_probe: { path: script, pass: 'env', params },
    stdin_probe: { path: script, pass: 'stdin', params },
    slow_probe: { path: script, timeout_s: 1, params },
  },
});
const decl = (n: string) => cfg.scripts[n]!;

describe('script params (typed, validated on the node)', () => {
  it('accepts declared types, applies defaults, refuses everything else', () => {
    const s = scriptParamsSchema(decl('argv_probe'));
    expect(s.parse({ username: 'alice', days: 30, admin: true })).toEqual({ username: 'alice', days: 30, admin: true, mode: 'ok' });
    for (const bad of [
      {},
      { username: 'Alice' },
      { username: 'al' },
      { username: 'alice; rm -rf /' },
      { username: 'alice\nx' },
      { username: 'alice', days: 0 },
      { username: 'alice', days: 1.5 },
      { username: 'alice', days: '30' },
      { username: 'alice', admin: 'yes' },
      { username: 'alice', mode: 'other' },
      { username: 'alice', extra: 1 },
    ]) {
      expect(s.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('passes params as one argv element each, as env vars, or as JSON on stdin', () => {
    const v = { username: 'alice', days: 30, admin: false, mode: 'ok' };
    expect(scriptInvocation(decl('argv_probe'), v).args).toEqual(['--username=alice', '--mode=ok', '--days=30', '--admin=false']);
    expect(scriptInvocation(decl('env_probe'), v).env).toEqual({
      HIVE_PARAM_USERNAME: 'alice',
      HIVE_PARAM_DAYS: '30',
      HIVE_PARAM_ADMIN: 'false',
      HIVE_PARAM_MODE: 'ok',
    });
    expect(JSON.parse(scriptInvocation(decl('stdin_probe'), v).stdin)).toEqual(v);
  });

  it('reads the trailing JSON result line', () => {
    expect(parseScriptOutput('a\nb\n{"ok":true,"data":{"x":1}}\n')).toEqual({ result: { ok: true, data: { x: 1 } }, rest: 'a\nb\n' });
    expect(parseScriptOutput('{"ok":false}')).toEqual({ result: { ok: false }, rest: '' });
    expect(parseScriptOutput('{"not":"a result"}\n').result).toBeUndefined();
    expect(parseScriptOutput('plain\n').result).toBeUndefined();
  });
});

describe('running script commands', () => {
  it('runs with argv flags and returns the data of the result line', async () => {
    const r = await runScript('argv_probe', decl('argv_probe'), { username: 'alice', days: 7 });
    expect(r.exitCode).toBe(0);
    expect(r.data).toMatchObject({ argc: 3, args: '--username=alice --mode=ok --days=7' });
    expect(r.data?.path).not.toContain('node_modules');
    expect(r.stdout).toBe('some log line\n');
  });

  it('runs with env vars and with stdin JSON', async () => {
    expect((await runScript('env_probe', decl('env_probe'), { username: 'bob' })).data).toMatchObject({ argc: 0, env_user: 'bob' });
    expect((await runScript('stdin_probe', decl('stdin_probe'), { username: 'carol' })).data).toMatchObject({
      argc: 0,
      stdin: { username: 'carol', mode: 'ok' },
    });
  });

  it('an injection attempt is refused before anything runs', async () => {
    await expect(runScript('argv_probe', decl('argv_probe'), { username: 'x$(touch /tmp/pwned)' })).rejects.toMatchObject({
      code: 'INVALID_PARAMETERS',
      details: { issues: [expect.stringContaining('username')] },
    });
  });

  it('maps reported and exit-code errors to seed 004 codes', async () => {
    await expect(runScript('argv_probe', decl('argv_probe'), { username: 'alice', mode: 'exists' })).rejects.toMatchObject({
      code: 'USER_ALREADY_EXISTS',
      message: 'alice exists',
    });
    await expect(runScript('argv_probe', decl('argv_probe'), { username: 'alice', mode: 'weird' })).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
      details: { reportedCode: 'DROP_TABLES' },
    });
    await expect(runScript('argv_probe', decl('argv_probe'), { username: 'alice', mode: 'exit3' })).rejects.toMatchObject({
      code: 'USER_NOT_FOUND',
      details: { exitCode: 3, stderr: 'no json here\n' },
    });
    await expect(runScript('argv_probe', decl('argv_probe'), { username: 'alice', mode: 'exit42' })).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });

  it('kills a script that runs past its timeout', async () => {
    const started = Date.now();
    await expect(runScript('slow_probe', decl('slow_probe'), { username: 'alice', mode: 'slow' })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(4500);
  });
});
