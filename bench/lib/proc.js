import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

/**
 * A fixed single-threaded workload of the hub's kind (JSON both ways, SHA-256, short-lived
 * objects), best of 5, in ms. The same code takes very different times on different days on a
 * shared machine: comparing runs is only fair next to this figure (and the bare relay's).
 */
export function cpuCalibrationMs() {
  const base = { type: 'req', method: 'invoke', params: { command: 'system.info', params: {}, target: 'dev_0123456789abcdef', issuedAt: 0 } };
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const text = JSON.stringify({ ...base, id: `h${i}`, seq: i });
      sink += JSON.parse(text).seq + createHash('sha256').update(text).digest()[0];
    }
    best = Math.min(best, performance.now() - t0);
  }
  if (sink < 0) throw new Error('unreachable');
  return Math.round(best * 10) / 10;
}

/** VmRSS / VmHWM of a process in KB, from /proc/<pid>/status (Linux). */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) : null;
  };
  return { rssKB: field('VmRSS'), hwmKB: field('VmHWM') };
}

/** Open-file limit (soft) that children inherit, from /proc/self/limits; null when unknown. */
export function openFileLimit() {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)\s+/m.exec(limits);
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}

/** Size of the ephemeral port range (bounds the client sockets to one destination). */
export function ephemeralPorts() {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi - lo + 1;
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemMB: Math.round(os.totalmem() / 1024 / 1024),
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    node: process.version,
    openFileLimit: openFileLimit(),
    /** 1/5/15-minute load averages when the bench started: other work on the machine skews every figure. */
    loadAvgAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    /** cpuCalibrationMs() when the bench started (see there); compare runs of different days by it. */
    calibrationMsAtStart: cpuCalibrationMs(),
    date: new Date().toISOString(),
  };
}

/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every mainstream Linux build (`getconf CLK_TCK`). */
const CLOCK_TICKS = 100;

/**
 * CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. With
 * `withChildren`, also the CPU of its children that have ended and been waited for.
 */
export function cpuMsOf(pid, withChildren = false) {
  const rest = statFields(`/proc/${pid}/stat`);
  const own = Number(rest[11]) + Number(rest[12]);
  const children = withChildren ? Number(rest[13]) + Number(rest[14]) : 0;
  return ((own + children) * 1000) / CLOCK_TICKS;
}

/** The fields of a `stat` file after the parenthesised command name (which may contain spaces). */
function statFields(file) {
  const stat = readFileSync(file, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * CPU time (ms) of one thread of process `pid`: its main thread when `tid` is omitted (a Node
 * process's main thread has the process's id). The hub's event loop is the fan-out's critical
 * path; its worker threads (SQLite writer, GC helpers) run beside it on the other core.
 */
export function threadCpuMsOf(pid, tid = pid) {
  const rest = statFields(`/proc/${pid}/task/${tid}/stat`);
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS;
}

/**
 * Waits until process `pid` (null: the machine) has used less than `maxShare` of one CPU (of all) over the last `windowMs`
 * (sampled every `windowMs / 4`), at most `timeoutMs`. Returns { ms, quiet, lastShare }.
 */
export async function waitQuiet(pid, { maxShare = 0.2, windowMs = 1000, timeoutMs = 60_000 } = {}) {
  // pid null: the whole machine, as a share of all its CPUs.
  const busy = pid === null ? () => machineBusyMs() / os.cpus().length : () => cpuMsOf(pid);
  const t0 = performance.now();
  const step = windowMs / 4;
  const samples = [{ t: t0, cpu: busy() }];
  let share = 1;
  while (performance.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, step));
    const now = { t: performance.now(), cpu: busy() };
    samples.push(now);
    while (samples.length > 1 && now.t - samples[1].t >= windowMs) samples.shift();
    const first = samples[0];
    if (now.t - first.t >= windowMs) {
      share = (now.cpu - first.cpu) / (now.t - first.t);
      if (share < maxShare) return { ms: Math.round(now.t - t0), quiet: true, lastShare: Math.round(share * 100) / 100 };
    }
  }
  return { ms: Math.round(performance.now() - t0), quiet: false, lastShare: Math.round(share * 100) / 100 };
}

/** The machine's CPU time so far by kind (all CPUs, /proc/stat's first line), in ms. */
function machineCpuMs() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields.map((t) => (t * 1000) / CLOCK_TICKS);
  return { busy: user + nice + system + irq + softirq + steal, steal };
}

/** CPU time the whole machine has spent busy (all CPUs, everything but idle and iowait), in ms. */
export function machineBusyMs() {
  return machineCpuMs().busy;
}

/**
 * CPU time the hypervisor gave to someone else while this machine wanted it (all CPUs, "steal" in
 * /proc/stat), in ms. Counted in machineBusyMs too; on a shared host it is what makes runs of one
 * day differ (here up to a sixth of the bench's CPU time).
 */
export function machineStealMs() {
  return machineCpuMs().steal;
}

/** Machine-wide TCP counters from /proc/net/netstat (TcpExt), e.g. TCPSynRetrans; {} when unreadable. */
export function tcpExt() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i].split(/\s+/).slice(1);
    const values = lines[i + 1].split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((n, k) => [n, values[k]]));
  } catch {
    return {};
  }
}
