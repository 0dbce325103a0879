#!/usr/bin/env node
/**
 * Hive benchmark: a real hub in a child process, a simulated fleet of N satellites (real
 * identities, real protocol) sharded over worker processes, and a bare `ws` relay as the
 * baseline. See bench/README.md for what each figure means.
 *
 *   node bench/run.js [--satellites N] [--name NAME] [--rate R] [--duration S]
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { forkChild, guard, nextMessage, registerTempDir, stopChild } from './lib/children.js';
import { createHubApi } from './lib/http.js';
import { cpuMsOf, ephemeralPorts, machineBusyMs, machineInfo, memoryOf, openFileLimit } from './lib/proc.js';
import { round, summarize } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const HIVE_BIN = path.join(ROOT, 'packages/cli/bin/hive.js');
const SATELLITE_WORKER = path.join(HERE, 'satellite-worker.js');
const RELAY_SERVER = path.join(HERE, 'relay-server.js');
const RELAY_WORKER = path.join(HERE, 'relay-worker.js');
const RESULTS_DIR = path.join(HERE, 'results');

/** Sockets per worker process: well under the per-process open-file limit. */
const MAX_PER_WORKER = 2500;
/** File descriptors a process needs besides its sockets (node, sqlite, pipes...). */
const FD_MARGIN = 512;

