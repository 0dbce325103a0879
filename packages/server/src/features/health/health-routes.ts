import type { HiveApp } from '../../http/app.js';

export function registerHealthRoutes(
  app: HiveApp,
  deps: {
    ping: () => Promise<void>;
    isShuttingDown: () => boolean;
    version: string;
    stats: () => unknown;
    /** Scale-out: null when the cluster bus works, else why not (this instance is then not ready). */
    clusterProblem?: () => string | null;
  },
): void {
  app.get('/health', { config: { scope: 'public' } }, async () => ({ status: 'ok', version: deps.version }));
  app.get('/health/live', { config: { scope: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/health/ready', { config: { scope: 'public' } }, async (_req, reply) => {
    if (deps.isShuttingDown()) return reply.status(503).send({ status: 'shutting_down' });
    try {
      await deps.ping();
    } catch {
      return reply.status(503).send({ status: 'database_unavailable' });
    }
    const problem = deps.clusterProblem?.() ?? null;
    if (problem) return reply.status(503).send({ status: 'cluster_bus_unavailable', reason: problem });
    return { status: 'ready', ...(deps.stats() as object) };
  });
}
