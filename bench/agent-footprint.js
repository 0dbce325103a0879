#!/usr/bin/env node
/**
 * Agent footprint (SPEC "Numbers the system must reach", seed 004): idle RSS under 50 MB, under
 * 1 % CPU when idle, ready in under 2 s.
 *
 * Starts a real hub (`hive server --port 0` on a fresh data dir) and a real agent process exactly
 * as `hive start` and the e2e tests do (`node packages/agent/bin/hive-agent.js --hub … --state …`,
 * no extra node flags), then measures from the outside:
 *
 *   ready_ms        spawn of the agent process → the hub's `satellite:online` event for it, on the
 *                   first start (fresh state dir: device key generated, silent loopback pairing).
 *   restart_ready_ms  the same for restarts with the state kept (token already issued); median.
 *   idle_rss_mb     VmRSS from /proc/<pid>/status once the agent has settled: `settleSeconds`
 *                   after online AND after its first status report reached the hub (the report
 *                   on hello); the last started agent is the one measured.
 *   cpu_percent     CPU time (utime+stime from /proc/<pid>/stat) over the next `idleSeconds`
 *                   divided by the wall time, in % of one core. The window includes the hub's
 *                   heartbeat pings and the agent's status reports at their default intervals.
 *   rss_mb          min / median / max of VmRSS sampled every second during the idle window.
 *
 *   import { measureAgentFootprint } from './agent-footprint.js';
 *   const r = await measureAgentFootprint({ idleSeconds: 60 });
 *
 *   node bench/agent-footprint.js [--idle 60] [--settle 10] [--restarts 2] [--json]
 *                                 [--node-arg=--some-v8-flag …]   (experiments only)
 *                                 [--hub-bin path/to/hive.js] [--agent-bin path/to/hive-agent.js]
 *                                 [--agent-env=NAME=VALUE …]
 *
 * Linux only (/proc). The packages must be built (`npm run build`). All processes it starts are
 * killed and the temp dir removed when it returns or fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HiveClient } from '@hive/sdk';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HIVE_BIN = path.join(ROOT, 'packages/cli/bin/hive.js');
const AGENT_BIN = path.join(ROOT, 'packages/agent/bin/hive-agent.js');

/** SPEC targets, reported next to the figures. */
export const AGENT_TARGETS = { idle_rss_mb: 50, cpu_percent: 1, ready_ms: 2000 };

/** USER_HZ, the unit of /proc/<pid>/stat times (100 on every mainstream Linux build). */
const CLOCK_TICKS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const r1 = (n) => Math.round(n * 10) / 10;
const r2 = (n) => Math.round(n * 100) / 100;
const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function procStatus(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) : null;
  };
  const threads = /^Threads:\s+(\d+)/m.exec(status);
  return { rssKB: kb('VmRSS'), hwmKB: kb('VmHWM'), anonKB: kb('RssAnon'), fileKB: kb('RssFile'), threads: threads ? Number(threads[1]) : null };
}

/**
 * Pss and private (unshared) memory from /proc/<pid>/smaps_rollup, MB: most of RssFile is the
 * node binary's code, shared with every other node process and reclaimable page cache.
 */
function sharing(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? Number.NaN);
    return { pss_mb: r1(kb('Pss') / 1024), private_mb: r1((kb('Private_Clean') + kb('Private_Dirty')) / 1024) };
  } catch {
    return { pss_mb: null, private_mb: null };
  }
}

function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A clean environment: no HIVE_* from the caller's shell may point a child elsewhere. */
function cleanEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIVE_') && k !== 'ADMIN_API_KEY' && k !== 'NODE_OPTIONS'));
  return { ...env, ...extra };
}

