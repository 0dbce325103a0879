import type { ContainerListParams, ContainerListResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { docker, dockerError } from './docker.js';

export async function containerList(params: ContainerListParams, cfg: AgentConfig['containers']): Promise<ContainerListResult> {
  const d = await docker(cfg);
  try {
    const all = await d.listContainers({ all: params.all });
    const running = all.filter((c) => c.State === 'running').length;
    return {
      containers: all.slice(0, params.limit).map((c) => ({
        id: c.Id.slice(0, 12),
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        image: c.Image,
        state: c.State,
        status: c.Status,
        created: new Date(c.Created * 1000).toISOString(),
        labels: Object.fromEntries(Object.entries(c.Labels ?? {}).slice(0, 32)),
      })),
      total: all.length,
      running,
      stopped: all.length - running,
    };
  } catch (err) {
    throw dockerError(err, 'list containers');
  }
}

/** Counts for status reports; null when there is no engine. */
export async function containerCounts(cfg: AgentConfig['containers']): Promise<{ total: number; running: number; stopped: number } | null> {
  try {
    const r = await containerList({ all: true, limit: 1 }, cfg);
    return { total: r.total, running: r.running, stopped: r.stopped };
  } catch {
    return null;
  }
}
