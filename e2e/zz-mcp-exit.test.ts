import { spawn } from 'node:child_process';
import { it, expect } from 'vitest';
import { startHub, HIVE_BIN, cleanup, tempDir } from '/work/main/e2e/helpers.js';
it('exits on stdin end', async () => {
  const t = await startHub();
  const p = spawn(process.execPath, [HIVE_BIN, 'mcp'], { env: { PATH: process.env.PATH, HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, XDG_CONFIG_HOME: tempDir() }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } } }) + '\n');
  p.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  p.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'satellites_list', arguments: {} } }) + '\n');
  await new Promise((r) => { const i = setInterval(() => { if (out.includes('"id":2')) { clearInterval(i); r(null); } }, 20); });
  const t0 = Date.now();
  p.stdin.end();
  const code = await new Promise((r) => p.on('exit', r));
  console.log('exit', code, Date.now() - t0, 'ms');
  expect(Date.now() - t0).toBeLessThan(2000);
  await t.close(); cleanup(t.dataDir);
});