const HELP = `Usage: node bench/run.js [options]      (or: npm run bench -- [options])

  --satellites N           simulated satellites (default 1000)
  --name NAME              results file bench/results/NAME.json (default: "default" for N=1000, else "n<N>")
  --rate R                 exec requests per second in the fixed-rate phase (default 200)
  --duration S             seconds of the fixed-rate phase (default 10)
  --workers W              satellite worker processes (default: max(2, ceil(N / ${MAX_PER_WORKER})))
  --connect-concurrency C  handshakes in flight at once, all workers together (default 256)
  --http-concurrency H     keep-alive HTTP sockets of the load generator (default 256)
  --hub-cpu-prof DIR       run the hub with --cpu-prof: its .cpuprofile and phases.json (phase
                           boundaries on the profile's clock) go into DIR
  --hub-log FILE           copy the hub's stdout/stderr into FILE (the console key is redacted)
  -h, --help               this help
`;

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function intOption(values, name, fallback, min, max) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number between ${min} and ${max} (got ${raw})`);
  return n;
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        satellites: { type: 'string' },
        name: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        workers: { type: 'string' },
        'connect-concurrency': { type: 'string' },
        'http-concurrency': { type: 'string' },
        'hub-cpu-prof': { type: 'string' },
        'hub-log': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    fail(`${err.message}\n\n${HELP}`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const ports = ephemeralPorts() ?? 28_000;
  const satellites = Math.floor(intOption(v, 'satellites', 1000, 1, Math.min(50_000, ports - 2000)));
  const name = v.name ?? (satellites === 1000 ? 'default' : `n${satellites}`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) fail('--name may use letters, digits, . _ - (at most 64)');
  const fdLimit = openFileLimit() ?? 1024;
  const perWorkerCap = Math.max(1, Math.min(MAX_PER_WORKER, fdLimit - FD_MARGIN));
  const minWorkers = Math.ceil(satellites / perWorkerCap);
  const workers = Math.floor(intOption(v, 'workers', Math.min(satellites, Math.max(2, minWorkers)), minWorkers, 64));
  if (satellites + FD_MARGIN > fdLimit) {
    fail(`the hub would hold ${satellites} sockets but the open-file limit is ${fdLimit}; raise it (ulimit -n) or use fewer satellites`);
  }
  return {
    satellites,
    name,
    rate: intOption(v, 'rate', 200, 1, 20_000),
    durationS: intOption(v, 'duration', 10, 1, 600),
    workers: Math.min(workers, satellites),
    connectConcurrency: Math.floor(intOption(v, 'connect-concurrency', 256, 1, 10_000)),
    httpConcurrency: Math.floor(intOption(v, 'http-concurrency', 256, 1, 4096)),
    hubCpuProf: v['hub-cpu-prof'] ? path.resolve(v['hub-cpu-prof']) : undefined,
    hubLogFile: v['hub-log'] ? path.resolve(v['hub-log']) : undefined,
  };
}

const T0 = performance.now();
/** Phase boundaries on the monotonic clock V8 CPU profiles use (µs), to cut a hub profile by phase. */
const marks = [];
const mark = (phase) => marks.push({ phase, monotonicUs: Number(process.hrtime.bigint() / 1000n) });
const log = (msg) => process.stderr.write(`[bench +${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);

/** Contiguous index ranges [first, first+count) for `workers` shards. */
function shardsOf(n, workers) {
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
async function pool(items, limit, fn) {
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

const kb = (v) => (v === null || v === undefined ? 'n/a' : `${(v / 1024).toFixed(1)} MB`);
const countBy = (codes) => {
  const out = {};
  for (const c of codes) if (c) out[c] = (out[c] ?? 0) + 1;
  return out;
};

// ------------------------------------------------------------------------------------ hub

/** Data dirs left by a bench that was killed with SIGKILL (its pid is in the name). */
function removeStaleDataDirs() {
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
function redactSecrets(line) {
  return line.replace(/hive_[A-Za-z0-9]+_[A-Za-z0-9_-]+/g, 'hive_<redacted>').replace(/(password|secret|token)(\W+)\S+/gi, '$1$2<redacted>');
}

/**
 * Watches the hub's stdout/stderr: finds the banner's URL, counts warn/error log lines and keeps
 * the last 20 of them (plus `hive:` messages) for the results. Banner lines are not kept.
 */
function watchHubOutput(child, logFile) {
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
    const m = /listening on (http:\/\/[^\s]+)/.exec(line);
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

async function startHub(dataDir, apiKey, { cpuProfDir, logFile }) {
  // A clean environment: no HIVE_* from the caller's shell may point the hub elsewhere.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIVE_') && k !== 'ADMIN_API_KEY'));
  env.ADMIN_API_KEY = apiKey;
  env.HIVE_LOG_LEVEL = 'warn';
  const child = forkChild(HIVE_BIN, ['server', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], {
    label: 'hub',
    env,
    silent: true,
    execArgv: cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [],
  });
  const out = watchHubOutput(child, logFile);
  const url = await guard(out.url, 30_000, 'hub start (its "listening on" banner)');
  const { port } = new URL(url);
  return { child, url, port: Number(port), wsUrl: `${url.replace(/^http/, 'ws')}/ws`, log: out.log };
}

// ------------------------------------------------------------------------------ satellites

async function startWorkers(script, label, shards, initFor) {
  const children = shards.map((_, w) => forkChild(script, [], { label: `${label} ${w}` }));
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
async function connectWorkers(children, total, what, timeoutMs, serverPid) {
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
function cpuByQuarter(samples, total) {
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
function timeline(helloAts, startedAt) {
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
const ownLoop = monitorEventLoopDelay({ resolution: 10 });
ownLoop.enable();

function startLoopWindow(hubChild, workers) {
  for (const c of [hubChild, ...workers]) c.send({ type: 'probe-reset' });
  ownLoop.reset();
}

async function endLoopWindow(hubChild, workers) {
  const ask = (c) => {
    const reply = nextMessage(c, 'probe');
    c.send({ type: 'probe' });
    return reply;
  };
  const [hubProbe, ...workerProbes] = await guard(Promise.all([hubChild, ...workers].map(ask)), 10_000, 'event-loop probes');
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  return {
    hub: hubProbe.eld,
    workers: { p99: Math.max(...workerProbes.map((p) => p.eld.p99)), max: Math.max(...workerProbes.map((p) => p.eld.max)) },
    loadGenerator: { p50: ms(ownLoop.percentile(50)), p99: ms(ownLoop.percentile(99)), max: ms(ownLoop.max) },
  };
}

async function workerStats(children) {
  const replies = children.map((c) => nextMessage(c, 'stats'));
  for (const c of children) c.send({ type: 'stats' });
  return guard(Promise.all(replies), 30_000, 'worker stats');
}

// ------------------------------------------------------------------------------------ exec

async function fixedRate(api, ids, rate, durationS) {
  const total = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const latency = [];
  const hubMs = [];
  const lag = [];
  const codes = [];
  let ok = 0;
  let lastSend = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    const fire = (i) => {
      const now = performance.now();
      lag.push(now - (t0 + i * intervalMs));
      lastSend = now;
      api.exec(ids[i % ids.length]).then((r) => {
        if (r.ok) {
          ok++;
          latency.push(r.ms);
          if (r.hubMs !== null) hubMs.push(r.hubMs);
        } else codes.push(r.code);
        if (++done === total) resolve();
      });
    };
    // Open loop: requests leave on schedule whether or not earlier ones have answered.
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1);
      while (sent < due) fire(sent++);
      if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * intervalMs - performance.now()));
    };
    tick();
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
    hubDurationMs: summarize(hubMs),
    senderLagMs: summarize(lag),
  };
}

async function fanout(api, ids, concurrency) {
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

// ---------------------------------------------------------------------------------- report

function printTable(r) {
  const rows = [];
  const section = (title) => rows.push([title, '']);
  const row = (k, v) => rows.push([`  ${k}`, v]);
  const loops = (l) => `${l.hub.p99} / ${l.workers.p99} / ${l.loadGenerator.p99} ms (max ${l.hub.max} / ${l.workers.max} / ${l.loadGenerator.max})`;
  const pct = (s) => (s.count ? `${s.p50} / ${s.p95} / ${s.p99} ms (max ${s.max})` : 'n/a');
  const N = r.config.satellites;

  section(`Hive bench "${r.name}" — ${N} satellites in ${r.config.workers} workers, ${r.machine.cpus} CPUs, node ${r.machine.node}, ${r.machine.date}`);
  section(
    `other processes used ${r.machine.otherProcessesCpuPct}% of the machine's CPU during the run` +
      `${r.machine.otherProcessesCpuPct > 5 ? ' — figures are skewed, run again on a quiet machine' : ''}` +
      ` (load average at start ${r.machine.loadAvgAtStart.join(' ')})`,
  );
  section('Connect + pair');
  row(`all ${N} satellites hello'd`, `${(r.connect.totalMs / 1000).toFixed(2)} s  (${r.connect.perSecond}/s, ${r.config.connectConcurrency} in flight)`);
  row('hello latency p50/p95/p99', pct(r.connect.helloLatencyMs));
  row('time to 50% / 90% / 100%', `${r.connect.timeline[4].atS} / ${r.connect.timeline[8].atS} / ${r.connect.timeline[9].atS} s`);
  row('rate first 10% / last 10%', `${r.connect.timeline[0].perSecond}/s / ${r.connect.timeline[9].perSecond}/s`);
  row('hub CPU per satellite, by quarter', `${r.connect.hubCpuPerSatelliteByQuarterMs.join(' / ')} ms`);
  row('failed handshakes / drops', `${r.connect.handshakesFailed} / ${r.connect.dropsAfterHello}`);
  row(
    'CPU during connect: hub / workers',
    `${(r.connect.hubCpuMs / 1000).toFixed(2)} s (${round(r.connect.hubCpuMs / N, 2)} ms per satellite) / ${(r.connect.workersCpuMs / 1000).toFixed(2)} s`,
  );
  section('Hub memory (RSS)');
  row('before satellites', kb(r.hubMemory.rssBeforeKB));
  row('all connected', kb(r.hubMemory.rssConnectedKB));
  row('per satellite', `${r.hubMemory.perSatelliteKB} KB`);
  row('after fan-out / peak', `${kb(r.hubMemory.rssAfterFanoutKB)} / ${kb(r.hubMemory.hwmKB)}`);
  row('worker RSS per simulated satellite', `${r.workers.rssPerSatelliteKB} KB`);
  section(`Exec round trip, REST, ${r.exec.rate}/s for ${r.exec.durationS} s`);
  row('p50 / p95 / p99', pct(r.exec.latencyMs));
  row('hub job duration p50 / p99', r.exec.hubDurationMs.count ? `${r.exec.hubDurationMs.p50} / ${r.exec.hubDurationMs.p99} ms` : 'n/a');
  row('event-loop delay p99: hub / satellites / generator', loops(r.exec.eventLoopDelayMs));
  row('ok / sent (achieved rate)', `${r.exec.ok} / ${r.exec.sent} (${r.exec.achievedRate}/s)`);
  section(`Fan-out: one exec per satellite (${N} REST calls, ${r.fanout.httpConcurrency} concurrent)`);
  row('total', `${(r.fanout.totalMs / 1000).toFixed(2)} s  (${r.fanout.perSecond}/s)`);
  row('succeeded', `${r.fanout.ok} / ${r.fanout.n}${r.fanout.failed ? `  errors ${JSON.stringify(r.fanout.errors)}` : ''}`);
  row('hub CPU during fan-out', `${(r.fanout.hubCpuMs / 1000).toFixed(2)} s`);
  row('event-loop delay p99: hub / satellites / generator', loops(r.fanout.eventLoopDelayMs));
  section('Bare ws relay (baseline, same fleet size, same sharding)');
  row(`connect ${N} clients`, `${(r.relay.connectMs / 1000).toFixed(2)} s`);
  row('fan-out total', `${r.relay.fanoutMs} ms  (${r.relay.ok} / ${r.relay.clients} answered; cold run ${r.relay.coldFanoutMs} ms)`);
  row('RSS per connection', `${r.relay.perConnectionKB} KB  (${kb(r.relay.rssBeforeKB)} → ${kb(r.relay.rssConnectedKB)})`);
  section('Hive vs bare relay');
  row('fan-out time ratio', `${r.comparison.fanoutRatio}×`);
  row('memory per connection ratio', `${r.comparison.memoryRatio}×`);
  if (r.hubLog.warnings || r.hubLog.errors) row('hub log', `${r.hubLog.warnings} warnings, ${r.hubLog.errors} errors`);

  const width = Math.max(...rows.filter((x) => x[1]).map((x) => x[0].length));
  const lines = rows.map(([k, v]) => (v ? `${k.padEnd(width)}  ${v}` : `\n${k}`));
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

function writeResults(r) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${r.name}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

// ------------------------------------------------------------------------------------ main

async function main() {
  const opts = parseOptions();
  const N = opts.satellites;
  const shards = shardsOf(N, opts.workers);
  const concurrencyPerWorker = Math.max(1, Math.ceil(opts.connectConcurrency / opts.workers));
  const connectTimeoutMs = 60_000 + N * 25;
  const r = {
    name: opts.name,
    machine: machineInfo(),
    config: {
      satellites: N,
      workers: opts.workers,
      perWorker: shards.map((s) => s.count),
      connectConcurrency: concurrencyPerWorker * opts.workers,
      rate: opts.rate,
      durationS: opts.durationS,
      httpConcurrency: opts.httpConcurrency,
    },
  };
  log(`${N} satellites, ${opts.workers} workers (${shards.map((s) => s.count).join(', ')}), machine ${r.machine.cpus} CPUs`);

  // CPU used by the bench's own processes, to tell how much other work shared the machine.
  const busyAtStart = machineBusyMs();
  const ownAtStart = cpuMsOf(process.pid, true);
  const wallAtStart = performance.now();

  let failed = false;
  let hub;
  let api;
  let satWorkers = [];
  let relay;
  let relayWorkers = [];
  try {
    // ---------------------------------------------------------------- hub
    const apiKey = execFileSync(process.execPath, [HIVE_BIN, 'keygen'], { encoding: 'utf8' }).trim();
    if (!/^hive_\w+_[\w-]+$/.test(apiKey)) throw new Error(`hive keygen printed an unexpected key: ${apiKey.slice(0, 20)}…`);
    removeStaleDataDirs();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `hive-bench-${process.pid}-`));
    registerTempDir(dataDir);
    hub = await startHub(dataDir, apiKey, { cpuProfDir: opts.hubCpuProf, logFile: opts.hubLogFile });
    log(`hub pid ${hub.child.pid} on ${hub.url}`);
    api = createHubApi({ host: '127.0.0.1', port: hub.port, apiKey, maxSockets: opts.httpConcurrency });
    const health = await api.request('GET', '/health/ready');
    if (health.status !== 200) throw new Error(`hub not ready: HTTP ${health.status} ${JSON.stringify(health.body)}`);

    // --------------------------------------------------------- satellites
    const sat = await startWorkers(SATELLITE_WORKER, 'satellite worker', shards, (s) => ({
      url: hub.wsUrl,
      first: s.first,
      count: s.count,
      concurrency: concurrencyPerWorker,
    }));
    satWorkers = sat.children;
    log(`identities generated (${Math.round(Math.max(...sat.ready.map((m) => m.keygenMs)))} ms in the slowest worker)`);
    const before = memoryOf(hub.child.pid);
    const cpuBefore = cpuMsOf(hub.child.pid);
    const workerCpuBefore = satWorkers.reduce((a, c) => a + cpuMsOf(c.pid), 0);
    log(`connecting ${N} satellites (${r.config.connectConcurrency} handshakes in flight)…`);
    startLoopWindow(hub.child, satWorkers);
    mark('connect.start');
    const conn = await connectWorkers(satWorkers, N, 'satellites', connectTimeoutMs, hub.child.pid);
    mark('connect.end');
    const loopConnect = await endLoopWindow(hub.child, satWorkers);
    const connected = memoryOf(hub.child.pid);
    const hubCpuConnect = cpuMsOf(hub.child.pid) - cpuBefore;
    const workerCpuConnect = satWorkers.reduce((a, c) => a + cpuMsOf(c.pid), 0) - workerCpuBefore;
    const ready = await api.request('GET', '/health/ready');
    const ids = conn.msgs.flatMap((m) => m.ids);
    const helloMs = conn.msgs.flatMap((m) => Array.from(m.helloMs));
    const sum = (f) => conn.msgs.reduce((a, m) => a + f(m), 0);
    const closeCodes = {};
    for (const m of conn.msgs) for (const [code, n] of Object.entries(m.counters.closeCodes)) closeCodes[code] = (closeCodes[code] ?? 0) + n;
    r.connect = {
      totalMs: round(conn.ms, 1),
      perSecond: round((N * 1000) / conn.ms, 0),
      helloLatencyMs: summarize(helloMs),
      timeline: timeline(
        conn.msgs.map((m) => m.helloAt),
        conn.startedAt,
      ),
      handshakesFailed: sum((m) => m.counters.handshakesFailed),
      dropsAfterHello: sum((m) => m.counters.drops),
      reconnects: sum((m) => m.counters.reconnects),
      closeCodes,
      hubCpuMs: round(hubCpuConnect, 0),
      hubCpuPerSatelliteByQuarterMs: conn.cpuByQuarter,
      workersCpuMs: round(workerCpuConnect, 0),
      hubReportedNodes: ready.body?.nodes ?? null,
      eventLoopDelayMs: loopConnect,
    };
    log(`all ${N} connected in ${(conn.ms / 1000).toFixed(2)} s; hub reports ${r.connect.hubReportedNodes} nodes`);
    if (r.connect.hubReportedNodes !== null && r.connect.hubReportedNodes !== N) {
      throw new Error(`hub reports ${r.connect.hubReportedNodes} connected nodes, expected ${N}`);
    }
    r.hubMemory = {
      rssBeforeKB: before.rssKB,
      rssConnectedKB: connected.rssKB,
      perSatelliteKB: round((connected.rssKB - before.rssKB) / N, 1),
    };
    const workerRss = sum((m) => m.rssKB);
    r.workers = { rssKB: conn.msgs.map((m) => m.rssKB), rssPerSatelliteKB: round(workerRss / N, 1) };

    // --------------------------------------------------------------- exec
    // Shuffled so consecutive requests hit different satellites (and workers).
    const targets = ids.slice();
    for (let i = targets.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [targets[i], targets[j]] = [targets[j], targets[i]];
    }
    const warm = await pool(targets.slice(0, Math.min(200, N)), 8, (id) => api.exec(id));
    const warmFailed = warm.filter((x) => !x.ok);
    if (warmFailed.length) throw new Error(`warm-up execs failed: ${JSON.stringify(countBy(warmFailed.map((x) => x.code)))}`);
    log(`warm-up done (${warm.length} execs); fixed rate ${opts.rate}/s for ${opts.durationS} s…`);
    startLoopWindow(hub.child, satWorkers);
    mark('exec.start');
    r.exec = await fixedRate(api, targets, opts.rate, opts.durationS);
    mark('exec.end');
    r.exec.eventLoopDelayMs = await endLoopWindow(hub.child, satWorkers);
    log(`exec p50 ${r.exec.latencyMs.p50} ms, p99 ${r.exec.latencyMs.p99} ms, ${r.exec.ok}/${r.exec.sent} ok`);

    log(`fan-out: ${N} execs, ${opts.httpConcurrency} concurrent…`);
    const cpuFanout = cpuMsOf(hub.child.pid);
    startLoopWindow(hub.child, satWorkers);
    mark('fanout.start');
    r.fanout = await fanout(api, targets, opts.httpConcurrency);
    mark('fanout.end');
    r.fanout.eventLoopDelayMs = await endLoopWindow(hub.child, satWorkers);
    r.fanout.hubCpuMs = round(cpuMsOf(hub.child.pid) - cpuFanout, 0);
    log(`fan-out ${r.fanout.ok}/${N} ok in ${(r.fanout.totalMs / 1000).toFixed(2)} s`);
    const after = memoryOf(hub.child.pid);
    r.hubMemory.rssAfterFanoutKB = after.rssKB;
    r.hubMemory.hwmKB = after.hwmKB;
    const stats = await workerStats(satWorkers);
    r.workers.invokesAnswered = stats.reduce((a, s) => a + s.invokes, 0);
    r.workers.onlineAtEnd = stats.reduce((a, s) => a + s.online, 0);
    r.workers.dropsAtEnd = stats.reduce((a, s) => a + s.counters.drops, 0);
    failed ||= r.exec.failed > 0 || r.fanout.failed > 0 || r.workers.onlineAtEnd !== N;

    // Tear the fleet and the hub down before the baseline, so it gets the same machine.
    await Promise.all(satWorkers.map((c) => stopChild(c)));
    satWorkers = [];
    api.close();
    const t = performance.now();
    const stop = await stopChild(hub.child, { signal: 'SIGTERM', timeoutMs: 30_000 });
    r.hubShutdown = { ms: round(performance.now() - t, 0), code: stop.code, forced: stop.forced };
    r.hubLog = hub.log;
    hub = undefined;

    // ---------------------------------------------------------- bare relay
    log('bare ws relay baseline…');
    relay = forkChild(RELAY_SERVER, [], { label: 'bare relay' });
    await guard(nextMessage(relay, 'booted'), 30_000, 'relay booted');
    const listening = nextMessage(relay, 'listening');
    relay.send({ type: 'listen' });
    const { port: relayPort } = await guard(listening, 15_000, 'relay listening');
    const rw = await startWorkers(RELAY_WORKER, 'relay worker', shards, (s) => ({
      url: `ws://127.0.0.1:${relayPort}/ws`,
      count: s.count,
      concurrency: concurrencyPerWorker,
    }));
    relayWorkers = rw.children;
    const relayBefore = memoryOf(relay.pid);
    const relayConn = await connectWorkers(relayWorkers, N, 'relay clients', connectTimeoutMs);
    const relayConnected = memoryOf(relay.pid);
    const relayFanout = async () => {
      const done = nextMessage(relay, 'fanout-done');
      const t0 = performance.now();
      const timeoutMs = Math.max(60_000, N * 10);
      relay.send({ type: 'fanout', timeoutMs });
      const m = await guard(done, timeoutMs + 10_000, 'relay fan-out');
      return { ...m, parentMs: performance.now() - t0 };
    };
    const cold = await relayFanout();
    const warmRelay = await relayFanout();
    r.relay = {
      connectMs: round(relayConn.ms, 1),
      rssBeforeKB: relayBefore.rssKB,
      rssConnectedKB: relayConnected.rssKB,
      perConnectionKB: round((relayConnected.rssKB - relayBefore.rssKB) / N, 1),
      fanoutMs: round(warmRelay.parentMs, 1),
      fanoutInRelayMs: round(warmRelay.ms, 1),
      coldFanoutMs: round(cold.parentMs, 1),
      clients: warmRelay.clients,
      ok: warmRelay.ok,
      failed: warmRelay.failed + warmRelay.timedOut,
    };
    failed ||= r.relay.ok !== N;
    r.comparison = {
      fanoutRatio: round(r.fanout.totalMs / r.relay.fanoutMs, 1),
      memoryRatio: r.relay.perConnectionKB > 0 ? round(r.hubMemory.perSatelliteKB / r.relay.perConnectionKB, 1) : null,
    };
    log(`relay fan-out ${r.relay.ok}/${N} in ${r.relay.fanoutMs} ms`);
  } catch (err) {
    failed = true;
    r.error = err.message;
    if (hub) r.hubLog = hub.log;
    log(`FAILED: ${err.message}`);
    if (hub?.log.last.length) log(`last hub output:\n${hub.log.last.join('\n')}`);
  } finally {
    api?.close();
    await Promise.all([...satWorkers, ...relayWorkers].map((c) => stopChild(c, { timeoutMs: 5000 })));
    if (relay) await stopChild(relay, { timeoutMs: 5000 });
    if (hub) await stopChild(hub.child, { signal: 'SIGTERM', timeoutMs: 15_000 });
  }

  r.machine.loadAvgAtEnd = os.loadavg().map((v) => round(v, 2));
  if (!r.error) {
    // Every child has ended and been waited for by now, so its CPU time is in ours.
    const own = cpuMsOf(process.pid, true) - ownAtStart;
    const other = Math.max(0, machineBusyMs() - busyAtStart - own);
    const capacity = ((performance.now() - wallAtStart) * r.machine.cpus) / 100;
    r.machine.otherProcessesCpuS = round(other / 1000, 1);
    r.machine.otherProcessesCpuPct = round(other / capacity, 1);
  }
  r.complete = !r.error;
  if (opts.hubCpuProf) {
    mkdirSync(opts.hubCpuProf, { recursive: true });
    writeFileSync(path.join(opts.hubCpuProf, 'phases.json'), `${JSON.stringify(marks, null, 2)}\n`);
  }
  const file = writeResults(r);
  if (r.complete) printTable(r);
  log(`results written to ${path.relative(process.cwd(), file)}`);
  if (failed) {
    log('some requests or phases failed; see the results file');
    process.exitCode = 1;
  }
}

await main();
process.exit();
