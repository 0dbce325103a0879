import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, startHub, type TestHub } from './helpers.js';

const value = (text: string, name: string, labels: Record<string, string> = {}) => {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
};

describe('/metrics: the hive_* metrics of seed 003 §11.2 with plausible values after traffic', () => {
  let t: TestHub;
  let node: Awaited<ReturnType<typeof simNode>>;
  beforeAll(async () => {
    t = await startHub();
    node = await simNode(t.wsUrl, 'm-1');
    await simNode(t.wsUrl, 'm-2').then((n) => n.client.close());
  });
  afterAll(async () => {
    await node.client.close();
    await t.close();
    cleanup(t.dataDir);
  });

  it('counts satellites, connections, commands and API requests; needs a key', async () => {
    for (let i = 0; i < 3; i++) expect((await t.api('POST', '/api/v1/satellites/m-1/exec', { command: 'system.info' })).status).toBe(200);
    expect((await t.api('POST', '/api/v1/satellites/m-2/exec', { command: 'system.info' })).status).toBe(503);
    expect((await fetch(`${t.url}/metrics`)).status).toBe(401);
    const res = await fetch(`${t.url}/metrics`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(value(text, 'hive_satellites_total')).toBe(2);
    expect(value(text, 'hive_satellites_online')).toBe(1);
    expect(value(text, 'hive_websocket_connections')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'hive_sessions_active')).toBe(0);
    expect(value(text, 'hive_commands_total', { command: 'system.info', state: 'succeeded' })).toBe(3);
    expect(value(text, 'hive_commands_total', { command: 'system.info', state: 'failed' })).toBe(1);
    expect(value(text, 'hive_command_duration_seconds_count', { command: 'system.info' })).toBe(4);
    expect(value(text, 'hive_api_requests_total', { method: 'POST', route: '/api/v1/satellites/:id/exec', status: '200' })).toBe(3);
    expect(value(text, 'hive_api_request_duration_seconds_count', { method: 'POST', route: '/api/v1/satellites/:id/exec' })).toBe(4);
    expect(text).toMatch(/hive_satellites_total\{instance="hub_[^"]+"\} 2/);
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
  });
});
