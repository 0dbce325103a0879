import { log, runRelayBaseline, shardsOf } from '../lib/fleet.js';

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
    });
    log(`relay: ${result.ok}/${n} answered in ${result.fanoutMs} ms, ${result.perConnectionKB} KB per connection`);
    return {
      target: { text: 'reference only (no target)' },
      pass: null,
      status: result.ok === n ? 'reference' : 'error',
      measured: `fan-out ${result.fanoutMs} ms, ${result.perConnectionKB} KB/conn`,
      ...result,
    };
  },
};
