import os from 'node:os';
import type { SystemInfoResult } from '@hive/protocol';

export function systemInfo(agentVersion: string): SystemInfoResult {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    uptimeSeconds: Math.round(os.uptime()),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    loadAverage: os.loadavg(),
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    agent: { version: agentVersion, pid: process.pid, rssBytes: process.memoryUsage.rss(), uptimeSeconds: Math.round(process.uptime()) },
  };
}