async function startHub(hubBin, dataDir, apiKey) {
  const child = spawn(process.execPath, [hubBin, 'server', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], {
    env: cleanEnv({ ADMIN_API_KEY: apiKey, HIVE_LOG_LEVEL: 'warn' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  const url = new Promise((resolve, reject) => {
    const onLine = (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      const m = /listening on (https?:\/\/[^\s]+)/.exec(line);
      if (m) resolve(m[1]);
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`hub exited (${code}) before listening:\n${tail.join('\n')}`)));
  });
  return { child, url: await withTimeout(url, 30_000, 'the hub to listen') };
}

/** Operator connection that remembers every event with the time it arrived. */
async function watchEvents(wsUrl, apiKey) {
  const op = new HiveClient({ url: wsUrl, role: 'operator', apiKey, client: { name: 'agent-footprint', version: '0' }, reconnect: false });
  const seen = [];
  const waiters = new Set();
  op.on('event', (name, payload) => {
    const e = { name, payload, at: performance.now() };
    seen.push(e);
    for (const w of waiters) w(e);
  });
  await op.start();
  const waitEvent = (pred, timeoutMs, what, since = 0) => {
    const hit = seen.find((e) => e.at >= since && pred(e));
    if (hit) return Promise.resolve(hit);
    let on;
    const p = new Promise((resolve) => {
      on = (e) => {
        if (pred(e)) resolve(e);
      };
      waiters.add(on);
    });
    return withTimeout(p, timeoutMs, what).finally(() => waiters.delete(on));
  };
  return { op, waitEvent };
}

function spawnAgent(agentBin, wsUrl, stateDir, name, nodeArgs, agentEnv) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, agentBin, '--hub', wsUrl, '--state', stateDir, '--name', name, '--log-level', 'warn'], {
    env: cleanEnv(agentEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  const keep = (d) => {
    output.push(d.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, t0, output, exited };
}

async function stopAgent(agent) {
  if (agent.child.exitCode !== null || agent.child.signalCode !== null) return;
  agent.child.kill('SIGTERM');
  const done = await Promise.race([agent.exited, sleep(5_000).then(() => null)]);
  if (!done) {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
}

/**
 * Measures one agent against a fresh hub. Options:
 *   idleSeconds    CPU/RSS window once settled (default 60)
 *   settleSeconds  wait after online before the idle RSS reading (default 10)
 *   restarts       extra starts with the state kept, for restart_ready_ms (default 2)
 *   nodeArgs       extra node flags for the agent process (experiments; the product uses none)
 *   hubBin         the `hive` CLI that runs the hub (default: this checkout's; env HIVE_FOOTPRINT_HUB_BIN)
 *   agentBin       the agent launcher measured (default: this checkout's packages/agent/bin/hive-agent.js)
 *   agentEnv       extra environment for the agent (the caller's HIVE_* variables are not passed on)
 *   log            progress lines (default: none)
 */
export async function measureAgentFootprint({
  idleSeconds = 60,
  settleSeconds = 10,
  restarts = 2,
  nodeArgs = [],
  hubBin = process.env.HIVE_FOOTPRINT_HUB_BIN || HIVE_BIN,
  agentBin = AGENT_BIN,
  agentEnv = {},
  log = () => {},
} = {}) {
  if (process.platform !== 'linux') throw new Error('agent-footprint reads /proc and runs on Linux only');
  const dir = mkdtempSync(path.join(os.tmpdir(), `hive-agent-footprint-${process.pid}-`));
  const stateDir = path.join(dir, 'agent');
  const name = `footprint-${process.pid}`;
  let hub;
  let op;
  let agent;
  const killAll = () => {
    for (const c of [agent?.child, hub?.child]) {
      if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  };
  process.once('exit', killAll);
  try {
    const apiKey = execFileSync(process.execPath, [hubBin, 'keygen'], { encoding: 'utf8', env: cleanEnv({}) }).trim();
    hub = await startHub(hubBin, path.join(dir, 'hub'), apiKey);
    const wsUrl = `${hub.url.replace(/^http/, 'ws')}/ws`;
    log(`hub up at ${hub.url}`);
    const events = await watchEvents(wsUrl, apiKey);
    op = events.op;
    const isOurs = (e) => e.name === 'satellite:online' && e.payload?.name === name;

    const starts = [];
    let satId;
    for (let i = 0; i <= restarts; i++) {
      if (agent) await stopAgent(agent);
      agent = spawnAgent(agentBin, wsUrl, stateDir, name, nodeArgs, agentEnv);
      const failed = agent.exited.then((x) => {
        throw new Error(`agent exited (${x.code ?? x.signal}) before online:\n${agent.output.join('')}`);
      });
      const online = await withTimeout(Promise.race([events.waitEvent(isOurs, 30_000, 'satellite:online', agent.t0), failed]), 30_000, 'the agent online');
      failed.catch(() => {});
      satId = online.payload.id;
      starts.push({ ready_ms: Math.round(online.at - agent.t0), fresh_state: i === 0 });
      log(`start ${i + 1}/${restarts + 1}: online after ${Math.round(online.at - agent.t0)} ms${i === 0 ? ' (fresh state: key + silent pairing)' : ''}`);
    }
    const onlineAt = performance.now();
    const pid = agent.child.pid;

    // Settled: the status report sent on hello has reached the hub, and settleSeconds have passed.
    const report = await events.waitEvent((e) => e.name === 'satellite:metrics' && e.payload?.id === satId, 30_000, 'the first status report', agent.t0);
    const wait = settleSeconds * 1000 - (performance.now() - onlineAt);
    if (wait > 0) await sleep(wait);
    const settled = procStatus(pid);
    log(`settled: RSS ${r1(settled.rssKB / 1024)} MB (peak so far ${r1(settled.hwmKB / 1024)} MB)`);

    // Idle window.
    const samples = [];
    const cpu0 = cpuMsOf(pid);
    const t0 = performance.now();
    const end = t0 + idleSeconds * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(1000, end - performance.now()));
      if (agent.child.exitCode !== null) throw new Error(`agent exited during the idle window:\n${agent.output.join('')}`);
      samples.push(procStatus(pid).rssKB);
    }
    const cpuMs = cpuMsOf(pid) - cpu0;
    const wallMs = performance.now() - t0;
    const last = procStatus(pid);

    const result = {
      ready_ms: starts[0].ready_ms,
      restart_ready_ms: starts.length > 1 ? Math.round(median(starts.slice(1).map((s) => s.ready_ms))) : null,
      idle_rss_mb: r1(settled.rssKB / 1024),
      cpu_percent: r2((cpuMs / wallMs) * 100),
      peak_rss_mb: r1(last.hwmKB / 1024),
      rss_mb: {
        min: r1(Math.min(...samples) / 1024),
        median: r1(median(samples) / 1024),
        max: r1(Math.max(...samples) / 1024),
        end: r1(last.rssKB / 1024),
      },
      /** VmRSS once a second through the idle window, MB. */
      rss_samples_mb: samples.map((kb) => r1(kb / 1024)),
      rss_anon_mb: r1(last.anonKB / 1024),
      rss_file_mb: r1(last.fileKB / 1024),
      ...sharing(pid),
      threads: last.threads,
      agent_reported_rss_mb: report.payload?.metrics?.health?.memory_usage_mb ?? null,
      idle_cpu_ms: Math.round(cpuMs),
      idle_seconds: r1(wallMs / 1000),
      settle_seconds: settleSeconds,
      starts,
      node: process.version,
      node_args: nodeArgs,
      agent_env: agentEnv,
      load_avg: os.loadavg().map(r2),
      targets: AGENT_TARGETS,
    };
    result.pass = {
      idle_rss: result.idle_rss_mb < AGENT_TARGETS.idle_rss_mb,
      cpu: result.cpu_percent < AGENT_TARGETS.cpu_percent,
      ready: result.ready_ms < AGENT_TARGETS.ready_ms,
    };
    return result;
  } finally {
    if (agent) await stopAgent(agent);
    await op?.close().catch(() => {});
    if (hub && hub.child.exitCode === null) {
      hub.child.kill('SIGTERM');
      await Promise.race([new Promise((r) => hub.child.once('exit', r)), sleep(5_000)]);
    }
    killAll();
    process.removeListener('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseArgs(argv) {
  const o = { idleSeconds: 60, settleSeconds: 10, restarts: 2, nodeArgs: [], agentEnv: {}, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`);
      return v;
    };
    if (a === '--idle') o.idleSeconds = num();
    else if (a === '--settle') o.settleSeconds = num();
    else if (a === '--restarts') o.restarts = num();
    else if (a === '--json') o.json = true;
    else if (a === '--hub-bin') o.hubBin = path.resolve(argv[++i] ?? '');
    else if (a === '--agent-bin') o.agentBin = path.resolve(argv[++i] ?? '');
    else if (a.startsWith('--node-arg=')) o.nodeArgs.push(a.slice('--node-arg='.length));
    else if (a.startsWith('--agent-env=')) {
      const [k, ...v] = a.slice('--agent-env='.length).split('=');
      o.agentEnv[k] = v.join('=');
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'node bench/agent-footprint.js [--idle 60] [--settle 10] [--restarts 2] [--json] [--node-arg=FLAG …] [--agent-env=K=V …] [--hub-bin hive.js] [--agent-bin hive-agent.js]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`agent-footprint: ${err.message}\n`);
    process.exit(2);
  }
  const log = opts.json ? () => {} : (m) => process.stderr.write(`agent-footprint: ${m}\n`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));
  measureAgentFootprint({ ...opts, log }).then(
    (r) => {
      if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        const mark = (ok) => (ok ? 'ok' : 'OVER');
        process.stdout.write(
          [
            `ready          ${r.ready_ms} ms first start, ${r.restart_ready_ms ?? '-'} ms restart (target < ${AGENT_TARGETS.ready_ms} ms) ${mark(r.pass.ready)}`,
            `idle RSS       ${r.idle_rss_mb} MB after settling (target < ${AGENT_TARGETS.idle_rss_mb} MB) ${mark(r.pass.idle_rss)}; window min/median/max ${r.rss_mb.min}/${r.rss_mb.median}/${r.rss_mb.max} MB, peak ${r.peak_rss_mb} MB`,
            `idle CPU       ${r.cpu_percent} % over ${r.idle_seconds} s (target < ${AGENT_TARGETS.cpu_percent} %) ${mark(r.pass.cpu)}`,
            '',
          ].join('\n'),
        );
      }
      process.exit(r.pass.idle_rss && r.pass.cpu && r.pass.ready ? 0 : 1);
    },
    (err) => {
      process.stderr.write(`agent-footprint: ${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
