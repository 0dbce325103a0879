import { type Principal, requireScope } from '../lib/principal.js';
import type { HubServices } from '../main.js';
import type { HiveExecutor, McpBatch, McpJob, McpRunResult, McpSession } from './executor.js';

/**
 * The executor for the hub's own /mcp endpoint: calls the feature services directly with the
 * caller's principal (type `mcp`), so the services check scopes and audit as they do for REST.
 */
export function servicesExecutor(s: HubServices, p: Principal): HiveExecutor {
  return {
    transport: 'http',
    listSatellites: (q) => s.devices.listSatellites(p, q),
    getSatellite: (ref) => s.devices.getSatellite(p, ref),
    metrics: (ref, limit) => s.devices.statusHistory(p, ref, limit),
    exec: async (satellite, req) => (await s.commands.exec(p, { satellite, ...req, async: true })) as unknown as McpJob,
    execByTag: async (tag, req) => (await s.commands.execMany(p, { ...req, target: { tag }, async: true })) as unknown as McpBatch,
    getJob: async (id) => (await s.commands.get(p, id)) as unknown as McpJob,
    listJobs: async (q) => (await s.commands.list(p, q)) as unknown as { items: McpJob[]; total: number },
    listApprovals: (status) => s.approvals.list(p, status),
    resolveApproval: (id, decision, reason) => s.approvals.resolve(p, id, decision, reason),
    queryAudit: async (q) => {
      // audit.query has no scope check of its own (the REST route declares operator.admin)
      requireScope(p, 'operator.admin');
      return s.audit.query(q);
    },
    listPairing: (status) => s.devices.listPairing(p, status),
    resolvePairing: (id, decision) => (decision === 'approve' ? s.devices.approvePairing(p, id) : s.devices.rejectPairing(p, id)),
    vaultStatus: () => s.vault.status(),
    vaultListKeys: async () => {
      requireScope(p, 'operator.admin');
      return s.vault.listKeys(p);
    },
    createTask: (input) => s.tasks.create(p, input),
    getTask: (id) => s.tasks.get(p, id),
    taskOutput: (id, since, limit) => s.tasks.output(p, id, since, limit),
    listTasks: (q) => s.tasks.list(p, q),
    cancelTask: (id) => s.tasks.cancel(p, id),
    chat: (req) => s.chat.chat(p, req),
    listSessions: async (q) => {
      const { satellite, ...rest } = q;
      return (await s.sessions.list(p, satellite, rest)) as unknown as { items: McpSession[]; total: number };
    },
    getSession: async (id) => (await s.sessions.get(p, id)) as unknown as McpSession,
    sessionResult: async (id) => (await s.sessions.result(p, id)) as unknown as McpRunResult,
    sessionRecordingText: (id, q) => s.sessions.recordingText(p, id, q),
    closeSession: async (id) => (await s.sessions.close(p, id)) as unknown as McpSession,
    runSession: async ({ wait_seconds, ...req }) => (await s.sessions.run(p, { ...req, wait_ms: wait_seconds * 1000 })) as unknown as McpRunResult,
    audit: async (rec) => {
      s.audit.log({
        actor: p,
        action: `mcp.${rec.kind}`,
        target: { type: `mcp_${rec.kind}`, id: rec.name },
        details: { transport: 'http', ...(rec.args ? { args: rec.args } : {}) },
        result: rec.result,
        error: rec.error ? `${rec.error.code}: ${rec.error.message}` : undefined,
      });
    },
  };
}
