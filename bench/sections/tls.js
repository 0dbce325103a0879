import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../lib/children.js';
import { connectWorkers, log, makeApiKey, SATELLITE_WORKER, shardsOf, startHub, startWorkers } from '../lib/fleet.js';
import { memoryOf } from '../lib/proc.js';
import { freshDataDir } from '../lib/sim-fleet.js';
import { round } from '../lib/stats.js';
import { verdict } from './common.js';

/**
 * Hub RSS per satellite with TLS terminated in the hub: the hub serves WSS with its generated
 * self-signed certificate, every simulated satellite pins its fingerprint (the SDK's `tls` option).
 */
export default {
  id: 'tls',
  title: 'Concurrent satellites over TLS (WSS, pinned self-signed certificate)',
  spec: 'hub RSS growth under 45 KB per satellite with TLS terminated in the hub',
  timeoutMs: (ctx) => 240_000 + ctx.opts.satellites * 40,
  async run(ctx) {
    const n = ctx.opts.satellites;
    const dataDir = freshDataDir();
    const hub = await startHub(dataDir, makeApiKey(), { config: { tls: { enabled: true } }, label: 'TLS hub' });
    const workers = [];
    try {
      if (!hub.url.startsWith('https://')) throw new Error(`hub did not serve TLS: ${hub.url}`);
      const pem = readFileSync(path.join(dataDir, 'tls', 'hub-cert.pem'), 'utf8');
      const fingerprint = `sha256:${new X509Certificate(pem).fingerprint256}`;
      const w = Math.max(2, Math.ceil(n / 2500));
      const shards = shardsOf(n, w);
      const sat = await startWorkers(SATELLITE_WORKER, 'TLS satellite worker', shards, (s) => ({
        url: hub.wsUrl,
        first: s.first,
        count: s.count,
        concurrency: Math.ceil((ctx.opts.connectConcurrency ?? 256) / w),
        tls: { fingerprint },
      }));
      workers.push(...sat.children);
      const before = memoryOf(hub.child.pid).rssKB;
      log(`tls: connecting ${n} satellites over WSS…`);
      const conn = await connectWorkers(sat.children, n, 'TLS satellites', 60_000 + n * 30, hub.child.pid);
      const after = memoryOf(hub.child.pid).rssKB;
      const perSatelliteKB = round((after - before) / n, 1);
      const plain = ctx.results.connect?.hubMemory?.perSatelliteKB ?? null;
      const v = verdict(perSatelliteKB, 45, { n, targetN: 10_000 });
      return {
        target: { hubRssPerSatelliteKB: 45, text: '< 45 KB hub RSS per satellite with TLS' },
        ...v,
        measured: `${n} connected over WSS in ${(conn.ms / 1000).toFixed(1)} s; ${perSatelliteKB} KB/satellite${plain ? ` (without TLS in this run: ${plain} KB)` : ''}`,
        satellites: n,
        connectMs: round(conn.ms, 0),
        perSecond: round((n * 1000) / conn.ms, 0),
        hubRss: { beforeKB: before, connectedKB: after, perSatelliteKB },
        withoutTlsPerSatelliteKB: plain,
        how: 'hive server with tls.enabled (ECDSA P-256 self-signed certificate generated on first start); satellites pin its SHA-256 fingerprint',
      };
    } finally {
      await Promise.all(workers.map((c) => stopChild(c, { timeoutMs: 5000 })));
      await stopChild(hub.child, { signal: 'SIGTERM', timeoutMs: 30_000 });
    }
  },
};
