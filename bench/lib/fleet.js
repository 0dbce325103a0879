/**
 * What every suite shares: the hub as a child process, the simulated fleet (worker processes),
 * phase logging, event-loop probes and the REST load shapes (open-loop fixed rate, fan-out).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, createWriteStream, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { forkChild, guard, nextMessage, stopChild } from './children.js';
import { createHubApi } from './http.js';
import { cpuMsOf, machineBusyMs, memoryOf } from './proc.js';
import { round, summarize } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BENCH_DIR = path.resolve(HERE, '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
export const HIVE_BIN = path.join(ROOT, 'packages/cli/bin/hive.js');
export const AGENT_BIN = path.join(ROOT, 'packages/agent/bin/hive-agent.js');
export const SATELLITE_WORKER = path.join(BENCH_DIR, 'satellite-worker.js');
export const RELAY_SERVER = path.join(BENCH_DIR, 'relay-server.js');
export const RELAY_WORKER = path.join(BENCH_DIR, 'relay-worker.js');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

/** Sockets per worker process: well under the per-process open-file limit. */
export const MAX_PER_WORKER = 2500;
/** File descriptors a process needs besides its sockets (node, sqlite, pipes...). */
export const FD_MARGIN = 512;

export const T0 = performance.now();
/** Phase boundaries on the monotonic clock V8 CPU profiles use (µs), to cut a hub profile by phase. */
export const marks = [];
export const mark = (phase) => {
  const m = { phase, monotonicUs: Number(process.hrtime.bigint() / 1000n), wallMs: Date.now() };
  marks.push(m);
  // BENCH_MARK_LOG: every mark as a JSON line, as it happens (for tools that attach to the hub mid-run).
  if (process.env.BENCH_MARK_LOG) appendFileSync(process.env.BENCH_MARK_LOG, `${JSON.stringify(m)}\n`);
};
export const log = (msg) => process.stderr.write(`[bench +${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);

/** Contiguous index ranges [first, first+count) for `workers` shards. */
export function shardsOf(n, workers) {
  const out = [];
  const base = Math.floor(n / workers);
  let first = 0;
  for (let w = 0; w < workers; w++) {
    const count = base + (w < n % workers ? 1 : 0);
    out.push({ first, count });
    first += count;
  }
  return out;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

export const kb = (v) => (v === null || v === undefined ? 'n/a' : `${(v / 1024).toFixed(1)} MB`);
export const countBy = (codes) => {
  const out = {};
  for (const c of codes) if (c) out[c] = (out[c] ?? 0) + 1;
  return out;
};
// ------------------------------------------------------------------------------------ hub

/** Data dirs left by a bench that was killed with SIGKILL (its pid is in the name). */
export function removeStaleDataDirs() {
  for (const entry of readdirSync(os.tmpdir())) {
    const m = /^hive-bench-(\d+)-/.exec(entry);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if (err.code === 'ESRCH') rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    }
  }
}

/**
 * Secrets the hub prints in its banner (a console API key, a one-time admin password) must
 * never reach a file: the results are committed.
 */
export function redactSecrets(line) {
  return line.replace(/hive_[A-Za-z0-9]+_[A-Za-z0-9_-]+/g, 'hive_<redacted>').replace(/(password|secret|token)(\W+)\S+/gi, '$1$2<redacted>');
}

/**
 * Watches the hub's stdout/stderr: finds the banner's URL, counts warn/error log lines and keeps
 * the last 20 of them (plus `hive:` messages) for the results. Banner lines are not kept.
 */
export function watchHubOutput(child, logFile) {
  const copy = logFile ? createWriteStream(logFile) : undefined;
  const log = { warnings: 0, errors: 0, last: [] };
  let onUrl;
  const url = new Promise((resolve) => {
    onUrl = resolve;
  });
  const keep = (line) => {
    log.last.push(redactSecrets(line).slice(0, 500));
    if (log.last.length > 20) log.last.shift();
  };
  const onLine = (line) => {
    copy?.write(`${redactSecrets(line)}\n`);
    const m = /listening on (https?:\/\/[^\s]+)/.exec(line);
    if (m) onUrl(m[1]);
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      if (line.startsWith('hive:')) keep(line);
      return;
    }
    if (typeof entry?.level !== 'number' || entry.level < 40) return;
    if (entry.level >= 50) log.errors++;
    else log.warnings++;
    keep(line);
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  return { url, log };
}

/** A fresh admin API key from `hive keygen` (the hub takes it through ADMIN_API_KEY). */
export function makeApiKey() {
  const apiKey = execFileSync(process.execPath, [HIVE_BIN, 'keygen'], { encoding: 'utf8' }).trim();
  if (!/^hive_\w+_[\w-]+$/.test(apiKey)) throw new Error(`hive keygen printed an unexpected key: ${apiKey.slice(0, 20)}…`);
  return apiKey;
}

/**
 * Starts the real `hive server` as a child. `config` (an object) is written next to the data
 * and passed with --config; `port` 0 picks a free one (a restarted hub passes the old one).
 */
export async function startHub(dataDir, apiKey, { cpuProfDir, logFile, config, port = 0, label = 'hub' } = {}) {
  // A clean environment: no HIVE_* from the caller's shell may point the hub elsewhere.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIVE_') && k !== 'ADMIN_API_KEY'));
  env.ADMIN_API_KEY = apiKey;
  env.HIVE_LOG_LEVEL = 'warn';
  const args = ['server', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir];
  if (config) {
    // JSON is YAML; the file stays in the (temporary) data dir.
    const file = path.join(dataDir, 'bench-server.yaml');
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    args.push('--config', file);
  }
  const child = forkChild(HIVE_BIN, args, {
    label,
    env,
    silent: true,
    // BENCH_HUB_NODE_ARGS: extra node options for the hub (experiments, e.g. GC settings).
    execArgv: [...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []), ...(process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean)],
  });
  const out = watchHubOutput(child, logFile);
  const url = await guard(out.url, 30_000, `${label} start (its "listening on" banner)`);
  const { port: actual } = new URL(url);
  return { child, url, port: Number(actual), wsUrl: `${url.replace(/^http/, 'ws')}/ws`, log: out.log };
}

// ------------------------------------------------------------------------------ satellites

/**
 * The niceness of the simulated fleet's processes (satellite and relay workers). They stand in
 * for thousands of other machines, but here they share 2 cores with the hub: at the same priority
 * the scheduler makes the hub wait for a core behind them, and that wait (not the hub's work) made
 * most of the round-trip tail. At 10 the hub and the load generator run first; the fleet still gets
 * every core the hub leaves idle. `--fleet-nice 0` measures with everything at one priority.
 */
let fleetNice = 10;
export function setFleetNice(n) {
  fleetNice = n;
}

export async function startWorkers(script, label, shards, initFor) {
  // BENCH_WORKER_NODE_ARGS: node options for every worker (e.g. "--cpu-prof --cpu-prof-dir DIR").
  const execArgv = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const children = shards.map((_, w) => forkChild(script, [], { label: `${label} ${w}`, execArgv }));
  for (const c of children) if (fleetNice) os.setPriority(c.pid, fleetNice);
  const ready = children.map((c) => nextMessage(c, 'ready'));
  await guard(Promise.all(children.map((c) => nextMessage(c, 'booted'))), 60_000, `${label}s booted`);
  children.forEach((c, w) => {
    c.send({ type: 'init', ...initFor(shards[w], w) });
  });
  const msgs = await guard(Promise.all(ready), 180_000, `${label}s ready`);
  return { children, ready: msgs };
}

/**
 * Tells every worker to connect its shard and waits until all report every hello. With
 * `serverPid`, samples that process's CPU time once a second against the connected count, to
 * show whether the cost per connection grows with the fleet (quarters of the fleet).
 */
export async function connectWorkers(children, total, what, timeoutMs, serverPid) {
  const connected = children.map((c) => nextMessage(c, 'connected'));
  const progress = new Array(children.length).fill(0);
  children.forEach((c, w) => {
    c.on('message', (m) => {
      if (m?.type === 'progress') progress[w] = m.connected;
    });
  });
  const count = () => progress.reduce((a, b) => a + b, 0);
  const samples = [];
  const sample = (n) => {
    if (serverPid) samples.push({ n, cpuMs: cpuMsOf(serverPid) });
  };
  let ticks = 0;
  const ticker = setInterval(() => {
    sample(count());
    if (++ticks % 5 === 0) log(`  ${what}: ${count()}/${total} connected`);
  }, 1000);
  sample(0);
  const startedAt = performance.timeOrigin + performance.now();
  const t0 = performance.now();
  for (const c of children) c.send({ type: 'connect' });
  try {
    const msgs = await guard(Promise.all(connected), timeoutMs, `${total} ${what} connected`);
    const ms = performance.now() - t0;
    sample(total);
    return { msgs, ms, startedAt, cpuByQuarter: serverPid ? cpuByQuarter(samples, total) : null };
  } finally {
    clearInterval(ticker);
  }
}

/** Server CPU ms per connection for each quarter of the fleet, from (connected, cpu) samples. */
export function cpuByQuarter(samples, total) {
  const out = [];
  for (let q = 1; q <= 4; q++) {
    const lo = ((q - 1) * total) / 4;
    const hi = (q * total) / 4;
    // The samples bracketing this quarter (progress is reported once a second, so approximate).
    const a = samples.findLast((s) => s.n <= lo) ?? samples[0];
    const b = samples.find((s) => s.n >= hi) ?? samples[samples.length - 1];
    out.push(b.n > a.n ? round((b.cpuMs - a.cpuMs) / (b.n - a.n), 2) : null);
  }
  return out;
}

/** When 10 %, 20 %, … 100 % of the fleet had its hello, relative to the start (seconds). */
export function timeline(helloAts, startedAt) {
  const all = Float64Array.from(helloAts.flatMap((a) => Array.from(a))).sort();
  const out = [];
  let prevS = 0;
  let prevN = 0;
  for (let d = 1; d <= 10; d++) {
    const n = Math.ceil((all.length * d) / 10);
    const atS = (all[n - 1] - startedAt) / 1000;
    out.push({ pct: d * 10, atS: round(atS, 3), perSecond: round((n - prevN) / Math.max(atS - prevS, 1e-3), 0) });
    prevS = atS;
    prevN = n;
  }
  return out;
}

/**
 * Event-loop delay windows (see lib/probe.js): who was stalled during a phase — the hub, the
 * simulated satellites, or the load generator (this process)?
 */
export const ownLoop = monitorEventLoopDelay({ resolution: 10 });
ownLoop.enable();

export function startLoopWindow(hubChild, workers) {
  for (const c of [hubChild, ...workers]) c.send({ type: 'probe-reset' });
  ownLoop.reset();
}

/** Per GC kind, the largest count, total and longest pause among several processes' windows. */
function worstGc(list) {
  const out = {};
  for (const gc of list)
    for (const [kind, g] of Object.entries(gc ?? {})) {
      out[kind] ??= { count: 0, totalMs: 0, maxMs: 0, over5ms: 0 };
      const o = out[kind];
      for (const k of Object.keys(o)) o[k] = Math.max(o[k], g[k] ?? 0);
    }
  return out;
}

/**
 * The window's figures. `onPauses`, if given, also gets every GC pause of 2 ms or more with its
 * wall-clock start ({ hub, workers }: [wall ms, ms, kind] each; lib/probe.js), which stay out of
 * the figures (and so out of the results file).
 */
export async function endLoopWindow(hubChild, workers, onPauses) {
  const ask = (c) => {
    const reply = nextMessage(c, 'probe');
    c.send({ type: 'probe' });
    return reply;
  };
  const [hubProbe, ...workerProbes] = await guard(Promise.all([hubChild, ...workers].map(ask)), 10_000, 'event-loop probes');
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  onPauses?.({ hub: hubProbe.pauses ?? [], workers: workerProbes.flatMap((p) => p.pauses ?? []) });
  return {
    hub: hubProbe.eld,
    hubGc: hubProbe.gc,
    workers: {
      p99: Math.max(...workerProbes.map((p) => p.eld.p99)),
      max: Math.max(...workerProbes.map((p) => p.eld.max)),
      // The worst worker's pauses by kind (each worker holds a shard of the fleet).
      gc: worstGc(workerProbes.map((p) => p.gc)),
    },
    loadGenerator: { p50: ms(ownLoop.percentile(50)), p99: ms(ownLoop.percentile(99)), max: ms(ownLoop.max) },
  };
}

export async function workerStats(children) {
  const replies = children.map((c) => nextMessage(c, 'stats'));
  for (const c of children) c.send({ type: 'stats' });
  return guard(Promise.all(replies), 30_000, 'worker stats');
}

// ------------------------------------------------------------------------------------ exec

/**
 * Calls `fire(i, t0)` for i = 0…total-1 on an open-loop schedule: `rate` per second, evenly
 * spaced from t0, each on time whether or not earlier ones have answered. Returns t0.
 */
export function openLoop(rate, total, fire) {
  const intervalMs = 1000 / rate;
  const t0 = performance.now();
  let sent = 0;
  const tick = () => {
    const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1);
    while (sent < due) fire(sent++, t0);
    if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * intervalMs - performance.now()));
  };
  tick();
  return t0;
}

export async function fixedRate(api, ids, rate, durationS) {
  const total = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const latency = [];
  const hubMs = [];
  const lag = [];
  const codes = [];
  /** [wall-clock ms sent, latency, hub duration] of each request, for the slowest below. */
  const slow = [];
  /** Latencies by the second (of the phase) their request left in: shows whether slow ones cluster. */
  const bySecond = [];
  let ok = 0;
  let lastSend = 0;
  let t0 = 0;
  await new Promise((resolve) => {
    let done = 0;
    t0 = openLoop(rate, total, (i, start) => {
      const now = performance.now();
      lag.push(now - (start + i * intervalMs));
      lastSend = now;
      api.exec(ids[i % ids.length]).then((r) => {
        if (r.ok) {
          ok++;
          latency.push(r.ms);
          const sec = Math.floor((now - start) / 1000);
          if (!bySecond[sec]) bySecond[sec] = [];
          bySecond[sec].push(r.ms);
          if (r.hubMs !== null) hubMs.push(r.hubMs);
          slow.push([performance.timeOrigin + now, r.ms, r.hubMs]);
        } else codes.push(r.code);
        if (++done === total) resolve();
      });
    });
  });
  const spanS = (lastSend - t0) / 1000;
  return {
    rate,
    durationS,
    sent: total,
    ok,
    failed: total - ok,
    errors: countBy(codes),
    achievedRate: round(total > 1 ? (total - 1) / spanS : total, 1),
    latencyMs: summarize(latency),
    over100ms: latency.filter((v) => v > 100).length,
    bySecond: bySecond.map((l, s) => ({ s, p50: summarize(l).p50, p99: summarize(l).p99, max: summarize(l).max })),
    /**
     * p99 of each whole 10 s stretch of the phase: what a 10 s phase (the full suite's length
     * until 2026-11-29) would have reported, and how much that figure varies within one run.
     */
    p99By10s: Array.from({ length: Math.floor(bySecond.length / 10) }, (_, w) => summarize(bySecond.slice(w * 10, w * 10 + 10).flat()).p99),
    hubDurationMs: summarize(hubMs),
    senderLagMs: summarize(lag),
    /** The 1 % slowest, by wall-clock send time: to line them up with the hub's GC and stalls. */
    slowest: slow
      .sort((a, b) => b[1] - a[1])
      .slice(0, Math.ceil(slow.length / 100))
      .sort((a, b) => a[0] - b[0])
      .map(([at, ms, hub]) => ({ at: new Date(at).toISOString(), ms: round(ms, 2), hubMs: hub })),
  };
}

/** A shuffled copy of `items` (Fisher–Yates): each request of a phase to another target, in no fixed order. */
export function shuffled(items) {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Round trips at a fixed rate (`fixedRate`) after a warm-up (not counted): `warmUp` requests at
 * once, then `afterWarmUp()`, then `warmUpS` seconds at the phase's own rate. Reports the CPU each
 * process used per request: `serverPid` (the hub, or the bare relay), the satellite or
 * relay-client workers, this process (the load generator) and the whole machine. `during(phase)`
 * is called with 'start' and 'end' around the measured part.
 */
export async function measureRoundTrips({
  api,
  targets,
  rate,
  durationS,
  httpConcurrency,
  serverPid,
  workerPids,
  warmUp = 2000,
  warmUpS = 0,
  afterWarmUp,
  during,
}) {
  // Warm-up: JIT, prepared statements, and every keep-alive socket of the load generator open.
  const warm = await pool(targets.slice(0, Math.min(warmUp, targets.length)), httpConcurrency, (id) => api.exec(id));
  await afterWarmUp?.();
  // Then the phase's own rate for a while, so the measured part starts in the steady state: right
  // after the connect storm the hub's old generation is at the limit V8 set halfway through it,
  // and the full GC that follows (once, ~100 ms of both cores) fell into the first seconds of the
  // phase in most runs (docs/performance-log.md, 2026-11-29).
  const paced = warmUpS > 0 ? await fixedRate(api, targets, rate, warmUpS) : null;
  const cpu = () => ({
    server: cpuMsOf(serverPid),
    workers: workerPids.reduce((sum, pid) => sum + cpuMsOf(pid), 0),
    loadGenerator: process.cpuUsage(),
    machine: machineBusyMs(),
  });
  await during?.('start');
  const c0 = cpu();
  const r = await fixedRate(api, targets, rate, durationS);
  const c1 = cpu();
  await during?.('end');
  const lg = (c1.loadGenerator.user + c1.loadGenerator.system - c0.loadGenerator.user - c0.loadGenerator.system) / 1000;
  const per = (v) => Math.round((v / Math.max(1, r.sent)) * 1000) / 1000;
  r.cpuMsPerCommand = {
    server: per(c1.server - c0.server),
    workers: per(c1.workers - c0.workers),
    loadGenerator: per(lg),
    machine: per(c1.machine - c0.machine),
  };
  const pacedPart = paced && {
    pacedS: warmUpS,
    pacedSent: paced.sent,
    pacedFailed: paced.failed,
    pacedP99Ms: paced.latencyMs.p99,
    pacedP99By10s: paced.p99By10s,
  };
  return { warmUp: { execs: warm.length, failed: warm.filter((x) => !x.ok).length + (paced?.failed ?? 0), ...pacedPart }, ...r };
}

export async function fanout(api, ids, concurrency) {
  const timeoutMs = Math.max(60_000, ids.length * 30);
  const t0 = performance.now();
  // All N requests at once; the keep-alive agent keeps at most `concurrency` on the wire.
  const results = await Promise.all(ids.map((id) => api.exec(id, 'system.info', {}, timeoutMs)));
  const ms = performance.now() - t0;
  const ok = results.filter((r) => r.ok).length;
  return {
    n: ids.length,
    httpConcurrency: concurrency,
    totalMs: round(ms, 1),
    ok,
    failed: ids.length - ok,
    errors: countBy(results.map((r) => r.code)),
    perSecond: round((ids.length * 1000) / ms, 0),
    latencyMs: summarize(results.filter((r) => r.ok).map((r) => r.ms)),
  };
}

// ------------------------------------------------------------------------------ bare relay

/**
 * The baseline: `relay-server.js` and N plain ws clients (same sharding as the fleet), one cold
 * fan-out and one measured. With `roundTrips` ({rate, durationS, warmUpS, httpConcurrency}) also the REST
 * round trip through it at that rate (`measureRoundTrips`, as the rtt section measures the hub):
 * the floor of the hub's RTT. Stops its processes before returning.
 */
export async function runRelayBaseline({ shards, concurrencyPerWorker, n, connectTimeoutMs, roundTrips }) {
  const relay = forkChild(RELAY_SERVER, [], { label: 'bare relay' });
  let workers = [];
  try {
    await guard(nextMessage(relay, 'booted'), 30_000, 'relay booted');
    const listening = nextMessage(relay, 'listening');
    relay.send({ type: 'listen' });
    const { port: relayPort } = await guard(listening, 15_000, 'relay listening');
    const rw = await startWorkers(RELAY_WORKER, 'relay worker', shards, (s) => ({
      url: `ws://127.0.0.1:${relayPort}/ws`,
      count: s.count,
      concurrency: concurrencyPerWorker,
    }));
    workers = rw.children;
    const relayBefore = memoryOf(relay.pid);
    const relayConn = await connectWorkers(workers, n, 'relay clients', connectTimeoutMs);
    const relayConnected = memoryOf(relay.pid);
    const workersCpu = () => workers.reduce((sum, w) => sum + cpuMsOf(w.pid), 0);
    const relayFanout = async () => {
      const done = nextMessage(relay, 'fanout-done');
      const cpu0 = cpuMsOf(relay.pid);
      const w0 = workersCpu();
      const t0 = performance.now();
      const timeoutMs = Math.max(60_000, n * 10);
      relay.send({ type: 'fanout', timeoutMs });
      const m = await guard(done, timeoutMs + 10_000, 'relay fan-out');
      return { ...m, parentMs: performance.now() - t0, relayCpuMs: cpuMsOf(relay.pid) - cpu0, workersCpuMs: workersCpu() - w0 };
    };
    const cold = await relayFanout();
    const warmRelay = await relayFanout();
    let rtt;
    if (roundTrips) {
      const api = createHubApi({ host: '127.0.0.1', port: relayPort, apiKey: 'none', maxSockets: roundTrips.httpConcurrency });
      const targets = shuffled(Array.from({ length: n }, (_, k) => String(k)));
      try {
        const r = await measureRoundTrips({
          api,
          targets,
          rate: roundTrips.rate,
          durationS: roundTrips.durationS,
          warmUpS: roundTrips.warmUpS,
          httpConcurrency: roundTrips.httpConcurrency,
          serverPid: relay.pid,
          workerPids: workers.map((w) => w.pid),
        });
        rtt = {
          rate: r.rate,
          achievedRate: r.achievedRate,
          sent: r.sent,
          ok: r.ok,
          failed: r.failed + r.warmUp.failed,
          errors: r.errors,
          latencyMs: r.latencyMs,
          senderLagMs: r.senderLagMs,
          cpuMsPerCommand: (({ server, ...rest }) => ({ relay: server, ...rest }))(r.cpuMsPerCommand),
        };
      } finally {
        api.close();
      }
    }
    return {
      result: {
        connectMs: round(relayConn.ms, 1),
        rssBeforeKB: relayBefore.rssKB,
        rssConnectedKB: relayConnected.rssKB,
        perConnectionKB: round((relayConnected.rssKB - relayBefore.rssKB) / n, 1),
        fanoutMs: round(warmRelay.parentMs, 1),
        fanoutInRelayMs: round(warmRelay.ms, 1),
        coldFanoutMs: round(cold.parentMs, 1),
        /** CPU of the measured fan-out: the relay process, and its client workers. */
        fanoutRelayCpuMs: round(warmRelay.relayCpuMs, 0),
        fanoutWorkersCpuMs: round(warmRelay.workersCpuMs, 0),
        clients: warmRelay.clients,
        ok: warmRelay.ok,
        failed: warmRelay.failed + warmRelay.timedOut,
        ...(rtt ? { rtt } : {}),
      },
      relay: undefined,
      workers: [],
    };
  } finally {
    await Promise.all(workers.map((c) => stopChild(c, { timeoutMs: 5000 })));
    await stopChild(relay, { timeoutMs: 5000 });
  }
}
