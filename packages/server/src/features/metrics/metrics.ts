import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricsSources {
  satellitesTotal: () => Promise<number>;
  satellitesOnline: () => number;
  websocketConnections: () => number;
  sessionsActive?: () => number;
}

/**
 * Prometheus metrics of seed 003 §11.2 (`hive_*`) plus process metrics, labelled by instance.
 * Gauges are read from their source at scrape time; counters and histograms are fed by the edges.
 */
export function createMetrics(instance: string, sources: MetricsSources) {
  const registry = new Registry();
  registry.setDefaultLabels({ instance });
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'hive_satellites_total',
    help: 'Registered satellites',
    registers: [registry],
    async collect() {
      this.set(await sources.satellitesTotal());
    },
  });
  new Gauge({
    name: 'hive_satellites_online',
    help: 'Satellites connected to this instance',
    registers: [registry],
    collect() {
      this.set(sources.satellitesOnline());
    },
  });
  new Gauge({
    name: 'hive_sessions_active',
    help: 'Active terminal sessions',
    registers: [registry],
    collect() {
      this.set(sources.sessionsActive?.() ?? 0);
    },
  });
  new Gauge({
    name: 'hive_websocket_connections',
    help: 'Open WebSocket connections (nodes and operators)',
    registers: [registry],
    collect() {
      this.set(sources.websocketConnections());
    },
  });
  const commands = new Counter({
    name: 'hive_commands_total',
    help: 'Commands executed, by command and final state',
    labelNames: ['command', 'state'],
    registers: [registry],
  });
  const commandDuration = new Histogram({
    name: 'hive_command_duration_seconds',
    help: 'Command execution time',
    labelNames: ['command'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const apiRequests = new Counter({
    name: 'hive_api_requests_total',
    help: 'API requests by endpoint',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const apiDuration = new Histogram({
    name: 'hive_api_request_duration_seconds',
    help: 'API response time',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    commandFinished(command: string, state: string, durationMs: number | null): void {
      commands.inc({ command, state });
      if (durationMs !== null) commandDuration.observe({ command }, durationMs / 1000);
    },
    apiRequest(method: string, route: string, status: number, seconds: number): void {
      apiRequests.inc({ method, route, status: String(status) });
      apiDuration.observe({ method, route }, seconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
