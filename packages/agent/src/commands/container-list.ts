import { existsSync } from 'node:fs';
import { get as httpGet } from 'node:http';
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

/**
 * Counts for status reports; null when there is no engine. The same request dockerode makes for
 * container.list (`GET /containers/json?all=true` on the socket, 30 s timeout), sent with node:http,
 * which the agent has loaded anyway: dockerode and its dependencies (~12 MB of RSS) load only when
 * an operator runs a container command, not every 30 s on an idle agent of a Docker host.
 */
export async function containerCounts(cfg: AgentConfig['containers']): Promise<{ total: number; running: number; stopped: number } | null> {
  if (!existsSync(cfg.socket)) return null;
  try {
    const all = (await engineGet(cfg.socket, '/containers/json?all=true', 30_000)) as { State?: unknown }[];
    const running = all.filter((c) => c.State === 'running').length;
    return { total: all.length, running, stopped: all.length - running };
  } catch {
    return null;
  }
}

/** GET on the Docker Engine API over its unix socket: the JSON body of a 200 answer, else an error. */
function engineGet(socketPath: string, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ socketPath, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`engine answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('engine timed out')));
    req.on('error', reject);
  });
}
