/**
 * `node bench/run.js --suite full` (and `--suite sessions`, the session throughput bench alone):
 * runs the sections of bench/sections/index.js in order, each bounded in time, and writes
 * bench/results/<name>.json after every section, so a run cut short keeps what it measured.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { clearFailure, guard } from './lib/children.js';
import { FD_MARGIN, log, MAX_PER_WORKER, marks, RESULTS_DIR, setFleetNice } from './lib/fleet.js';
import { cpuCalibrationMs, cpuMsOf, ephemeralPorts, machineBusyMs, machineInfo, machineStealMs, openFileLimit } from './lib/proc.js';
import { startFleet } from './lib/sim-fleet.js';
import { round } from './lib/stats.js';
import { SECTIONS } from './sections/index.js';

const HELP = `Usage: node bench/run.js --suite full|sessions [options]   (or: npm run bench -- --suite full …)

  --satellites N           fleet size for connect, RTT, fan-out, restart, baseline (default 10000)
  --name NAME              results file bench/results/NAME.json (default "full" at N=10000, else "full-n<N>";
                           "sessions" for --suite sessions)
  --only a,b               run only these sections (ids: ${SECTIONS.map((s) => s.id).join(', ')})
  --skip a,b               leave these sections out
  --workers W              satellite worker processes (default: max(2, ceil(N / ${MAX_PER_WORKER})))
  --connect-concurrency C  handshakes in flight at once, all workers together (default 256)
  --rtt-rate R             commands per second of the RTT section (default 1000)
  --rtt-duration S         seconds of the RTT section (default 30)
  --rtt-warmup S           seconds at the RTT rate before the measured part, not counted (default 10)
  --rest-rate R            requests per second per endpoint in the REST section (default 2000)
  --rest-duration S        seconds per endpoint in the REST section (default 10)
  --rest-satellites N      satellites connected during the REST section (default 1000)
  --transfer-mb M          MB moved each way by the session throughput section (default 100)
  --sessions S             concurrent PTY sessions (default 200)
  --session-agents A       real hive-agent processes carrying them (default 4)
  --hub-cpu-prof DIR       run the fleet hub with --cpu-prof (written when it stops with SIGTERM,
                           so leave out the restart section: --skip restart)
  --hub-log FILE           copy the fleet hub's output into FILE (secrets redacted)
  --fleet-nice N           niceness of the simulated satellites and relay clients (default 10, so the
                           hub gets a core before its own load rig; 0: all at one priority)
  -h, --help               this help
`;

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function num(v, name, fallback, min, max) {
  if (v[name] === undefined) return fallback;
  const n = Number(v[name]);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number between ${min} and ${max} (got ${v[name]})`);
  return Math.floor(n);
}

function parseOptions(suite) {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        suite: { type: 'string' },
        satellites: { type: 'string' },
        name: { type: 'string' },
        only: { type: 'string' },
        skip: { type: 'string' },
        workers: { type: 'string' },
        'connect-concurrency': { type: 'string' },
        'rtt-rate': { type: 'string' },
        'rtt-duration': { type: 'string' },
        'rtt-warmup': { type: 'string' },
        'rest-rate': { type: 'string' },
        'rest-duration': { type: 'string' },
        'rest-satellites': { type: 'string' },
        'transfer-mb': { type: 'string' },
        sessions: { type: 'string' },
        'session-agents': { type: 'string' },
        'hub-cpu-prof': { type: 'string' },
        'hub-log': { type: 'string' },
        'fleet-nice': { type: 'string' },
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
  const satellites = num(v, 'satellites', 10_000, 1, Math.min(50_000, ports - 2000));
  const fdLimit = openFileLimit() ?? 1024;
  if (satellites + FD_MARGIN > fdLimit) fail(`the hub would hold ${satellites} sockets but the open-file limit is ${fdLimit}; use fewer satellites`);
  const perWorkerCap = Math.max(1, Math.min(MAX_PER_WORKER, fdLimit - FD_MARGIN));
  const minWorkers = Math.ceil(satellites / perWorkerCap);
  const name = v.name ?? (suite === 'sessions' ? 'sessions' : satellites === 10_000 ? 'full' : `full-n${satellites}`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) fail('--name may use letters, digits, . _ - (at most 64)');
  const ids = SECTIONS.map((s) => s.id);
  const list = (s) => (s ? s.split(',').map((x) => x.trim()) : undefined);
  const only = suite === 'sessions' ? ['sessions'] : list(v.only);
  const skip = list(v.skip) ?? [];
  for (const id of [...(only ?? []), ...skip]) if (!ids.includes(id)) fail(`unknown section ${id} (sections: ${ids.join(', ')})`);
  return {
    suite,
    name,
    satellites,
    workers: Math.min(satellites, num(v, 'workers', Math.max(2, minWorkers), minWorkers, 64)),
    connectConcurrency: num(v, 'connect-concurrency', 256, 1, 10_000),
    rttRate: num(v, 'rtt-rate', 1000, 1, 20_000),
    rttDurationS: num(v, 'rtt-duration', 30, 1, 600),
    rttWarmUpS: num(v, 'rtt-warmup', 10, 0, 600),
    restRate: num(v, 'rest-rate', 2000, 1, 50_000),
    restDurationS: num(v, 'rest-duration', 10, 1, 120),
    restSatellites: num(v, 'rest-satellites', 1000, 1, 10_000),
    transferMB: num(v, 'transfer-mb', 100, 1, 2000),
    sessions: num(v, 'sessions', 200, 1, 1000),
    sessionAgents: num(v, 'session-agents', 4, 1, 32),
    hubCpuProf: v['hub-cpu-prof'] ? path.resolve(v['hub-cpu-prof']) : undefined,
    hubLogFile: v['hub-log'] ? path.resolve(v['hub-log']) : undefined,
    fleetNice: num(v, 'fleet-nice', 10, 0, 19),
    sections: ids.filter((id) => (only ? only.includes(id) : true) && !skip.includes(id)),
  };
}

function writeResults(r) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${r.name}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

const load = () => os.loadavg().map((x) => round(x, 2));

export async function runFull(suite) {
  const opts = parseOptions(suite);
  setFleetNice(opts.fleetNice);
  const selected = SECTIONS.filter((s) => opts.sections.includes(s.id));
  const lastFleetUser = selected.findLastIndex((s) => s.uses?.includes('fleet'));
  const r = {
    name: opts.name,
    suite,
    machine: machineInfo(),
    config: { ...opts, hubCpuProf: opts.hubCpuProf ? 'on' : undefined, hubLogFile: undefined },
    summary: [],
    sections: {},
  };
  log(`suite ${suite}: sections ${opts.sections.join(', ')}; N=${opts.satellites} in ${opts.workers} workers; load ${load().join(' ')}`);
  const busyAtStart = machineBusyMs();
  const stealAtStart = machineStealMs();
  const ownAtStart = cpuMsOf(process.pid, true);
  const wallAtStart = performance.now();

  // Shared between sections: the fleet hub with N satellites, started by the first section that asks.
  let fleet;
  let fleetStarting;
  const ctx = {
    opts,
    results: r.sections,
    fleet() {
      fleetStarting ??= startFleet({
        n: opts.satellites,
        workers: opts.workers,
        connectConcurrency: opts.connectConcurrency,
        tags: ['bench'],
        // The restart section measures the real agent's reconnect: the SDK's default backoff.
        backoff: 'sdk',
        cpuProfDir: opts.hubCpuProf,
        logFile: opts.hubLogFile,
        label: 'fleet hub',
      }).then((f) => {
        fleet = f;
        return f;
      });
      return fleetStarting;
    },
    async closeFleet() {
      const f = fleet ?? (await fleetStarting?.catch(() => undefined));
      fleet = undefined;
      fleetStarting = undefined;
      if (f) {
        await f.close();
        return f;
      }
      return undefined;
    },
    /** Cleanups a section registers for what it starts itself; run when it ends, whatever happens. */
    cleanups: [],
    defer(fn) {
      ctx.cleanups.push(fn);
    },
  };

  let failed = false;
  for (let i = 0; i < selected.length; i++) {
    const s = selected[i];
    const started = performance.now();
    const loadAtStart = load();
    log(`— section ${s.id}: ${s.title}`);
    let out;
    try {
      out = await guard(s.run(ctx), s.timeoutMs(ctx), `section ${s.id}`);
    } catch (err) {
      failed = true;
      out = { pass: false, status: 'error', error: err.message, ...(err.hubLog ? { hubLog: err.hubLog } : {}) };
      if (err.hubLog?.last.length) log(`last hub output:\n${err.hubLog.last.join('\n')}`);
      log(`section ${s.id} FAILED: ${err.message}`);
      clearFailure();
      // The fleet may be half-broken now; the next fleet section starts a fresh one.
      if (s.uses?.includes('fleet')) {
        const f = await ctx.closeFleet().catch(() => undefined);
        if (f?.hubLog?.last.length) out.hubLog = f.hubLog;
      }
    }
    for (const fn of ctx.cleanups.splice(0).reverse()) await fn().catch((err) => log(`cleanup after ${s.id}: ${err.message}`));
    if (i === lastFleetUser) {
      const f = await ctx.closeFleet().catch(() => undefined);
      if (f) r.fleetHub = { shutdown: f.shutdown, log: f.hubLog };
    }
    clearFailure();
    r.sections[s.id] = { title: s.title, spec: s.spec, ...out, sectionMs: round(performance.now() - started, 0), loadAvg: { start: loadAtStart, end: load() } };
    r.summary = Object.entries(r.sections).map(([id, x]) => ({
      id,
      target: x.target?.text ?? null,
      measured: x.measured ?? null,
      status: x.status ?? (x.pass ? 'pass' : 'miss'),
    }));
    writeResults(r);
    log(`section ${s.id}: ${r.sections[s.id].status ?? ''} ${r.sections[s.id].measured ?? ''}`);
  }

  r.machine.loadAvgAtEnd = load();
  r.machine.calibrationMsAtEnd = cpuCalibrationMs();
  const elapsed = performance.now() - wallAtStart;
  // The bench's own processes are all gone now, so their CPU is in ours (children waited for).
  const busy = machineBusyMs() - busyAtStart;
  const own = cpuMsOf(process.pid, true) - ownAtStart;
  r.machine.busyCpuPctDuringRun = round((busy / (elapsed * r.machine.cpus)) * 100, 1);
  const steal = machineStealMs() - stealAtStart;
  r.machine.otherProcessesCpuPct = round((Math.max(0, busy - own - steal) / (elapsed * r.machine.cpus)) * 100, 1);
  /** CPU time the hypervisor took from this machine (steal), as a share of all its CPU time during the run. */
  r.machine.stealCpuPct = round((steal / (elapsed * r.machine.cpus)) * 100, 1);
  r.complete = !failed;
  if (opts.hubCpuProf) {
    // Phase boundaries on the profile's clock, for `node bench/profile-top.js DIR fanout`.
    mkdirSync(opts.hubCpuProf, { recursive: true });
    writeFileSync(path.join(opts.hubCpuProf, 'phases.json'), `${JSON.stringify(marks, null, 2)}\n`);
  }
  const file = writeResults(r);
  printSummary(r);
  log(`results written to ${path.relative(process.cwd(), file)}`);
  if (failed) process.exitCode = 1;
}

function printSummary(r) {
  const rows = r.summary.map((x) => [x.id, x.status ?? '', x.measured ?? '', x.target ?? '']);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => String(row[i]).length), 6));
  process.stdout.write(
    `\nHive bench "${r.name}" — ${r.config.satellites} satellites, ${r.machine.cpus} CPUs, node ${r.machine.node}; load average ${r.machine.loadAvgAtStart.join(' ')} → ${r.machine.loadAvgAtEnd.join(' ')}; other processes used ${r.machine.otherProcessesCpuPct}% of the machine's CPU during the run, the hypervisor took ${r.machine.stealCpuPct ?? '?'}% (steal); CPU calibration ${r.machine.calibrationMsAtStart} → ${r.machine.calibrationMsAtEnd} ms (bench/lib/proc.js: lower is a faster machine)\n\n`,
  );
  for (const row of rows)
    process.stdout.write(`  ${String(row[0]).padEnd(w[0])}  ${String(row[1]).padEnd(w[1])}  ${String(row[2]).padEnd(w[2])}  target: ${row[3]}\n`);
  process.stdout.write('\n');
}
