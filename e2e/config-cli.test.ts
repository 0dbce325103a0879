import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanup, runCli, tempDir } from './helpers.js';

describe('hive server --print-config and config errors', () => {
  it('prints the effective config (file < env < flags) with secrets redacted', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'server.yaml');
    writeFileSync(
      file,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a YAML file with ${ENV} references
      'server:\n  port: 9000\nauth:\n  jwt_secret: "${JWT_SECRET}"\ndatabase:\n  driver: postgres\n  connection: postgres://hive:${DB_PASS}@db:5432/hive\n',
    );
    const res = await runCli(['server', '--config', file, '--port', '9100', '--print-config'], {
      JWT_SECRET: 'super-secret-jwt',
      DB_PASS: 'pg-pass-123',
      HIVE_HOST: '0.0.0.0',
      HIVE_REDIS_URL: 'redis://:redis-pass-456@cache:6379/0',
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('port: 9100');
    expect(res.stdout).toContain('host: 0.0.0.0');
    expect(res.stdout).toContain('connection: postgres://hive:[REDACTED]@db:5432/hive');
    expect(res.stdout).toContain('jwt_secret: "[REDACTED]"');
    expect(res.stdout).not.toContain('super-secret-jwt');
    expect(res.stdout).not.toContain('pg-pass-123');
    expect(res.stdout).toContain('redis_url: redis://:[REDACTED]@cache:6379/0');
    expect(res.stdout).not.toContain('redis-pass-456');
    cleanup(dir);
  });

  it('a bad key is named and the exit code is 2', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'server.yaml');
    writeFileSync(file, 'agents:\n  heartbeat_interval: often\n');
    const res = await runCli(['server', '--config', file, '--print-config'], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/agents\.heartbeat_interval/);
    writeFileSync(file, 'servr:\n  port: 1\n');
    const typo = await runCli(['server', '--config', file], {});
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/servr/);
    cleanup(dir);
  });
});

describe('mcp section (seed 003 §4)', () => {
  it('transport stdio serves only what `hive mcp` needs; enabled: false serves no MCP at all', async () => {
    const { startHub } = await import('./helpers.js');
    const stdio = await startHub({ overrides: { mcp: { transport: 'stdio' } } });
    try {
      const http = await fetch(`${stdio.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stdio.adminKey}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(http.status).toBe(404);
      expect((await stdio.api('GET', '/mcp/whoami')).status).toBe(200);
    } finally {
      await stdio.close();
      cleanup(stdio.dataDir);
    }
    const off = await startHub({ overrides: { mcp: { enabled: false } } });
    try {
      expect((await off.api('GET', '/mcp/whoami')).status).toBe(404);
      expect((await off.api('GET', '/api/v1/satellites')).status).toBe(200);
    } finally {
      await off.close();
      cleanup(off.dataDir);
    }
  });
});

describe('logging section', () => {
  it('format text on stdout, and JSON lines appended to logging.file', async () => {
    const { spawn } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    const { HIVE_BIN } = await import('./helpers.js');
    const dir = tempDir();
    const cfg = path.join(dir, 'server.yaml');
    writeFileSync(cfg, 'logging:\n  format: text\n  file: logs/hub.log\n');
    const p = spawn(process.execPath, [HIVE_BIN, 'server', '--config', cfg, '--data', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (d) => {
      out += d;
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      p.stderr?.on('data', (d) => {
        err += d;
        if (err.includes('listening on')) resolve();
      });
      p.on('exit', () => reject(new Error(err)));
    });
    // 'close', not 'exit': only then has everything the hub wrote to stdout been read.
    const closed = new Promise((r) => p.on('close', r));
    p.kill('SIGTERM');
    await closed;
    const lines = readFileSync(path.join(dir, 'logs/hub.log'), 'utf8').trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; svc: string });
    expect(parsed.some((l) => l.msg === 'hub listening' && l.svc === 'hive-hub')).toBe(true);
    expect(out).toContain('hub listening');
    expect(out.trimStart().startsWith('{')).toBe(false);
    cleanup(dir);
  });
});
