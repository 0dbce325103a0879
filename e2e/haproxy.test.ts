import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mintToken } from '@hive/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPrereqsMissing, dropSchema, eventually, PG_URL, REDIS_URL } from './cluster-probe.js';
import { type AgentProc, cleanup, freePort, ROOT, restClient, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

/** Debian's haproxy (`.ci/run` installs it). */
const HAPROXY = process.env.HAPROXY_PATH ?? 'haproxy';
const haproxyMissing = spawnSync(HAPROXY, ['-v']).status === 0 ? null : `no ${HAPROXY} binary (apt-get install haproxy, or set HAPROXY_PATH)`;
const missing = haproxyMissing ?? (await clusterPrereqsMissing());
if (missing) console.warn(`[haproxy e2e] skipped: ${missing}`);

/**
 * The README's HAProxy example, as printed there, pointed at this test's hubs: the frontend binds a
 * free loopback port and the two `server` lines name the hubs' ports. The hubs listen on loopback,
 * where they speak plain HTTP, so the health checks drop the README's `check-ssl verify none`; and
 * `maxconn` is lowered to 4,000 (HAProxy wants two descriptors per connection, and a process here
 * may hold 20,000).
 */
function readmeConfig(port: number, hubPorts: [number, number]): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /```haproxy\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no ```haproxy block');
  let servers = 0;
  const cfg = block
    .replace(/^(\s*maxconn\s+)\d+/m, (_m, head: string) => `${head}4000`)
    .replace(/^(\s*bind\s+):7420\b/m, `$1127.0.0.1:${port}`)
    .replace(
      /^(\s*server\s+\S+\s+)\S+:7420(.*)$/gm,
      (_m, head: string, rest: string) => `${head}127.0.0.1:${hubPorts[servers++]}${rest.replace(' check-ssl verify none', '')}`,
    );
  if (servers !== 2 || !cfg.includes(`127.0.0.1:${port}`))
    throw new Error(`README's haproxy block no longer has one bind :7420 and two server lines:\n${block}`);
  return cfg;
}

/** Connected satellites of one hub, from its own readiness answer. */
async function nodesOn(t: TestHub): Promise<number> {
  const r = await t.api('GET', '/health/ready');
  return Number(r.body?.nodes ?? -1);
}

describe.skipIf(missing !== null)("the README's HAProxy example in front of two hub instances (real haproxy, PostgreSQL, Redis)", () => {
  const schema = `hive_haproxy_${randomBytes(5).toString('hex')}`;
  const prefix = `hive-test-${randomBytes(4).toString('hex')}`;
  const adminKey = mintToken('hive').token;
  const dirA = tempDir();
  const dirB = tempDir();
  const dirLb = tempDir();
  const hubs: TestHub[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyLog = '';
  let agent: AgentProc | undefined;
  let lbPort = 0;
  /** The REST API as operators reach it: through haproxy. */
  let lb: TestHub['api'];

  const overrides = (instance: string) => ({
    database: { driver: 'postgres' as const, connection: PG_URL, schema },
    cluster: { redis_url: REDIS_URL, key_prefix: prefix, presence_ttl: 3000, instance_id: instance },
  });

  beforeAll(async () => {
    hubs.push(await startHub({ dataDir: dirA, adminKey, overrides: overrides('inst-a') }));
    hubs.push(await startHub({ dataDir: dirB, adminKey, overrides: overrides('inst-b') }));
    lbPort = await freePort();
    const cfg = path.join(dirLb, 'haproxy.cfg');
    writeFileSync(cfg, readmeConfig(lbPort, [hubs[0]?.port ?? 0, hubs[1]?.port ?? 0]));
    const check = spawnSync(HAPROXY, ['-c', '-f', cfg], { encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout?.on('data', (d) => {
      haproxyLog += d;
    });
    haproxy.stderr?.on('data', (d) => {
      haproxyLog += d;
    });
    lb = restClient(`http://127.0.0.1:${lbPort}`, adminKey);
    await eventually(
      async () => (await lb('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200,
      `haproxy on ${lbPort} forwarding (log: ${haproxyLog})`,
    );
  });
  afterAll(async () => {
    await agent?.kill();
    haproxy?.kill('SIGTERM');
    for (const h of hubs) await h.close();
    cleanup(dirA);
    cleanup(dirB);
    cleanup(dirLb);
    await dropSchema(schema);
  });

  it('an agent and an operator reach the fleet only through it; the instance holding the agent stops and the agent is back on the other, commands following', async () => {
    agent = spawnAgent(`ws://127.0.0.1:${lbPort}/ws`, path.join(dirLb, 'agent'), ['--name', 'behind-haproxy']);
    const online = await eventually(async () => {
      const r = await lb('GET', '/api/v1/satellites/behind-haproxy');
      return r.body?.data?.status === 'online' ? r.body.data : undefined;
    }, 'the agent online, seen through haproxy');

    const first = await lb('POST', '/api/v1/satellites/behind-haproxy/exec', { command: 'system.info', params: {} });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.data.state).toBe('succeeded');

    // Which instance holds the agent's socket: exactly one of them.
    const held = await Promise.all(hubs.map(nodesOn));
    expect([...held].sort()).toEqual([0, 1]);
    const holder = held.indexOf(1);
    const other = hubs[1 - holder] as TestHub;
    await hubs[holder]?.close();
    hubs.splice(holder, 1);

    // The agent reconnects through the same address; haproxy sends it to the instance left.
    await eventually(async () => (await nodesOn(other)) === 1, `the agent back on the other instance (haproxy log: ${haproxyLog})`, 40_000);
    const again = await eventually(async () => {
      const r = await lb('POST', '/api/v1/satellites/behind-haproxy/exec', { command: 'system.info', params: {} });
      return r.status === 200 && r.body?.data?.state === 'succeeded' ? r.body.data : undefined;
    }, 'a command through haproxy after the move');
    expect(again.satellite_id).toBe(online.id);
    const list = await lb('GET', '/api/v1/satellites');
    expect(list.body.pagination.total).toBe(1);
  });
});
