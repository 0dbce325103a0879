/**
 * Failure behaviour of a two-instance cluster (issue #8): hub processes behind a TCP load
 * balancer, real agent processes, PostgreSQL and Redis on 127.0.0.1 — which this file stops and
 * starts again (it runs in its own vitest pass, after the main suite, one file at a time).
 */
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { mintToken } from '@hive/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPrereqsMissing, dropSchema, eventually, PG_URL, pgQuery, REDIS_URL } from '../cluster-probe.js';
import { type AgentProc, cleanup, HIVE_BIN, operator, restClient, spawnAgent, type TestHub, tempDir } from '../helpers.js';
import { startLb } from '../lb.js';

const missing = await clusterPrereqsMissing();
if (missing) console.warn(`[cluster faults] skipped: ${missing}`);

interface HubProc {
  proc: ChildProcess;
  url: string;
  port: number;
  stderr: string[];
  exited: Promise<unknown>;
}

function startHubProc(dataDir: string, configFile: string, adminKey: string, port = 0): Promise<HubProc> {
  const proc = spawn(process.execPath, [HIVE_BIN, 'server', '--config', configFile, '--data', dataDir, '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, ADMIN_API_KEY: adminKey, HIVE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  const exited = new Promise((r) => proc.on('exit', r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start: ${stderr.join('')}`)), 30_000);
    proc.stderr?.on('data', (d: Buffer) => {
      stderr.push(d.toString());
      const m = /Hive hub listening on (http:\/\/[^\s]+)/.exec(stderr.join(''));
      if (m?.[1]) {
        clearTimeout(timer);
        const url = m[1];
        resolve({ proc, url, port: Number(new URL(url).port), stderr, exited });
      }
    });
    void exited.then(() => reject(new Error(`hub exited: ${stderr.join('')}`)));
  });
}

/** A TestHub-shaped handle on a hub process, for `operator()`. */
function handle(h: HubProc, adminKey: string): TestHub {
  return {
    url: h.url,
    wsUrl: `${h.url.replace('http', 'ws')}/ws`,
    port: h.port,
    adminKey,
    api: restClient(h.url, adminKey),
  } as unknown as TestHub;
}

const pgCluster = () => execSync('ls /etc/postgresql').toString().trim().split('\n')[0];
const pgStop = () => execSync(`pg_ctlcluster --skip-systemctl-redirect ${pgCluster()} main stop -m fast`, { stdio: 'ignore' });
const pgStart = () => execSync(`pg_ctlcluster --skip-systemctl-redirect ${pgCluster()} main start`, { stdio: 'ignore' });
const redisStop = () => execSync('redis-cli -h 127.0.0.1 -p 6379 shutdown nosave', { stdio: 'ignore' });
const redisStart = () =>
  execSync('redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis', { stdio: 'ignore' });
