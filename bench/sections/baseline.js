import { log, runRelayBaseline, shardsOf } from '../lib/fleet.js';
import { HTTP_CONCURRENCY } from '../lib/sim-fleet.js';

/** The bare ws relay with N clients: the floor the connect and fan-out sections are compared with. */
export default {
  id: 'baseline',
  title: 'Bare ws relay (baseline)',
  spec: 'a bare `ws` server: 5–7 KB per connection (SPEC.md, for comparison)',
  timeoutMs: (ctx) => 120_000 + ctx.opts.satellites * 30,
  async run(ctx) {
    const n = ctx.opts.satellites;
    const shards = shardsOf(n, ctx.opts.workers);
    const { result } = await runRelayBaseline({
      shards,
      concurrencyPerWorker: Math.max(1, Math.ceil(ctx.opts.connectConcurrency / ctx.opts.workers)),
      n,
      connectTimeoutMs: 60_000 + n * 25,
      // The round-trip floor for the rtt section: same rate, same length.
      roundTrips: { rate: ctx.opts.rttRate, durationS: ctx.opts.rttDurationS, warmUpS: ctx.opts.rttWarmUpS, httpConcurrency: HTTP_CONCURRENCY },
    });
    log(`relay: ${result.ok}/${n} answered in ${result.fanoutMs} ms, ${result.perConnectionKB} KB per connection`);
    const rtt = result.rtt;
    if (rtt) log(`relay round trip at ${rtt.achievedRate}/s: p50 ${rtt.latencyMs.p50} ms, p99 ${rtt.latencyMs.p99} ms (${rtt.ok}/${rtt.sent} ok)`);
    return {
      target: { text: 'reference only (no target)' },
      pass: null,
      status: result.ok === n && (!rtt || rtt.failed === 0) ? 'reference' : 'error',
      measured: `fan-out ${result.fanoutMs} ms, ${result.perConnectionKB} KB/conn${rtt ? `; round trip p50 ${rtt.latencyMs.p50} ms, p99 ${rtt.latencyMs.p99} ms at ${rtt.achievedRate}/s` : ''}`,
      ...result,
    };
  },
};
