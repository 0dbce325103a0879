import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

/** The lines of `name`'s series (HELP/TYPE and samples) in exposition text, labels in name order, sorted. */
const series = (text: string, name: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}_`) || l.startsWith(`${name}{`) || l.includes(` ${name} `))
    .map((l) => l.replace(/\{(.*)\}/, (_, labels: string) => `{${labels.split(',').sort().join(',')}}`))
    .sort();

describe('metrics: command and API series are kept by key and handed to prom-client when scraped', () => {
  it('prints exactly what prom-client would print for the same observations (counters and histograms)', async () => {
    const m = createMetrics('hub_test', { satellitesTotal: async () => 0, satellitesOnline: () => 0, websocketConnections: () => 0 });
    // The same numbers through prom-client's own Counter and Histogram.
    const ref = new Registry();
    ref.setDefaultLabels({ instance: 'hub_test' });
    const commands = new Counter({
      name: 'hive_commands_total',
      help: 'Commands executed, by command and final state',
      labelNames: ['command', 'state'],
      registers: [ref],
    });
    const duration = new Histogram({
      name: 'hive_command_duration_seconds',
      help: 'Command execution time',
      labelNames: ['command'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [ref],
    });
    const requests = new Counter({
      name: 'hive_api_requests_total',
      help: 'API requests by endpoint',
      labelNames: ['method', 'route', 'status'],
      registers: [ref],
    });
    const apiDuration = new Histogram({
      name: 'hive_api_request_duration_seconds',
      help: 'API response time',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [ref],
    });
    const runs: [string, string, number | null][] = [
      ['system.info', 'succeeded', 3],
      ['system.info', 'succeeded', 10], // on a bucket bound: counted in le="0.01"
      ['system.info', 'failed', 40],
      ['system.run', 'timed_out', 400_000], // above every bound: only +Inf
      ['system.run', 'failed', null], // no duration (ended by a restart): counted, not observed
    ];
    const scrape = async () => {
      for (const [command, state, ms] of runs.splice(0)) {
        m.commandFinished(command, state, ms);
        commands.inc({ command, state });
        if (ms !== null) duration.observe({ command }, ms / 1000);
      }
      for (const [method, route, status, s] of [
        ['POST', '/api/v1/exec', 200, 0.0004],
        ['POST', '/api/v1/exec', 400, 0.02],
        ['GET', '/api/v1/satellites', 200, 3],
      ] as const) {
        m.apiRequest(method, route, status, s);
        requests.inc({ method, route, status: String(status) });
        apiDuration.observe({ method, route }, s);
      }
      return [await m.registry.metrics(), await ref.metrics()] as const;
    };
    let [ours, theirs] = await scrape();
    for (const name of ['hive_commands_total', 'hive_command_duration_seconds', 'hive_api_requests_total', 'hive_api_request_duration_seconds']) {
      expect(series(ours, name).length).toBeGreaterThan(2);
      expect(series(ours, name)).toEqual(series(theirs, name));
    }
    expect(series(ours, 'hive_command_duration_seconds')).toContain(
      'hive_command_duration_seconds_bucket{command="system.info",instance="hub_test",le="0.01"} 2',
    );
    expect(series(ours, 'hive_command_duration_seconds')).toContain('hive_command_duration_seconds_count{command="system.run",instance="hub_test"} 1');
    expect(series(ours, 'hive_commands_total')).toContain('hive_commands_total{command="system.run",instance="hub_test",state="failed"} 1');

    // A second scrape adds what came since, once (nothing counted twice).
    runs.push(['system.info', 'succeeded', 7]);
    [ours, theirs] = await scrape();
    for (const name of ['hive_commands_total', 'hive_command_duration_seconds', 'hive_api_requests_total', 'hive_api_request_duration_seconds'])
      expect(series(ours, name)).toEqual(series(theirs, name));
    expect(series(ours, 'hive_commands_total')).toContain('hive_commands_total{command="system.info",instance="hub_test",state="succeeded"} 3');
    expect(series(ours, 'hive_api_requests_total')).toContain('hive_api_requests_total{instance="hub_test",method="POST",route="/api/v1/exec",status="200"} 2');
  });
});
