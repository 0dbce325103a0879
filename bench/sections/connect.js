import { allOf, verdict } from './common.js';

/** 10,000 concurrent authenticated satellites; hub RSS per satellite beyond idle. */
export default {
  id: 'connect',
  title: 'Concurrent authenticated satellites',
  spec: '10,000 concurrent authenticated satellites on one hub process on a 2-core machine; hub RSS growth under 20 KB per satellite without TLS (a bare ws server: 5–7 KB)',
  uses: ['fleet'],
  timeoutMs: (ctx) => 240_000 + ctx.opts.satellites * 30,
  async run(ctx) {
    const n = ctx.opts.satellites;
    const f = await ctx.fleet();
    const relay = ctx.results.baseline;
    const nodes = f.connect.hubReportedNodes ?? n;
    const mem = verdict(f.memory.perSatelliteKB, 20, { n, targetN: 10_000 });
    // Fewer than 10,000 connected is a miss of "10,000 concurrent" only when it was the goal.
    const v = n >= 10_000 ? allOf(nodes >= 10_000 ? { pass: true, status: 'pass' } : { pass: false, status: 'miss' }, mem) : mem;
    return {
      target: { satellites: 10_000, hubRssPerSatelliteKB: 20, text: '10,000 connected; < 20 KB hub RSS per satellite' },
      ...v,
      measured: `${f.connect.hubReportedNodes ?? '?'} connected in ${(f.connect.totalMs / 1000).toFixed(1)} s; ${f.memory.perSatelliteKB} KB/satellite`,
      connect: f.connect,
      /** After the last hello, until the hub's CPU fell under 20 % of a core (first connects pair: storing them goes on). */
      hubSettle: f.settle,
      hubMemory: f.memory,
      comparison:
        relay?.perConnectionKB > 0
          ? { relayPerConnectionKB: relay.perConnectionKB, memoryRatio: Math.round((f.memory.perSatelliteKB / relay.perConnectionKB) * 10) / 10 }
          : null,
    };
  },
};
