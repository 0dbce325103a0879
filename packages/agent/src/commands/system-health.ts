import os from 'node:os';
import type { SystemHealthResult } from '@hive/protocol';
import { systemMetrics } from './system-metrics.js';

const GB = 1024 ** 3;
const MB = 1024 ** 2;
const r1 = (n: number) => Math.round(n * 10) / 10;

type Check = SystemHealthResult['checks'][number];

/** Thresholds: warn at 90 %, critical at 97 % (memory, disk); load per core warn at 2, critical at 4. */
function level(value: number, warn: number, critical: number): Check['status'] {
  return value >= critical ? 'critical' : value >= warn ? 'warn' : 'ok';
}

/** Seed 004 §4.1 `get_system_health`: the numbers plus a verdict the checks explain. */
export async function systemHealth(): Promise<SystemHealthResult> {
  const m = await systemMetrics();
  const fullest = [...m.disks].sort((a, b) => b.usagePercent - a.usagePercent)[0];
  const root = m.disks.find((d) => d.mount === '/');
  const disk = fullest ?? root;
  const perCore = (m.cpu.loadAverage[0] ?? 0) / Math.max(1, m.cpu.cores);
  const checks: Check[] = [
    { name: 'memory', status: level(m.memory.usagePercent, 90, 97), message: `${m.memory.usagePercent}% of memory in use` },
    {
      name: 'disk',
      status: disk ? level(disk.usagePercent, 90, 97) : 'ok',
      message: disk ? `${disk.mount} is ${disk.usagePercent}% full` : 'no file system information',
    },
    { name: 'load', status: level(perCore, 2, 4), message: `load ${m.cpu.loadAverage[0]} on ${m.cpu.cores} cores` },
  ];
  if (m.memory.swapTotalBytes > 0) {
    const swapPct = (m.memory.swapUsedBytes / m.memory.swapTotalBytes) * 100;
    checks.push({ name: 'swap', status: level(swapPct, 80, 95), message: `${r1(swapPct)}% of swap in use` });
  }
  const status = checks.some((c) => c.status === 'critical') ? 'unhealthy' : checks.some((c) => c.status === 'warn') ? 'degraded' : 'healthy';
  const ifaces = m.network.filter((n) => n.iface !== 'lo');
  return {
    status,
    uptimeSeconds: Math.round(os.uptime()),
    cpu: { usagePercent: m.cpu.usagePercent, loadAverage: m.cpu.loadAverage, cores: m.cpu.cores },
    memory: {
      totalMb: Math.round(m.memory.totalBytes / MB),
      usedMb: Math.round(m.memory.usedBytes / MB),
      availableMb: Math.round(m.memory.availableBytes / MB),
      usagePercent: m.memory.usagePercent,
    },
    disk: {
      mount: disk?.mount ?? '/',
      totalGb: r1((disk?.totalBytes ?? 0) / GB),
      usedGb: r1((disk?.usedBytes ?? 0) / GB),
      availableGb: r1((disk?.availableBytes ?? 0) / GB),
      usagePercent: disk?.usagePercent ?? 0,
    },
    network: {
      interfaces: ifaces.map((n) => n.iface),
      bytesSent: ifaces.reduce((s, n) => s + n.txBytes, 0),
      bytesReceived: ifaces.reduce((s, n) => s + n.rxBytes, 0),
    },
    checks,
  };
}
