import { closeSync, openSync, readSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { SystemMetricsResult } from '@hive/protocol';

/**
 * Machine metrics from the kernel's own tables (/proc) and node:os: no child processes, no
 * heavy modules, a few milliseconds per call. Outside Linux only CPU, load and memory are known.
 */

interface CpuSnapshot {
  at: number;
  busy: number;
  total: number;
}

function cpuSnapshot(): CpuSnapshot {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { at: Date.now(), busy, total };
}

let lastCpu: CpuSnapshot | undefined;

/**
 * Reads a /proc file through one buffer kept for the process. fs.readFile allocates 64 KB for
 * each file that reports size 0 (all of /proc): the status report every 30 s left two such
 * buffers behind, off the V8 heap, until the next scavenge (an idle agent's RSS climbed ~2 MB
 * between collections). /proc files are generated from kernel memory: read synchronously, in
 * microseconds, without the libuv thread pool. Throws as readFile does (ENOENT outside Linux).
 */
let procBuf = Buffer.allocUnsafe(16 * 1024);
export function readProcFile(file: string): string {
  const fd = openSync(file, 'r');
  try {
    let n = 0;
    for (;;) {
      if (n === procBuf.length) {
        const bigger = Buffer.allocUnsafe(procBuf.length * 2);
        procBuf.copy(bigger, 0, 0, n);
        procBuf = bigger;
      }
      const got = readSync(fd, procBuf, n, procBuf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return procBuf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;
const pct = (part: number, whole: number) => (whole > 0 ? Math.min(100, Math.max(0, round1((part / whole) * 100))) : 0);

/** CPU busy % since the previous call; the first call (or one right after another) samples for 200 ms. */
export async function cpuPercent(): Promise<number> {
  let prev = lastCpu;
  let cur = cpuSnapshot();
  if (!prev || cur.at - prev.at < 100 || cur.total <= prev.total) {
    prev = cur;
    await new Promise((r) => setTimeout(r, 200));
    cur = cpuSnapshot();
  }
  lastCpu = cur;
  return pct(cur.busy - prev.busy, cur.total - prev.total);
}

export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = os.loadavg();
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return [r2(a), r2(b), r2(c)];
}

export async function memory(): Promise<SystemMetricsResult['memory']> {
  const total = os.totalmem();
  let available = os.freemem();
  let swapTotal = 0;
  let swapFree = 0;
  try {
    const info = readProcFile('/proc/meminfo');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    available = kb('MemAvailable') ?? available;
    swapTotal = kb('SwapTotal') ?? 0;
    swapFree = kb('SwapFree') ?? 0;
  } catch {
    /* not Linux */
  }
  const used = total - available;
  return {
    totalBytes: total,
    usedBytes: used,
    availableBytes: available,
    usagePercent: pct(used, total),
    swapTotalBytes: swapTotal,
    swapUsedBytes: swapTotal - swapFree,
  };
}

const PSEUDO_FS = new Set([
  'proc',
  'sysfs',
  'devtmpfs',
  'devpts',
  'tmpfs',
  'ramfs',
  'cgroup',
  'cgroup2',
  'securityfs',
  'pstore',
  'bpf',
  'debugfs',
  'tracefs',
  'mqueue',
  'hugetlbfs',
  'configfs',
  'fusectl',
  'autofs',
  'binfmt_misc',
  'rpc_pipefs',
  'squashfs',
  'nsfs',
  'efivarfs',
  'selinuxfs',
  'overlay',
]);

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

/** Usage of every real file system (one row per device), like `df -l`. */
export async function disks(): Promise<SystemMetricsResult['disks']> {
  let rows: { device: string; mount: string; fsType: string }[] = [];
  try {
    const seen = new Set<string>();
    for (const line of readProcFile('/proc/mounts').split('\n')) {
      const [device, mount, fsType] = line.split(' ');
      if (!device || !mount || !fsType || PSEUDO_FS.has(fsType) || seen.has(device)) continue;
      seen.add(device);
      rows.push({ device: unescapeMount(device), mount: unescapeMount(mount), fsType });
    }
  } catch {
    rows = [{ device: 'root', mount: '/', fsType: 'unknown' }];
  }
  const out: SystemMetricsResult['disks'] = [];
  for (const r of rows.slice(0, 64)) {
    // A hung network mount must not hang the report.
    const s = await withTimeout(
      statfs(r.mount).catch(() => undefined),
      1000,
    );
    if (!s || s.blocks === 0) continue;
    const total = s.blocks * s.bsize;
    const available = s.bavail * s.bsize;
    const used = (s.blocks - s.bfree) * s.bsize;
    out.push({ ...r, totalBytes: total, usedBytes: used, availableBytes: available, usagePercent: pct(used, used + available) });
  }
  return out;
}

/** Bytes and errors per interface since boot. */
export async function network(): Promise<SystemMetricsResult['network']> {
  try {
    const lines = readProcFile('/proc/net/dev').split('\n').slice(2);
    const out: SystemMetricsResult['network'] = [];
    for (const line of lines) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
      if (!m?.[1] || !m[2]) continue;
      const f = m[2].trim().split(/\s+/).map(Number);
      out.push({ iface: m[1], rxBytes: f[0] ?? 0, rxErrors: f[2] ?? 0, txBytes: f[8] ?? 0, txErrors: f[10] ?? 0 });
    }
    return out.slice(0, 256);
  } catch {
    return [];
  }
}

export async function systemMetrics(): Promise<SystemMetricsResult> {
  const [cpu, mem, d, net] = await Promise.all([cpuPercent(), memory(), disks(), network()]);
  return {
    timestamp: new Date().toISOString(),
    cpu: { usagePercent: cpu, cores: os.cpus().length, loadAverage: loadAverage() },
    memory: mem,
    disks: d,
    network: net,
  };
}
