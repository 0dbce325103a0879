import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { stopChild } from '../lib/children.js';
import { connectWorkers, fixedRate, log, makeApiKey, pool, SATELLITE_WORKER, shardsOf, startHub, startWorkers } from '../lib/fleet.js';
import { createHubApi } from '../lib/http.js';
import { memoryOf, waitQuiet } from '../lib/proc.js';
import { freshDataDir } from '../lib/sim-fleet.js';
import { round } from '../lib/stats.js';
import { verdict } from './common.js';

const PG_URL = process.env.HIVE_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.HIVE_BENCH_REDIS ?? 'redis://127.0.0.1:6379';

async function prerequisites() {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  const pgErr = await c.connect().then(
    () => null,
    (e) => e.message,
  );
  await c.end().catch(() => {});
  if (pgErr) return `PostgreSQL at ${PG_URL} unavailable: ${pgErr}`;
  const u = new URL(REDIS_URL);
  const redisErr = await new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG') ? null : d.toString().trim());
    });
    s.once('error', (e) => resolve(e.message));
  });
  return redisErr ? `Redis at ${REDIS_URL} unavailable: ${redisErr}` : null;
}

async function dropSchema(schema) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}

/**
 * Two hub processes on one PostgreSQL and one Redis, half the satellites on each: both hold
 * 2×N together (20,000 at the default N); single-command RTT through instance A to satellites
 * held by A and to satellites held by B (the difference is what the Redis hop costs); one
 * fan-out by tag through A reaching every satellite on both.
 */
