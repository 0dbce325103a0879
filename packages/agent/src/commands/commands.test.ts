import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE_COMMANDS, type NodeCommandName, type NodeCommandResult, StatusReport } from '@hive/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { handleInvoke } from '../agent.js';
import { type AgentConfigInput, parseAgentConfig } from '../config.js';
import { compilePolicy } from '../policy.js';
import { buildStatusReport } from '../status.js';
import { type CommandContext, runCommand } from './index.js';
import { powerArgv } from './power.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-cmds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ctxFor(cfg: AgentConfigInput): CommandContext {
  return { policy: compilePolicy(parseAgentConfig(cfg), { stateDir: path.join(dir, 'state') }), version: '9.9.9', log: () => {} };
}
const ctx = ctxFor({ policy: { allowed_paths: [dir], allow_file_write: true } });

async function ok<C extends NodeCommandName>(command: C, params: unknown, c = ctx) {
  const r = await runCommand(c, command, params);
  return NODE_COMMANDS[command].result.parse(r) as NodeCommandResult<C>;
}

describe('read-only catalog commands return their result schema', () => {
  it('system.info, system.health, system.metrics, process.list', async () => {
    expect((await ok('system.info', {})).agent.version).toBe('9.9.9');
    const health = await ok('system.health', {});
    expect(['healthy', 'degraded', 'unhealthy']).toContain(health.status);
    expect(health.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['memory', 'disk', 'load']));
    const metrics = await ok('system.metrics', {});
    expect(metrics.cpu.cores).toBeGreaterThan(0);
    if (os.platform() === 'linux') {
      expect(metrics.disks.length).toBeGreaterThan(0);
      expect(metrics.network.some((n) => n.iface === 'lo')).toBe(true);
    }
    const procs = await ok('process.list', { sort: 'mem', limit: 5 });
    expect(procs.processes.length).toBeLessThanOrEqual(5);
    expect(procs.processes.length).toBeGreaterThan(0);
    expect(procs.processes[0]!.rssBytes).toBeGreaterThanOrEqual(procs.processes.at(-1)!.rssBytes);
  });

  it('service.status needs systemd; without it SERVICE_NOT_RUNNING; bad unit names never reach systemctl', async () => {
    const hasSystemd = (() => {
      try {
        return statSync('/run/systemd/system').isDirectory();
      } catch {
        return false;
      }
    })();
    if (hasSystemd) expect((await ok('service.status', { units: ['hive-does-not-exist.service'] })).units[0]?.status).toBe('not-found');
    else await expect(runCommand(ctx, 'service.status', { units: ['ssh'] })).rejects.toMatchObject({ code: 'SERVICE_NOT_RUNNING' });
    for (const units of [['-H', 'evil'], ['ssh;reboot'], ['a b'], ['$(id)']]) {
      await expect(runCommand(ctx, 'service.status', { units })).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    }
    await expect(runCommand(ctx, 'service.status', {})).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
  });

  it('containers answer SERVICE_NOT_RUNNING without an engine socket', async () => {
    const c = ctxFor({ containers: { socket: path.join(dir, 'no-docker.sock') } });
    for (const [cmd, p] of [
      ['container.list', {}],
      ['container.spawn', { image: 'nginx:latest' }],
      ['container.stop', { id: 'abc123' }],
    ] as const) {
      await expect(runCommand(c, cmd, p)).rejects.toMatchObject({ code: 'SERVICE_NOT_RUNNING' });
    }
    await expect(runCommand(c, 'container.spawn', { image: 'nginx; rm -rf /' })).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    const limited = ctxFor({ containers: { allowed_images: ['registry.local/'] } });
    await expect(runCommand(limited, 'container.spawn', { image: 'nginx:latest' })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});

describe('files', () => {
  it('writes atomically, reads back (utf8 and base64), lists, caps sizes', async () => {
    const f = path.join(dir, 'notes.txt');
    const w = await ok('file.write', { path: f, content: 'hello\n', fileMode: '0640' });
    expect(w).toMatchObject({ bytes: 6, created: true, realPath: f });
    expect(statSync(f).mode & 0o777).toBe(0o640);
    expect((await ok('file.read', { path: f })).content).toBe('hello\n');
    await ok('file.write', { path: f, content: Buffer.from([0, 1, 2, 255]).toString('base64'), encoding: 'base64' });
    expect(readFileSync(f)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(statSync(f).mode & 0o777).toBe(0o640);
    expect((await ok('file.read', { path: f, encoding: 'base64' })).content).toBe('AAEC/w==');
    await expect(runCommand(ctx, 'file.write', { path: f, content: 'x', mode: 'create' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const list = await ok('file.list', { path: dir });
    expect(list.entries.find((e) => e.name === 'notes.txt')).toMatchObject({ type: 'file', size: 4, mode: '0640' });
    expect(list.entries.some((e) => e.name.includes('.hive-'))).toBe(false);
    const small = ctxFor({ policy: { allowed_paths: [dir], allow_file_write: true }, files: { max_read_bytes: 1024, max_write_bytes: 1024 } });
    writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(4096, 7));
    const part = await ok('file.read', { path: path.join(dir, 'big.bin') }, small);
    expect(part).toMatchObject({ bytes: 1024, size: 4096, truncated: true });
    await expect(runCommand(small, 'file.write', { path: path.join(dir, 'big2'), content: 'x'.repeat(2000) })).rejects.toMatchObject({
      code: 'INVALID_PARAMETERS',
    });
  });

  it('refuses traversal, symlink escapes and writes through a symlinked directory', async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'hive-outside-'));
    try {
      writeFileSync(path.join(outside, 'secret'), 'top secret');
      symlinkSync(path.join(outside, 'secret'), path.join(dir, 'evil-link'));
      mkdirSync(path.join(dir, 'sub'), { recursive: true });
      symlinkSync(outside, path.join(dir, 'sub', 'evil-dir'));
      for (const p of [`${dir}/../${path.basename(outside)}/secret`, path.join(dir, 'evil-link'), path.join(dir, 'sub', 'evil-dir', 'secret')]) {
        await expect(runCommand(ctx, 'file.read', { path: p }), p).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
        await expect(runCommand(ctx, 'file.write', { path: p, content: 'pwned' }), p).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      }
      await expect(runCommand(ctx, 'file.write', { path: path.join(dir, 'sub', 'evil-dir', 'new'), content: 'x' })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(runCommand(ctx, 'file.list', { path: path.join(dir, 'sub', 'evil-dir') })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('top secret');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('local policy on the node (whatever the hub says)', () => {
  it('switches refuse with PERMISSION_DENIED', async () => {
    const locked = ctxFor({ policy: { allow_bash: false, allow_file_read: false, allow_file_write: false, allow_logs: false, allow_containers: false } });
    for (const [cmd, p] of [
      ['system.run', { argv: ['echo', 'x'] }],
      ['file.read', { path: path.join(dir, 'notes.txt') }],
      ['file.list', { path: dir }],
      ['file.write', { path: path.join(dir, 'x'), content: 'x' }],
      ['logs.collect', {}],
      ['logs.search', { pattern: 'x' }],
      ['logs.analyze', {}],
      ['container.list', {}],
      ['power', { action: 'reboot' }],
    ] as const) {
      await expect(runCommand(locked, cmd, p), cmd).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
  });

  it('system.run: blocklisted argv is refused even when the program is allowlisted', async () => {
    const c = ctxFor({ system_run: { allow: ['rm', 'dd', 'bash', 'echo', 'sudo'] } });
    for (const argv of [
      ['rm', '-rf', '/'],
      ['dd', 'if=/dev/zero', 'of=/dev/sda'],
      ['bash', '-c', 'id'],
      ['sudo', 'rm', '-rf', '/etc'],
      ['echo', ':(){ :|:& };:'],
    ]) {
      await expect(runCommand(c, 'system.run', { argv }), argv.join(' ')).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        details: { rule: expect.any(String) },
      });
    }
    expect(await runCommand(c, 'system.run', { argv: ['echo', 'still fine'] })).toMatchObject({ exitCode: 0, stdout: 'still fine\n' });
  });

  it('power is refused unless enabled, and uses systemctl or shutdown(8) by argv', async () => {
    await expect(runCommand(ctx, 'power', { action: 'shutdown', delay_s: 60 })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(runCommand(ctxFor({ policy: { allow_power: true } }), 'power', { action: 'halt' })).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    expect(powerArgv('reboot', { systemd: true, has: () => true })).toEqual(['systemctl', 'reboot']);
    expect(powerArgv('shutdown', { systemd: true, has: () => true })).toEqual(['systemctl', 'poweroff']);
    expect(powerArgv('reboot', { systemd: false, has: (p) => p === 'shutdown' })).toEqual(['shutdown', '-r', 'now']);
    expect(powerArgv('reboot', { systemd: false, has: () => false })).toBeUndefined();
  });

  it('handleInvoke re-validates params, refuses expired invokes and unknown commands', async () => {
    const inv = (command: string, params: unknown, deadline = Date.now() + 10_000) =>
      handleInvoke(ctx, 'invoke', { command, params, correlationId: 'c-1', issuedAt: Date.now(), deadline });
    await expect(inv('system.run', { argv: ['echo'], extra: true })).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    await expect(inv('file.read', { path: 'relative' })).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    await expect(inv('system.info', {}, Date.now() - 1)).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(inv('nope.cmd', {})).rejects.toMatchObject({ code: 'UNKNOWN_COMMAND' });
    await expect(inv('script.undeclared', {})).rejects.toMatchObject({ code: 'UNKNOWN_COMMAND' });
    await expect(handleInvoke(ctx, 'other.method', {})).rejects.toMatchObject({ code: 'UNKNOWN_METHOD' });
    expect(await inv('system.info', {})).toMatchObject({ agent: { version: '9.9.9' } });
  });
});

describe('status report', () => {
  it('matches the StatusReport schema; services unknown without systemd; containers null without an engine', async () => {
    const policy = compilePolicy(parseAgentConfig({ services: { watch: ['ssh', 'nginx'] }, containers: { socket: path.join(dir, 'none.sock') } }));
    const r = StatusReport.parse(await buildStatusReport(policy));
    expect(r.containers).toBeNull();
    expect(Object.keys(r.services).sort()).toEqual(['nginx', 'ssh']);
    expect(r.sessions).toEqual({ active: 0, total_today: 0 });
    expect(r.health.memory_usage_mb).toBeGreaterThan(0);
    expect(r.system.load_average).toHaveLength(3);
  });
});
