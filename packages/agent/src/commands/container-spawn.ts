import { type ContainerSpawnParams, type ContainerSpawnResult, HiveError } from '@hive/protocol';
import type { AgentConfig } from '../config.js';
import { docker, dockerError } from './docker.js';

/**
 * `container.spawn`: create and start a container from an allowed image. Never privileged, no
 * host mounts, no host network, all capabilities beyond Docker's defaults withheld; labelled
 * `hive.managed=true`. At most `containers.max_containers` running.
 */
export async function containerSpawn(params: ContainerSpawnParams, cfg: AgentConfig['containers']): Promise<ContainerSpawnResult> {
  if (cfg.allowed_images.length > 0 && !cfg.allowed_images.some((p) => params.image.startsWith(p))) {
    throw new HiveError('PERMISSION_DENIED', `Image ${params.image} is not in this satellite's containers.allowed_images`);
  }
  const d = await docker(cfg);
  try {
    const running = await d.listContainers({ all: false });
    if (running.length >= cfg.max_containers) {
      throw new HiveError('INSUFFICIENT_RESOURCES', `${running.length} containers already run (containers.max_containers: ${cfg.max_containers})`);
    }
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostPort: string }[]> = {};
    for (const p of params.ports ?? []) {
      const key = `${p.container}/${p.protocol}`;
      exposed[key] = {};
      if (p.host) bindings[key] = [{ HostPort: String(p.host) }];
    }
    const container = await d.createContainer({
      Image: params.image,
      ...(params.name ? { name: params.name } : {}),
      ...(params.cmd ? { Cmd: params.cmd } : {}),
      Env: Object.entries(params.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: { ...(params.labels ?? {}), 'hive.managed': 'true' },
      ExposedPorts: exposed,
      HostConfig: {
        Privileged: false,
        PortBindings: bindings,
        AutoRemove: params.autoRemove,
        SecurityOpt: ['no-new-privileges'],
        ...(params.memoryMb ? { Memory: params.memoryMb * 1024 * 1024 } : {}),
        ...(params.cpus ? { NanoCpus: Math.round(params.cpus * 1e9) } : {}),
      },
    });
    await container.start();
    const info = await container.inspect();
    return { id: info.Id.slice(0, 12), name: info.Name.replace(/^\//, ''), image: params.image, state: info.State.Status };
  } catch (err) {
    throw dockerError(err, `spawn ${params.image}`);
  }
}
