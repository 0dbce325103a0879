import type { ContainerStopParams, ContainerStopResult } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { docker, dockerError } from './docker.js';

export async function containerStop(params: ContainerStopParams, cfg: AgentConfig['containers']): Promise<ContainerStopResult> {
  const d = await docker(cfg);
  try {
    const c = d.getContainer(params.id);
    const info = await c.inspect();
    const wasRunning = info.State.Running;
    if (wasRunning) await c.stop({ t: params.timeoutSeconds });
    let removed = false;
    if (params.remove && !info.HostConfig.AutoRemove) {
      await c.remove({ force: false });
      removed = true;
    }
    return { id: info.Id.slice(0, 12), wasRunning, stopped: true, removed: removed || (wasRunning && !!info.HostConfig.AutoRemove) };
  } catch (err) {
    throw dockerError(err, `stop ${params.id}`);
  }
}
