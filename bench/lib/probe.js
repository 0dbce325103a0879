// Preloaded (`node --import`) into every process the bench forks, the hub included. Two jobs,
// neither of which changes what the process does:
//
// 1. When the bench's IPC channel closes (the bench exited or was killed, even with SIGKILL),
//    end this process too, so no hub or simulated fleet is ever left behind. SIGTERM first (the
//    hub shuts down gracefully on it), a hard exit shortly after.
// 2. Measure event-loop delay and garbage-collection pauses, so the bench can tell a slow hub
//    from a slow load generator, and a pause from a queue: {type:'probe-reset'} starts a new
//    window, {type:'probe'} answers {type:'probe', eld, gc, pauses} (pauses: [wall ms, ms, kind]).
import { constants, monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';

process.on('disconnect', () => {
  setTimeout(() => process.exit(1), 5000).unref();
  process.kill(process.pid, 'SIGTERM');
});

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const ms = (ns) => Math.round(ns / 1e4) / 100;

// GC pauses of the window, by kind: count, total and longest (ms), and how many took over 5 ms.
const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakCallbacks',
};
let gc = {};
// Pauses of 2 ms or more with their wall-clock start (ms since the epoch), to line them up with
// slow requests; bounded.
const PAUSE_MIN_MS = 2;
const PAUSES_MAX = 5000;
let pauses = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = GC_KINDS[e.detail?.kind] ?? 'other';
    if (e.duration >= PAUSE_MIN_MS && pauses.length < PAUSES_MAX)
      pauses.push([Math.round((performance.timeOrigin + e.startTime) * 10) / 10, Math.round(e.duration * 10) / 10, kind]);
    gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0, over5ms: 0 };
    const g = gc[kind];
    g.count++;
    g.totalMs += e.duration;
    g.maxMs = Math.max(g.maxMs, e.duration);
    if (e.duration > 5) g.over5ms++;
  }
}).observe({ entryTypes: ['gc'] });
const round = (o) => Object.fromEntries(Object.entries(o).map(([k, g]) => [k, { ...g, totalMs: Math.round(g.totalMs), maxMs: Math.round(g.maxMs * 10) / 10 }]));

process.on('message', (m) => {
  if (m?.type === 'probe-reset') {
    eld.reset();
    gc = {};
    pauses = [];
  } else if (m?.type === 'probe' && process.connected) {
    process.send({ type: 'probe', eld: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) }, gc: round(gc), pauses });
  }
});
