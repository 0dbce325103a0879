#!/usr/bin/env node
/**
 * Hive benchmark: a real hub in a child process, a simulated fleet of N satellites (real
 * identities, real protocol) sharded over worker processes, and a bare `ws` relay as the
 * baseline. See bench/README.md for what each figure means.
 *
 *   node bench/run.js [--satellites N] [--name NAME] [--rate R] [--duration S]
 */
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { registerTempDir, stopChild } from './lib/children.js';
import {
  connectWorkers,
  countBy,
  endLoopWindow,
  FD_MARGIN,
  fanout,
  fixedRate,
  kb,
  log,
  MAX_PER_WORKER,
  makeApiKey,
  mark,
  marks,
  pool,
  RESULTS_DIR,
  removeStaleDataDirs,
  runRelayBaseline,
  SATELLITE_WORKER,
  shardsOf,
  shuffled,
  startHub,
  startLoopWindow,
  startWorkers,
  timeline,
  workerStats,
} from './lib/fleet.js';
import { createHubApi } from './lib/http.js';
import { cpuCalibrationMs, cpuMsOf, ephemeralPorts, machineBusyMs, machineInfo, memoryOf, openFileLimit } from './lib/proc.js';
import { round, summarize } from './lib/stats.js';

const HELP = `Usage: node bench/run.js [options]      (or: npm run bench -- [options])

  --suite default|full|sessions
                           full: every SPEC number, sections, results/full.json (see --suite full --help);
                           sessions: the session throughput bench alone (default: this suite)
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
        suite: { type: 'string' },
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
    const apiKey = makeApiKey();
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
    const targets = shuffled(ids);
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
    const relayRun = await runRelayBaseline({ shards, concurrencyPerWorker, n: N, connectTimeoutMs });
    relay = relayRun.relay;
    relayWorkers = relayRun.workers;
    r.relay = relayRun.result;
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
  r.machine.calibrationMsAtEnd = cpuCalibrationMs();
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

// `--suite full|sessions` runs bench/full.js (sections registry); the default suite is main() above.
const suiteArg = process.argv.find((_a, i) => process.argv[i - 1] === '--suite') ?? process.argv.find((a) => a.startsWith('--suite='))?.slice(8);
if (suiteArg && suiteArg !== 'default') {
  if (!['full', 'sessions'].includes(suiteArg)) fail(`--suite must be default, full or sessions (got ${suiteArg})`);
  const { runFull } = await import('./full.js');
  await runFull(suiteArg);
} else {
  await main();
}
process.exit();