const redisUp = () => {
  try {
    return execSync('redis-cli -h 127.0.0.1 -p 6379 ping').toString().includes('PONG');
  } catch {
    return false;
  }
};
const pgUp = () => {
  try {
    execSync('pg_isready -h 127.0.0.1 -p 5432 -q');
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(missing !== null)('cluster failure behaviour (hub processes, PostgreSQL + Redis restarts)', () => {
  const schema = `hive_faults_${randomBytes(5).toString('hex')}`;
  const prefix = `hive-faults-${randomBytes(4).toString('hex')}`;
  const adminKey = mintToken('hive').token;
  const dirA = tempDir();
  const dirB = tempDir();
  const cfg = path.join(dirA, 'cluster.yaml');
  let a: HubProc | undefined;
  let b: HubProc | undefined;
  let lb: Awaited<ReturnType<typeof startLb>>;
  const agents: AgentProc[] = [];

  beforeAll(async () => {
    writeFileSync(
      cfg,
      JSON.stringify({
        database: { driver: 'postgres', connection: PG_URL, schema },
        cluster: { redis_url: REDIS_URL, key_prefix: prefix, presence_ttl: '3s' },
        approvals: { system_run_allow: ['echo', 'sleep'] },
      }),
    );
    a = await startHubProc(dirA, cfg, adminKey);
    b = await startHubProc(dirB, cfg, adminKey);
    lb = await startLb([a.port]);
  });
  afterAll(async () => {
    // Whatever happened, leave the machine's services running.
    if (!redisUp()) redisStart();
    if (!pgUp()) pgStart();
    for (const ag of agents) await ag.kill();
    for (const h of [a, b]) {
      if (h && h.proc.exitCode === null && h.proc.signalCode === null) {
        h.proc.kill('SIGTERM');
        await h.exited;
      }
    }
    await lb?.close();
    cleanup(dirA);
    cleanup(dirB);
    await dropSchema(schema).catch(() => {});
  });

  it('SIGKILL of an instance: its satellites come back through the other one, its running job ends failed with a reason, no audit entry is lost', async () => {
    if (!a || !b) throw new Error('hubs not started');
    const B = handle(b, adminKey);
    const opB = await operator(B);
    const agentCfg = path.join(dirA, 'agent.json');
    writeFileSync(agentCfg, JSON.stringify({ system_run: { allow: ['echo', 'sleep'] } }));
    for (let i = 0; i < 3; i++) agents.push(spawnAgent(lb.wsUrl, path.join(dirA, `agent-${i}`), ['--name', `roamer-${i}`, '--config', agentCfg]));
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) ids.add((await opB.waitEvent('satellite:online', (p) => p.slug === `roamer-${i}`)).id);
    lb.setBackends([a.port, b.port]);
    const A = handle(a, adminKey);
    // A job dispatched by A that cannot finish before A dies.
    const job = await A.api('POST', '/api/v1/satellites/roamer-0/exec?async=true', { command: 'system.run', params: { argv: ['sleep', '30'] } });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    await opB.waitEvent('job:updated', (p) => p.id === job.body.data.id && p.state === 'running');
    // A burst of audited requests (each denied one is one entry), all answered before the kill.
    const viewer = await A.api('POST', '/api/v1/apikeys', { name: 'viewer', scopes: ['operator.read'] });
    const denied = await Promise.all(Array.from({ length: 40 }, () => A.api('POST', '/api/v1/groups', { name: 'x' }, viewer.body.data.key)));
    expect(denied.every((r) => r.status === 403)).toBe(true);
    // Every satellite reconnects (jittered) through the balancer to B: online again after the kill.
    const back = new Set<string>();
    const allBack = new Promise<void>((resolve) => {
      const on = (name: string, p: { id: string }) => {
        if (name !== 'satellite:online' || !ids.has(p.id)) return;
        back.add(p.id);
        if (back.size === ids.size) {
          opB.off('event', on);
          resolve();
        }
      };
      opB.on('event', on);
    });
    a.proc.kill('SIGKILL');
    await a.exited;
    await allBack;
    expect(back.size).toBe(3);
    const ended = await opB.waitEvent('job:updated', (p) => p.id === job.body.data.id && p.state === 'failed', 30_000);
    expect(ended.state).toBe('failed');
    const row = await B.api('GET', `/api/v1/commands/${job.body.data.id}`);
    expect(row.body.data.error.message).toMatch(/lost/);
    const online = await B.api('GET', '/api/v1/satellites?status=online&per_page=50');
    expect(online.body.data.map((s: { id: string }) => s.id).sort()).toEqual([...ids].sort());

    // A comes back on the same data dir: whatever the kill cut off is replayed from its write-ahead log.
    a = await startHubProc(dirA, cfg, adminKey, a.port);
    const rows = await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.audit_logs WHERE action = 'access.denied' AND actor_name = 'viewer'`);
    expect(rows[0]?.n).toBe(40);
    await opB.close();
  });

  it('Redis restart: instances resubscribe and rebuild presence; commands route across instances again', async () => {
    if (!a || !b) throw new Error('hubs not started');
    const A = handle(a, adminKey);
    const before = await A.api('POST', '/api/v1/satellites/roamer-1/exec', { command: 'system.run', params: { argv: ['echo', 'before'] } });
    expect(before.body.data.result.stdout).toBe('before\n');
    redisStop();
    // Without its bus an instance says so: a load balancer stops sending it new clients.
    const down = await eventually(async () => {
      const r = await fetch(`${a?.url}/health/ready`);
      return r.status === 503 ? ((await r.json()) as { status: string }) : undefined;
    }, 'readiness to report the Redis outage');
    expect(down.status).toBe('cluster_bus_unavailable');
    redisStart();
    // Redis came back empty: presence must be rebuilt by the instances themselves.
    const routed = await eventually(async () => {
      const r = await A.api('POST', '/api/v1/satellites/roamer-1/exec', { command: 'system.run', params: { argv: ['echo', 'after'] } });
      return r.status === 200 ? r : undefined;
    }, 'a command routed through Redis after its restart');
    expect(routed.body.data.result.stdout).toBe('after\n');
    expect((await fetch(`${a.url}/health/ready`)).status).toBe(200);
    const presence = execSync(`redis-cli -h 127.0.0.1 hlen ${prefix}:presence`).toString().trim();
    expect(Number(presence)).toBe(3);
  });

  it('PostgreSQL restart: requests fail with a typed 5xx during the outage and recover; no audit entry is lost', async () => {
    if (!a || !b) throw new Error('hubs not started');
    const B = handle(b, adminKey);
    const viewer = await B.api('POST', '/api/v1/apikeys', { name: 'viewer-pg', scopes: ['operator.read'] });
    let deniedCount = 0;
    let stop = false;
    // Denied requests keep coming while the database goes away and returns; each 403 is one audit entry.
    const load = (async () => {
      while (!stop) {
        const r = await B.api('POST', '/api/v1/groups', { name: 'x' }, viewer.body.data.key).catch(() => null);
        if (r?.status === 403) deniedCount++;
      }
    })();
    pgStop();
    const during = await B.api('GET', '/api/v1/satellites');
    expect([500, 503]).toContain(during.status);
    expect(['INTERNAL_ERROR', 'SERVICE_NOT_RUNNING']).toContain(during.body.error.code);
    const ready = await fetch(`${b.url}/health/ready`);
    expect(ready.status).toBe(503);
    pgStart();
    const recovered = await eventually(async () => {
      const r = await B.api('GET', '/api/v1/satellites?per_page=50');
      return r.status === 200 ? r : undefined;
    }, 'REST to work again after PostgreSQL restarted');
    expect(recovered.body.data.length).toBe(3);
    stop = true;
    await load;
    expect(deniedCount).toBeGreaterThan(0);
    const counted = await eventually(async () => {
      const rows = await pgQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${schema}.audit_logs WHERE action = 'access.denied' AND actor_name = 'viewer-pg'`,
      );
      return rows[0]?.n === deniedCount ? rows[0] : undefined;
    }, `all ${deniedCount} audit entries to be stored`);
    expect(counted.n).toBe(deniedCount);
  });
});
