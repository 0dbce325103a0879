import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import type { AgentConfig } from '../config.js';
import { HiveError } from '../lib/protocol-lite.js';

/** A Docker Engine API client over the configured unix socket; dockerode is loaded on first use. */
export async function docker(cfg: AgentConfig['containers']): Promise<Docker> {
  if (!existsSync(cfg.socket)) {
    throw new HiveError('SERVICE_NOT_RUNNING', `No container engine on this satellite (no Docker socket at ${cfg.socket})`, {
      service: 'docker',
      socket: cfg.socket,
    });
  }
  const { default: Dockerode } = await import('dockerode');
  return new Dockerode({ socketPath: cfg.socket, timeout: 30_000 });
}

/** Engine errors → the catalog's codes. */
export function dockerError(err: unknown, what: string): HiveError {
  if (err instanceof HiveError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string; json?: { message?: string } };
  const msg = (e.json?.message ?? e.message ?? String(err)).slice(0, 512);
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET') {
    return new HiveError('SERVICE_NOT_RUNNING', `The container engine does not answer (${e.code})`, { service: 'docker' });
  }
  if (e.code === 'EACCES') return new HiveError('PERMISSION_DENIED', 'The agent user may not use the Docker socket');
  if (e.statusCode === 404) return new HiveError('CONTAINER_NOT_FOUND', `${what}: ${msg}`);
  if (e.statusCode === 409) return new HiveError('CONFLICT', `${what}: ${msg}`);
  if (e.statusCode === 400) return new HiveError('INVALID_PARAMETERS', `${what}: ${msg}`);
  return new HiveError('INTERNAL_ERROR', `${what}: ${msg}`);
}
