/**
 * A hub plus a connected simulated fleet, as one object: what the full suite's fleet sections
 * (connect, RTT, fan-out, restart) share, and what the REST section starts for itself.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { registerTempDir, stopChild } from './children.js';
import {
  connectWorkers,
  endLoopWindow,
  log,
  makeApiKey,
  mark,
  removeStaleDataDirs,
  SATELLITE_WORKER,
  shardsOf,
  startHub,
  startLoopWindow,
  startWorkers,
  timeline,
} from './fleet.js';
import { createHubApi } from './http.js';
import { cpuMsOf, memoryOf, waitQuiet } from './proc.js';
import { round, summarize } from './stats.js';

/** Fresh temp data dir (the bench's pid in its name, so a killed bench's dirs are found later). */
export function freshDataDir() {
  removeStaleDataDirs();
  const dir = mkdtempSync(path.join(os.tmpdir(), `hive-bench-${process.pid}-`));
  registerTempDir(dir);
  return dir;
}

/** Keep-alive sockets of the load generator (the fleet's REST client, and the relay's for its round-trip floor). */
export const HTTP_CONCURRENCY = 256;

/**
 * Starts a hub and `n` simulated satellites in `workers` processes, connects them all (at most
 * `connectConcurrency` handshakes in flight) and measures the connect. `tags` are requested at
 * pairing; `backoff` is 'bench' or 'sdk' (see satellite-worker.js).
 */
export async function startFleet({
  n,
  workers,
  connectConcurrency,
  tags = [],
  backoff = 'bench',
  config,
  cpuProfDir,
  logFile,
  label = 'hub',
  httpConcurrency = HTTP_CONCURRENCY,
}) {
  const apiKey = makeApiKey();
  const dataDir = freshDataDir();
  const hub = await startHub(dataDir, apiKey, { cpuProfDir, logFile, config, label });
  const fleet = { apiKey, dataDir, hub, workers: [], ids: [], config, httpConcurrency };
  fleet.api = createHubApi({ host: '127.0.0.1', port: hub.port, apiKey, maxSockets: httpConcurrency });
  fleet.close = async () => {
    fleet.api.close();
    await Promise.all(fleet.workers.map((c) => stopChild(c, { timeoutMs: 5000 })));
    fleet.workers = [];
    if (fleet.hub) {
      const t = performance.now();
      const stop = await stopChild(fleet.hub.child, { signal: 'SIGTERM', timeoutMs: 30_000 });
      fleet.shutdown = { ms: round(performance.now() - t, 0), code: stop.code, forced: stop.forced };
      fleet.hubLog = fleet.hub.log;
      fleet.hub = undefined;
    }
  };
  try {
    const health = await fleet.api.request('GET', '/health/ready');
    if (health.status !== 200) throw new Error(`hub not ready: HTTP ${health.status} ${JSON.stringify(health.body)}`);
    const w = Math.min(n, workers);
    const shards = shardsOf(n, w);
    const perWorker = Math.max(1, Math.ceil(connectConcurrency / w));
    const sat = await startWorkers(SATELLITE_WORKER, `${label} satellite worker`, shards, (s) => ({
      url: hub.wsUrl,
      first: s.first,
      count: s.count,
      concurrency: perWorker,
      tags,
      backoff,
    }));
    fleet.workers = sat.children;
    fleet.shards = shards;
    const before = memoryOf(hub.child.pid);
    const cpuBefore = cpuMsOf(hub.child.pid);
    log(`${label}: connecting ${n} satellites (${perWorker * w} handshakes in flight)…`);
    startLoopWindow(hub.child, fleet.workers);
    mark(`${label}.connect.start`);
    const conn = await connectWorkers(fleet.workers, n, 'satellites', 60_000 + n * 25, hub.child.pid);
    const loop = await endLoopWindow(hub.child, fleet.workers);
    const connected = memoryOf(hub.child.pid);
    const ready = await fleet.api.request('GET', '/health/ready');
    fleet.ids = conn.msgs.flatMap((m) => m.ids);
    const sum = (f) => conn.msgs.reduce((a, m) => a + f(m), 0);
    fleet.connect = {
      satellites: n,
      workers: w,
      connectConcurrency: perWorker * w,
      totalMs: round(conn.ms, 1),
      perSecond: round((n * 1000) / conn.ms, 0),
      helloLatencyMs: summarize(conn.msgs.flatMap((m) => Array.from(m.helloMs))),
      timeline: timeline(
        conn.msgs.map((m) => m.helloAt),
        conn.startedAt,
      ),
      handshakesFailed: sum((m) => m.counters.handshakesFailed),
      dropsAfterHello: sum((m) => m.counters.drops),
      hubCpuMs: round(cpuMsOf(hub.child.pid) - cpuBefore, 0),
      hubCpuPerSatelliteByQuarterMs: conn.cpuByQuarter,
      hubReportedNodes: ready.body?.nodes ?? null,
      eventLoopDelayMs: loop,
    };
    fleet.memory = {
      rssBeforeKB: before.rssKB,
      rssConnectedKB: connected.rssKB,
      perSatelliteKB: round((connected.rssKB - before.rssKB) / n, 1),
      workerRssPerSatelliteKB: round(sum((m) => m.rssKB) / n, 1),
    };
    log(`${label}: ${n} connected in ${(conn.ms / 1000).toFixed(2)} s, ${fleet.memory.perSatelliteKB} KB per satellite`);
    if (fleet.connect.hubReportedNodes !== null && fleet.connect.hubReportedNodes !== n) {
      throw new Error(`hub reports ${fleet.connect.hubReportedNodes} connected nodes, expected ${n}`);
    }
    // New satellites pair on their first connect: the hub is still storing pairings, tokens and
    // presence for a while after the last hello. The steady-state sections (RTT, fan-out) start
    // once it is done, not in the middle of a connect storm (the restart section measures that).
    fleet.settle = await waitQuiet(hub.child.pid, { maxShare: 0.2, windowMs: 1000, timeoutMs: 60_000 });
    mark(`${label}.connect.end`);
    log(
      `${label}: hub settled ${(fleet.settle.ms / 1000).toFixed(1)} s after the last hello${fleet.settle.quiet ? '' : ` (still at ${Math.round(fleet.settle.lastShare * 100)} % CPU after 60 s)`}`,
    );
    return fleet;
  } catch (err) {
    await fleet.close().catch(() => {});
    throw err;
  }
}
