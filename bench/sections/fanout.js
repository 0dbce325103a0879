import { endLoopWindow, log, mark, startLoopWindow } from '../lib/fleet.js';
import { cpuMsOf, memoryOf, threadCpuMsOf, waitQuiet } from '../lib/proc.js';
import { round, summarize } from '../lib/stats.js';
import { verdict } from './common.js';

/**
 * One `POST /api/v1/exec` targeting the tag every simulated satellite carries: the hub fans the
 * command out itself and answers when every result is in. Timed from sending the request to the
 * last byte of the response (all N per-target results, parsed).
 */
async function byTag(f, n, concurrency) {
  const body = { target: { tag: 'bench' }, command: 'system.info', params: {}, ...(concurrency ? { concurrency } : {}) };
  const workersCpu = () => f.workers.reduce((sum, w) => sum + cpuMsOf(w.pid), 0);
  const cpu0 = cpuMsOf(f.hub.child.pid);
  const main0 = threadCpuMsOf(f.hub.child.pid);
  const w0 = workersCpu();
  const r = await f.api.request('POST', '/api/v1/exec', body, Math.max(60_000, n * 20));
  const hubCpuMs = cpuMsOf(f.hub.child.pid) - cpu0;
  const hubMainCpuMs = threadCpuMsOf(f.hub.child.pid) - main0;
  const workersCpuMs = workersCpu() - w0;
  const summary = r.body?.data?.summary ?? null;
  return {
    ms: round(r.ms, 1),
    /** When the response head arrived (the hub streams the answer: head and results start once the fan-out has begun). */
    firstByteMs: r.firstByteMs === undefined ? null : round(r.firstByteMs, 1),
    responseBytes: r.bytes ?? null,
    status: r.status,
    summary,
    succeeded: summary?.succeeded ?? 0,
    /** Hub CPU from the request to the answer. */
    hubCpuMs: round(hubCpuMs, 0),
    /** …of which its main thread (the event loop: every target's work passes through it). */
    hubMainCpuMs: round(hubMainCpuMs, 0),
    /** The simulated satellites' CPU (all worker processes): on this machine it shares the hub's cores. */
    workersCpuMs: round(workersCpuMs, 0),
    error: r.status === 200 ? null : (r.error ?? r.body?.error?.code ?? `HTTP_${r.status}`),
  };
}

export default {
  id: 'fanout',
  title: 'Fan-out of system.info to every satellite by tag (one POST /api/v1/exec)',
  spec: 'A command fanned out to 10,000 satellites completes, all results collected, in under 1 s',
  uses: ['fleet'],
  timeoutMs: (ctx) => 180_000 + ctx.opts.satellites * 200,
  async run(ctx) {
    const n = ctx.opts.satellites;
    const f = await ctx.fleet();
    const runs = [];
    const measure = async (label, concurrency) => {
      startLoopWindow(f.hub.child, f.workers);
      mark(`fanout.${label}.start`);
      const hubCpu0 = cpuMsOf(f.hub.child.pid);
      const x = await byTag(f, n, concurrency);
      mark(`fanout.${label}.end`);
      // The hub writes the fan-out's job rows and audit entries to its database after answering:
      // that work belongs to this run, not to the next one.
      const quiet = await waitQuiet(f.hub.child.pid, { maxShare: 0.25, windowMs: 400, timeoutMs: 30_000 });
      mark(`fanout.${label}.quiet`);
      /** Hub CPU until it was quiet again (the database writes after the answer; ~0.4 s of idle included). */
      x.hubCpuUntilQuietMs = round(cpuMsOf(f.hub.child.pid) - hubCpu0, 0);
      x.hubQuietAfterMs = quiet.ms;
      x.eventLoopDelayMs = await endLoopWindow(f.hub.child, f.workers);
      x.label = label;
      x.concurrency = concurrency ?? 'hub default (commands.fanout_concurrency)';
      runs.push(x);
      log(
        `  fan-out ${label}: ${x.succeeded}/${n} in ${x.ms} ms (head at ${x.firstByteMs} ms, ${round((x.responseBytes ?? 0) / 1e6, 1)} MB; hub CPU ${x.hubCpuMs} ms (main thread ${x.hubMainCpuMs} ms), ${x.hubCpuUntilQuietMs} ms until quiet ${x.hubQuietAfterMs} ms later; satellite workers CPU ${x.workersCpuMs} ms)`,
      );
      return x;
    };
    const cold = await measure('cold');
    const warm = [];
    for (let i = 0; i < 3; i++) warm.push(await measure(`warm ${i + 1}`));
    const wide = await measure('concurrency = N', n);
    const ok = (x) => x.status === 200 && x.succeeded === n;
    const warmMs = warm.map((x) => x.ms);
    const median = summarize(warmMs).p50;
    const hubCpuMedianMs = summarize(warm.map((x) => x.hubCpuMs)).p50;
    const hubMainCpuMedianMs = summarize(warm.map((x) => x.hubMainCpuMs)).p50;
    const relay = ctx.results.baseline;
    const v = verdict(median, 1000, { n, targetN: 10_000 });
    const allOk = runs.every(ok);
    const after = memoryOf(f.hub.child.pid);
    return {
      target: { ms: 1000, text: 'all N results collected < 1 s' },
      pass: v.pass && allOk,
      status: allOk
        ? v.status
        : `miss (not every target succeeded: ${runs.map((x) => `${x.label} ${x.succeeded}/${n}${x.error ? ` ${x.error}` : ''}`).join(', ')})`,
      measured: `median ${median} ms over 3 warm runs (cold ${cold.ms} ms, with concurrency=N ${wide.ms} ms); relay ${relay?.fanoutMs ?? '?'} ms${relay?.fanoutRelayCpuMs ? ` (hub CPU ${hubCpuMedianMs} ms, relay ${relay.fanoutRelayCpuMs} ms)` : ''}`,
      how: 'POST /api/v1/exec {target: {tag: "bench"}, command: "system.info"} with N satellites carrying the tag; time from request to the complete response',
      n,
      medianMs: median,
      runs,
      relayFanoutMs: relay?.fanoutMs ?? null,
      ratioToRelay: relay?.fanoutMs ? round(median / relay.fanoutMs, 1) : null,
      // CPU rather than time: how much more work the hub does than the relay for the same
      // fan-out. It moves less with the machine's speed of the hour than either wall time does.
      hubCpuMedianMs,
      hubMainCpuMedianMs,
      cpuRatioToRelay: relay?.fanoutRelayCpuMs ? round(hubCpuMedianMs / relay.fanoutRelayCpuMs, 1) : null,
      hubRssAfterKB: after.rssKB,
    };
  },
};
