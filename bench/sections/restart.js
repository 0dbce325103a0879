import { guard, nextMessage, stopChild } from '../lib/children.js';
import { log, startHub } from '../lib/fleet.js';
import { createHubApi } from '../lib/http.js';
import { cpuMsOf, memoryOf } from '../lib/proc.js';
import { round, summarize } from '../lib/stats.js';
import { verdict } from './common.js';

/**
 * SIGKILL the hub with the whole fleet connected, start it again on the same data dir and port,
 * and time until every satellite has its hello again (device token + signature, no pairing).
 * The simulated satellites reconnect with the SDK's default backoff (what hive-agent uses):
 * full jitter, uniform in [0, min(30 s, 0.5 s × 2^attempt)].
 */
export default {
  id: 'restart',
  title: 'Restart-reconnect after SIGKILL of the hub',
  spec: '10,000 satellites reconnect with signature auth after a hub restart in under 30 s',
  uses: ['fleet'],
  timeoutMs: (ctx) => 240_000 + ctx.opts.satellites * 20,
  async run(ctx) {
    const n = ctx.opts.satellites;
    const f = await ctx.fleet();
    const port = f.hub.port;
    const back = f.workers.map((c) => nextMessage(c, 'reconnected'));
    const progress = new Array(f.workers.length).fill(0);
    f.workers.forEach((c, w) => {
      c.on('message', (m) => {
        if (m?.type === 'progress') progress[w] = m.connected;
      });
    });
    for (const c of f.workers) c.send({ type: 'watch-reconnect' });
    const rssBeforeKB = memoryOf(f.hub.child.pid).rssKB;
    f.api.close();
    const killAt = performance.timeOrigin + performance.now();
    await stopChild(f.hub.child, { signal: 'SIGKILL', timeoutMs: 5000 });
    const killedAt = performance.timeOrigin + performance.now();
    log(`  hub SIGKILLed (pid ${f.hub.child.pid}); starting it again on port ${port}…`);
    f.hub = undefined;
    f.hub = await startHub(f.dataDir, f.apiKey, { port, label: 'fleet hub (restarted)', config: f.config });
    const listeningAt = performance.timeOrigin + performance.now();
    f.api = createHubApi({ host: '127.0.0.1', port, apiKey: f.apiKey, maxSockets: f.httpConcurrency });
    const cpu0 = cpuMsOf(f.hub.child.pid);
    const ticker = setInterval(() => log(`  reconnected ${progress.reduce((a, b) => a + b, 0)}/${n}`), 5000);
    let msgs;
    try {
      msgs = await guard(Promise.all(back), 180_000, `${n} satellites back after the restart`);
    } finally {
      clearInterval(ticker);
    }
    const allBackAt = Math.max(...msgs.map((m) => Math.max(...m.helloAt)));
    const hubCpuMs = cpuMsOf(f.hub.child.pid) - cpu0;
    const ready = await f.api.request('GET', '/health/ready');
    const rssAfterKB = memoryOf(f.hub.child.pid).rssKB;
    // Per satellite: seconds from the kill to its hello on the new hub.
    const offsets = Float64Array.from(msgs.flatMap((m) => Array.from(m.helloAt, (t) => (t - killAt) / 1000))).sort();
    const deciles = [];
    for (let d = 1; d <= 10; d++) deciles.push({ pct: d * 10, atS: round(offsets[Math.ceil((offsets.length * d) / 10) - 1], 2) });
    // Histogram of hello times, 1 s buckets from the kill.
    const perSecond = {};
    for (const t of offsets) perSecond[Math.floor(t)] = (perSecond[Math.floor(t)] ?? 0) + 1;
    const attempts = msgs.flatMap((m) => Array.from(m.attempts));
    const delays = msgs.flatMap((m) => m.delays);
    const totalS = (allBackAt - killAt) / 1000;
    const v = verdict(totalS, 30, { n, targetN: 10_000 });
    const hubNodes = ready.body?.nodes ?? null;
    const allOnline = hubNodes === null || hubNodes === n;
    log(`  all ${n} back ${totalS.toFixed(2)} s after the kill (hub up after ${((listeningAt - killAt) / 1000).toFixed(2)} s); hub reports ${hubNodes}`);
    return {
      target: { s: 30, text: 'all satellites online again < 30 s after the hub restart' },
      pass: v.pass && allOnline,
      status: allOnline ? v.status : `miss (hub reports ${hubNodes} of ${n})`,
      measured: `all ${n} back ${totalS.toFixed(1)} s after SIGKILL (hub listening after ${((listeningAt - killAt) / 1000).toFixed(1)} s; p50 ${deciles[4].atS} s, p90 ${deciles[8].atS} s)`,
      how: 'SIGKILL of the hub process, `hive server` started again at once on the same data dir and port; each simulated satellite (HiveClient, SDK default backoff) timed to its next hello',
      n,
      killToAllOnlineS: round(totalS, 2),
      killToHubListeningS: round((listeningAt - killAt) / 1000, 2),
      killSyscallMs: round(killedAt - killAt, 1),
      hubListeningToAllOnlineS: round((allBackAt - listeningAt) / 1000, 2),
      hubReportedNodes: hubNodes,
      helloAfterKillS: { ...summarize(offsets), deciles },
      hellosPerSecondSinceKill: perSecond,
      reconnectAttemptsPerSatellite: summarize(attempts),
      backoffDelaysMs: { ...summarize(delays), note: 'every delay the SDK picked between the kill and the satellite’s hello (full jitter)' },
      hubCpuMsDuringReconnect: round(hubCpuMs, 0),
      hubRssKB: { beforeKill: rssBeforeKB, afterReconnect: rssAfterKB },
      backoff: 'SDK default: baseMs 500, maxMs 30000 (full jitter); what hive-agent uses',
    };
  },
};