export default {
  id: 'cluster',
  title: 'Two hub instances + Redis: 2×N satellites, cross-instance command RTT',
  spec: 'two instances hold 20,000; cross-instance command RTT p50 overhead vs same-instance',
  timeoutMs: (ctx) => 300_000 + ctx.opts.satellites * 60,
  async run(ctx) {
    const missing = await prerequisites();
    if (missing) return { target: { satellites: 20_000 }, pass: null, status: `skipped: ${missing}` };
    const perHub = ctx.opts.satellites;
    const total = perHub * 2;
    const schema = `hive_bench_${randomBytes(4).toString('hex')}`;
    const prefix = `hive-bench-${randomBytes(4).toString('hex')}`;
    const apiKey = makeApiKey();
    const config = (id) => ({
      database: { driver: 'postgres', connection: PG_URL, schema, max_connections: 20 },
      cluster: { redis_url: REDIS_URL, key_prefix: prefix, instance_id: id },
    });
    const hubs = [];
    const workers = [];
    const apis = [];
    try {
      // One after the other: the first runs the migrations and creates the signing key.
      hubs.push(await startHub(freshDataDir(), apiKey, { config: config('bench-a'), label: 'hub A' }));
      hubs.push(await startHub(freshDataDir(), apiKey, { config: config('bench-b'), label: 'hub B' }));
      for (const h of hubs) apis.push(createHubApi({ host: '127.0.0.1', port: h.port, apiKey, maxSockets: 128 }));
      const before = hubs.map((h) => memoryOf(h.child.pid).rssKB);
      const ids = [];
      let connectMs = 0;
      for (const [i, h] of hubs.entries()) {
        const w = Math.max(1, Math.ceil(perHub / 2500));
        const shards = shardsOf(perHub, w).map((s) => ({ ...s, first: s.first + i * perHub }));
        const sat = await startWorkers(SATELLITE_WORKER, `hub ${'AB'[i]} satellite worker`, shards, (s) => ({
          url: h.wsUrl,
          first: s.first,
          count: s.count,
          concurrency: Math.ceil(256 / w),
          tags: ['bench'],
          backoff: 'bench',
        }));
        workers.push(...sat.children);
        log(`cluster: connecting ${perHub} satellites to hub ${'AB'[i]}…`);
        const conn = await connectWorkers(sat.children, perHub, `satellites on ${'AB'[i]}`, 60_000 + perHub * 25, h.child.pid);
        connectMs += conn.ms;
        ids.push(conn.msgs.flatMap((m) => m.ids));
      }
      const after = hubs.map((h) => memoryOf(h.child.pid).rssKB);
      // As in the shared fleet (sim-fleet.js): the RTT is measured once both hubs are done storing the pairings.
      const settle = await Promise.all(hubs.map((h) => waitQuiet(h.child.pid, { maxShare: 0.2, windowMs: 1000, timeoutMs: 60_000 })));
      // …and PostgreSQL is done with what 20,000 pairings left it (autovacuum, checkpoints): the
      // hubs wait on it at a few percent CPU, RTT p50 was 100–300 ms on slow days otherwise.
      settle.push(await waitQuiet(null, { maxShare: 0.25, windowMs: 2000, timeoutMs: 60_000 }));
      log(`cluster: hubs A / B / the machine settled after ${settle.map((x) => `${(x.ms / 1000).toFixed(1)} s${x.quiet ? '' : ' (not quiet)'}`).join(' / ')}`);
      const onlineA = await apis[0].request('GET', '/api/v1/satellites?status=online&per_page=1');
      const onlineTotal = onlineA.body?.pagination?.total ?? null;
      const rate = ctx.opts.clusterRttRate ?? 200;
      const durationS = Math.min(ctx.opts.rttDurationS ?? 10, 10);
      // Warm both paths with every keep-alive socket of the load generator open (as in the RTT
      // section: opening more mid-measurement stalls it), then measure same-instance and
      // cross-instance through A.
      await pool(ids[0].slice(0, 500), 128, (id) => apis[0].exec(id));
      await pool(ids[1].slice(0, 500), 128, (id) => apis[0].exec(id));
      const same = await fixedRate(apis[0], ids[0], rate, durationS);
      const cross = await fixedRate(apis[0], ids[1], rate, durationS);
      const fan = await apis[0].request('POST', '/api/v1/exec', { target: { tag: 'bench' }, command: 'system.info', params: {} }, Math.max(60_000, total * 20));
      const summary = fan.body?.data?.summary ?? null;
      const held = verdict(onlineTotal ?? 0, total - 1, { below: false, n: total, targetN: 20_000 });
      return {
        target: { satellites: 20_000, text: 'two instances hold 20,000 together' },
        pass: held.pass && same.failed === 0 && cross.failed === 0,
        status: held.status,
        measured: `${onlineTotal} online across 2 instances; RTT p50 same ${same.latencyMs.p50} ms / cross ${cross.latencyMs.p50} ms at ${rate}/s`,
        satellites: { perInstance: perHub, total, onlineReported: onlineTotal, connectMs: round(connectMs, 0) },
        hubRssPerSatelliteKB: hubs.map((_, i) => round((after[i] - before[i]) / perHub, 1)),
        hubSettle: settle,
        rtt: {
          rate,
          durationS,
          sameInstance: { latencyMs: same.latencyMs, failed: same.failed },
          crossInstance: { latencyMs: cross.latencyMs, failed: cross.failed },
          p50OverheadMs: round(cross.latencyMs.p50 - same.latencyMs.p50, 2),
          p99OverheadMs: round(cross.latencyMs.p99 - same.latencyMs.p99, 2),
        },
        fanoutAcrossInstances: { ms: round(fan.ms, 1), status: fan.status, summary },
        how: 'hive server ×2 (PostgreSQL schema + Redis key prefix of their own), half the simulated satellites on each; REST through instance A',
      };
    } finally {
      for (const a of apis) a.close();
      await Promise.all(workers.map((c) => stopChild(c, { timeoutMs: 5000 })));
      for (const h of hubs) await stopChild(h.child, { signal: 'SIGTERM', timeoutMs: 30_000 });
      await dropSchema(schema).catch(() => {});
    }
  },
};
