import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, runCli, spawnAgent, startHub, type TestHub } from './helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until<T>(fn: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('file transfer over streams (hive cp)', () => {
  let t: TestHub;
  let writer: AgentProc;
  let reader: AgentProc;
  let writerId: string;
  let readerId: string;
  let files: string;
  let local: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    // file.write needs approval by default; these tests are about the transfer itself.
    t = await startHub({ overrides: { approvals: { rules: [{ command: 'file.write', require: false }] } } });
    files = path.join(t.dataDir, 'files');
    local = path.join(t.dataDir, 'local');
    mkdirSync(files);
    mkdirSync(local);
    const wcfg = path.join(t.dataDir, 'writer.json');
    writeFileSync(wcfg, JSON.stringify({ policy: { allowed_paths: [files], allow_file_write: true } }));
    const rcfg = path.join(t.dataDir, 'reader.json');
    writeFileSync(rcfg, JSON.stringify({ policy: { allowed_paths: [files], allow_file_write: false } }));
    const op = await operator(t);
    writer = spawnAgent(t.wsUrl, path.join(t.dataDir, 'w'), ['--name', 'writer', '--tags', 'cp', '--config', wcfg]);
    writerId = (await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('writer'))).id;
    reader = spawnAgent(t.wsUrl, path.join(t.dataDir, 'r'), ['--name', 'reader', '--tags', 'cp', '--config', rcfg]);
    readerId = (await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('reader'))).id;
    await op.close();
    env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
  });
  afterAll(async () => {
    await writer?.kill();
    await reader?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  const tmpLeftovers = () => readdirSync(files).filter((n) => n.endsWith('.tmp'));

  it('uploads and downloads a multi-MB file with matching sha256', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const src = path.join(local, 'blob.bin');
    writeFileSync(src, data);
    const up = await runCli(['cp', src, `writer:${path.join(files, 'blob.bin')}`], env);
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).toContain(sha256(data));
    expect(sha256(readFileSync(path.join(files, 'blob.bin')))).toBe(sha256(data));
    const down = await runCli(['cp', `reader:${path.join(files, 'blob.bin')}`, path.join(local, 'back.bin')], env);
    expect(down.code, down.stderr).toBe(0);
    expect(sha256(readFileSync(path.join(local, 'back.bin')))).toBe(sha256(data));
    expect(tmpLeftovers()).toEqual([]);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=file.pushed');
    expect(audit.body.data[0].details).toMatchObject({ path: path.join(files, 'blob.bin'), sha256: sha256(data) });
  });

  it('push to a tag reports per-target results; the node path policy applies', async () => {
    const src = path.join(local, 'small.txt');
    writeFileSync(src, 'hello fleet\n');
    const r = await runCli(['cp', src, `tag:cp:${path.join(files, 'small.txt')}`, '--json'], env);
    expect(r.code).toBe(1); // one target refuses writes
    const out = JSON.parse(r.stdout);
    expect(out.summary).toEqual({ total: 2, succeeded: 1, failed: 1 });
    expect(out.results.find((x: any) => x.target === writerId).ok).toBe(true);
    expect(out.results.find((x: any) => x.target === readerId).error.code).toBe('UNKNOWN_COMMAND');
    const outside = await runCli(['cp', src, `writer:${path.join(t.dataDir, 'outside.txt')}`], env);
    expect(outside.code).toBe(1);
    expect(outside.stdout).toContain('PERMISSION_DENIED');
    expect(existsSync(path.join(t.dataDir, 'outside.txt'))).toBe(false);
    const missing = await runCli(['cp', `writer:${path.join(files, 'nope.txt')}`, local], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');
  });

  it('a wrong checksum or an interrupted upload never leaves a file behind', async () => {
    const target = path.join(files, 'partial.bin');
    const bad = await fetch(`${t.url}/api/v1/satellites/${writerId}/files?path=${encodeURIComponent(target)}`, {
      method: 'PUT',
      headers: { 'x-api-key': t.adminKey, 'content-type': 'application/octet-stream', 'x-hive-sha256': '0'.repeat(64) },
      body: randomBytes(1000),
    });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(existsSync(target)).toBe(false);

    // Announce 2 MiB, send 512 KiB, then drop the connection.
    const u = new URL(`${t.url}/api/v1/satellites/${writerId}/files?path=${encodeURIComponent(target)}`);
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: `${u.pathname}${u.search}`,
      method: 'PUT',
      headers: { 'x-api-key': t.adminKey, 'content-type': 'application/octet-stream', 'content-length': String(2 * 1024 * 1024) },
    });
    req.on('error', () => {});
    req.write(randomBytes(512 * 1024));
    await until(() => tmpLeftovers().length > 0, 'the node to start writing its temp file');
    req.destroy();
    await until(() => tmpLeftovers().length === 0, 'the temp file to be removed');
    expect(existsSync(target)).toBe(false);
  });
});

describe('stream frames and the message rate limit', () => {
  it('a transfer is paced by its credit window, not stalled by a tight message bucket (20 messages/s)', async () => {
    const t = await startHub({
      overrides: {
        limits: { messages_per_second: 20, message_burst: 20 },
        approvals: { rules: [{ command: 'file.write', require: false }] },
      },
    });
    const files = path.join(t.dataDir, 'files');
    mkdirSync(files);
    const cfg = path.join(t.dataDir, 'agent.json');
    writeFileSync(cfg, JSON.stringify({ policy: { allowed_paths: [files], allow_file_write: true } }));
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'a'), ['--name', 'paced', '--config', cfg]);
    try {
      const sat = await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('paced'));
      // 8 MiB = 128 chunks of 64 KiB plus their credit frames: far more than 20 messages in a second.
      const data = randomBytes(8 * 1024 * 1024);
      const target = path.join(files, 'paced.bin');
      const up = await fetch(`${t.url}/api/v1/satellites/${sat.id}/files?path=${encodeURIComponent(target)}`, {
        method: 'PUT',
        headers: { 'x-api-key': t.adminKey, 'content-type': 'application/octet-stream', 'x-hive-sha256': sha256(data) },
        body: data,
      });
      expect(up.status, await up.clone().text()).toBe(201);
      const down = await fetch(`${t.url}/api/v1/satellites/${sat.id}/files?path=${encodeURIComponent(target)}`, { headers: { 'x-api-key': t.adminKey } });
      expect(sha256(Buffer.from(await down.arrayBuffer()))).toBe(sha256(data));
    } finally {
      await op.close();
      await agent.kill();
      await t.close();
      cleanup(t.dataDir);
    }
  });
});
