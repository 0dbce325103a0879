import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import type { ProcessListParams, ProcessListResult } from '@hive/protocol';

type Proc = ProcessListResult['processes'][number];

/** Kernel clock ticks per second (USER_HZ); 100 on every mainstream Linux build. */
const CLK_TCK = 100;
const SAMPLE_MS = 250;

async function cpuTicks(pid: string): Promise<{ ticks: number; ppid: number; state: string; comm: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return { state: f[0] ?? '?', ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), comm };
  } catch {
    return undefined; // exited meanwhile
  }
}

async function userNames(): Promise<Map<number, string>> {
  const map = new Map<number, string>();
  try {
    for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
      const [name, , uid] = line.split(':');
      if (name && uid) map.set(Number(uid), name);
    }
  } catch {
    /* no passwd: numeric ids */
  }
  return map;
}

const STATES: Record<string, string> = { R: 'running', S: 'sleeping', D: 'disk-sleep', Z: 'zombie', T: 'stopped', t: 'traced', I: 'idle', X: 'dead' };

/** Linux: /proc sampled twice, SAMPLE_MS apart (CPU % like top: 100 = one full core). No child processes. */
async function fromProc(params: ProcessListParams): Promise<ProcessListResult> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  const first = new Map<string, number>();
  await Promise.all(pids.map(async (pid) => first.set(pid, (await cpuTicks(pid))?.ticks ?? Number.NaN)));
  await new Promise((r) => setTimeout(r, SAMPLE_MS));
  const users = await userNames();
  const total = os.totalmem();
  const procs: Proc[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      const now = await cpuTicks(pid);
      if (!now) return;
      const before = first.get(pid);
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0+$/, '').replace(/\0/g, ' ');
      const dTicks = before === undefined || Number.isNaN(before) ? 0 : Math.max(0, now.ticks - before);
      procs.push({
        pid: Number(pid),
        ppid: now.ppid,
        name: now.comm.slice(0, 256),
        user: users.get(uid) ?? String(uid),
        state: STATES[now.state] ?? now.state,
        cpuPercent: Math.round((dTicks / CLK_TCK / (SAMPLE_MS / 1000)) * 1000) / 10,
        memPercent: Math.round(((rssKb * 1024) / total) * 10000) / 100,
        rssBytes: rssKb * 1024,
        command: (cmdline || `[${now.comm}]`).slice(0, 512),
      });
    }),
  );
  return { total: procs.length, processes: sortTop(procs, params) };
}

function sortTop(procs: Proc[], params: ProcessListParams): Proc[] {
  const key = params.sort === 'mem' ? 'rssBytes' : 'cpuPercent';
  return procs.sort((a, b) => b[key] - a[key] || b.rssBytes - a.rssBytes || a.pid - b.pid).slice(0, params.limit);
}

/** Elsewhere: systeminformation, loaded on first use. */
async function fromSysteminformation(params: ProcessListParams): Promise<ProcessListResult> {
  const si = await import('systeminformation');
  const data = await si.processes();
  const r2 = (n: number) => Math.round((n ?? 0) * 100) / 100;
  const procs = data.list.map((p) => ({
    pid: p.pid,
    ppid: p.parentPid ?? 0,
    name: String(p.name ?? '').slice(0, 256),
    user: String(p.user ?? ''),
    state: String(p.state ?? ''),
    cpuPercent: r2(p.cpu),
    memPercent: r2(p.mem),
    rssBytes: (p.memRss ?? 0) * 1024,
    command: `${p.command ?? ''}${p.params ? ` ${p.params}` : ''}`.slice(0, 512),
  }));
  return { total: data.all ?? procs.length, processes: sortTop(procs, params) };
}

/** `process.list`: top N processes by CPU or memory. */
export async function processList(params: ProcessListParams): Promise<ProcessListResult> {
  return os.platform() === 'linux' ? fromProc(params) : fromSysteminformation(params);
}
