import type { StatusReport } from '@hive/protocol';
import type { HiveClient } from '@hive/sdk';
import { containerCounts } from './commands/container-list.js';
import type { AgentLog } from './commands/index.js';
import { cpuPercent, disks, loadAverage, memory } from './commands/system-metrics.js';
import { HiveError } from './lib/protocol-lite.js';
import { isoTimestamp } from './lib/time.js';
import type { Policy } from './policy.js';

const r1 = (n: number) => Math.round(n * 10) / 10;

/** CPU % of this process between calls. */
function agentCpuMeter(): () => number {
  let lastUsage = process.cpuUsage();
  let lastAt = process.hrtime.bigint();
  return () => {
    const usage = process.cpuUsage(lastUsage);
    const now = process.hrtime.bigint();
    const elapsedUs = Number(now - lastAt) / 1000;
    lastUsage = process.cpuUsage();
    lastAt = now;
    return elapsedUs > 0 ? r1(((usage.user + usage.system) / elapsedUs) * 100) : 0;
  };
}

/** One seed-004 status report: `health` is the agent process, `system` the machine. */
export async function buildStatusReport(policy: Policy, agentCpu: () => number = agentCpuMeter()): Promise<StatusReport> {
  const cfg = policy.config;
  const [cpu, mem, ds, services, containers] = await Promise.all([
    cpuPercent(),
    memory(),
    disks(),
    // service-status runs systemctl: child_process is loaded only when there are units to watch.
    cfg.services.watch.length ? import('./commands/service-status.js').then((m) => m.watchedServiceStates(cfg.services.watch)) : Promise.resolve({}),
    cfg.policy.allow_containers ? containerCounts(cfg.containers) : Promise.resolve(null),
  ]);
  const disk = ds.find((d) => d.mount === '/') ?? [...ds].sort((a, b) => b.usagePercent - a.usagePercent)[0];
  const diskPct = disk?.usagePercent ?? 0;
  const worst = Math.max(mem.usagePercent, diskPct);
  return {
    timestamp: isoTimestamp(),
    health: {
      status: worst >= 97 ? 'unhealthy' : worst >= 90 ? 'degraded' : 'healthy',
      uptime_seconds: Math.round(process.uptime()),
      memory_usage_mb: r1(process.memoryUsage.rss() / 1024 / 1024),
      cpu_usage_percent: agentCpu(),
    },
    system: { cpu_percent: cpu, memory_percent: mem.usagePercent, disk_usage_percent: diskPct, load_average: loadAverage() },
    services,
    containers,
    sessions: { active: 0, total_today: 0 },
  };
}

/**
 * Sends `node.status` once after each hello and then every `status_interval_seconds`. A hub that
 * does not serve the method yet (UNKNOWN_METHOD) or a failed send is logged at debug level only.
 */
export function startStatusReports(client: HiveClient, policy: Policy, log: AgentLog): { stop(): void; sendNow(): Promise<void> } {
  const intervalMs = policy.config.status_interval_seconds * 1000;
  const agentCpu = agentCpuMeter();
  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  const sendNow = async () => {
    if (busy || !client.connected) return;
    busy = true;
    try {
      const report = await buildStatusReport(policy, agentCpu);
      await client.request('node.status', report, 10_000);
      log('debug', 'status report sent', { health: report.health.status });
    } catch (err) {
      const code = err instanceof HiveError ? err.code : 'INTERNAL_ERROR';
      log('debug', code === 'UNKNOWN_METHOD' ? 'hub does not take status reports yet' : 'status report not sent', { code, error: (err as Error).message });
    } finally {
      busy = false;
    }
  };
  const onHello = () => {
    if (timer) clearInterval(timer);
    timer = setInterval(() => void sendNow(), intervalMs);
    timer.unref();
    void sendNow();
  };
  const onDisconnected = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  client.on('hello', onHello);
  client.on('disconnected', onDisconnected);
  return {
    sendNow,
    stop() {
      onDisconnected();
      client.off('hello', onHello);
      client.off('disconnected', onDisconnected);
    },
  };
}
