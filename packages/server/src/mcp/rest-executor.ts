import { HiveError, isErrorCode } from '@hive/protocol';
import type { HiveExecutor, McpBatch, McpJob, McpRunResult, McpSession } from './executor.js';

export interface RestTarget {
  /** Hub base URL, e.g. http://127.0.0.1:7420 */
  url: string;
  apiKey: string;
  /** Per-request timeout (default 120 s; chat and exec waits are done by polling). */
  requestTimeoutMs?: number;
  /** The fetch to use (the CLI passes one that pins the hub's TLS certificate). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

interface Envelope<T> {
  success: boolean;
  data: T;
  pagination?: { total: number };
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

const enc = encodeURIComponent;

function query(q: Record<string, string | number | boolean | undefined>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) s.set(k, String(v));
  const out = s.toString();
  return out ? `?${out}` : '';
}

/**
 * Sends one REST call as an MCP client: `X-Hive-Client: mcp` makes the hub treat the key's
 * principal as actor type `mcp`, so everything the services audit shows up as MCP.
 */
export async function hubRequest<T>(t: RestTarget, method: string, path: string, body?: unknown): Promise<Envelope<T>> {
  let res: Response;
  try {
    res = await (t.fetch ?? fetch)(`${t.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        'x-api-key': t.apiKey,
        'x-hive-client': 'mcp',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(t.requestTimeoutMs ?? 120_000),
    });
  } catch (err) {
    if (err instanceof HiveError) throw err; // e.g. TLS_FINGERPRINT_MISMATCH from a pinning fetch
    throw new HiveError('SERVICE_NOT_RUNNING', `Cannot reach the hub at ${t.url}: ${(err as Error).message}`);
  }
  let json: Envelope<T>;
  try {
    json = (await res.json()) as Envelope<T>;
  } catch {
    throw new HiveError('INTERNAL_ERROR', `Hub answered ${res.status} without a JSON body`);
  }
  if (!json.success) {
    const e = json.error ?? { code: 'INTERNAL_ERROR', message: `HTTP ${res.status}` };
    throw new HiveError(isErrorCode(e.code) ? e.code : 'INTERNAL_ERROR', e.message, e.details);
  }
  return json;
}

/** The executor of `hive mcp` (stdio): every tool is a call to the hub's REST API. */
export function restExecutor(t: RestTarget): HiveExecutor {
  const data = async <T>(method: string, path: string, body?: unknown): Promise<T> => (await hubRequest<T>(t, method, path, body)).data;
  const page = async (path: string): Promise<{ items: unknown[]; total: number }> => {
    const r = await hubRequest<unknown[]>(t, 'GET', path);
    return { items: r.data, total: r.pagination?.total ?? r.data.length };
  };
  return {
    transport: 'stdio',
    listSatellites: (q) => page(`/api/v1/satellites${query(q)}`),
    getSatellite: (ref) => data('GET', `/api/v1/satellites/${enc(ref)}`),
    metrics: (ref, limit) => data('GET', `/api/v1/satellites/${enc(ref)}/metrics${query({ limit })}`),
    exec: (satellite, req) => data<McpJob>('POST', `/api/v1/satellites/${enc(satellite)}/exec`, { ...req, async: true }),
    execByTag: (tag, req) => data<McpBatch>('POST', '/api/v1/exec', { ...req, target: { tag }, async: true }),
    getJob: (id) => data<McpJob>('GET', `/api/v1/commands/${enc(id)}`),
    listJobs: async (q) => {
      const r = await page(`/api/v1/commands${query(q)}`);
      return { items: r.items as McpJob[], total: r.total };
    },
    listApprovals: (status) => data('GET', `/api/v1/approvals${query({ status })}`),
    resolveApproval: (id, decision, reason) => data('POST', `/api/v1/approvals/${enc(id)}/${decision}`, reason ? { reason } : {}),
    queryAudit: (q) => page(`/api/v1/audit/logs${query(q)}`),
    listPairing: (status) => data('GET', `/api/v1/pairing${query({ status })}`),
    resolvePairing: (id, decision) => data('POST', `/api/v1/pairing/${enc(id)}/${decision}`),
    vaultStatus: () => data('GET', '/api/v1/vault/status'),
    vaultListKeys: () => data('GET', '/api/v1/vault/keys'),
    createTask: (input) => data('POST', '/api/v1/tasks', input),
    getTask: (id) => data('GET', `/api/v1/tasks/${enc(id)}`),
    taskOutput: (id, since, limit) => data('GET', `/api/v1/tasks/${enc(id)}/output${query({ since, limit })}`),
    listTasks: (q) => page(`/api/v1/tasks${query(q)}`),
    cancelTask: (id) => data('POST', `/api/v1/tasks/${enc(id)}/cancel`),
    chat: (req) => data('POST', '/api/v1/chat', { ...req, stream: false }),
    listSessions: async (q) => {
      const r = await page(`/api/v1/sessions${query(q)}`);
      return { items: r.items as McpSession[], total: r.total };
    },
    getSession: (id) => data<McpSession>('GET', `/api/v1/sessions/${enc(id)}`),
    sessionResult: (id) => data<McpRunResult>('GET', `/api/v1/sessions/${enc(id)}/output`),
    sessionRecordingText: (id, q) => data('GET', `/api/v1/sessions/${enc(id)}/recording${query({ format: 'text', ...q })}`),
    closeSession: (id) => data<McpSession>('DELETE', `/api/v1/sessions/${enc(id)}`),
    runSession: async ({ wait_seconds, ...req }) => {
      // One request waits at most ~100 s (below the request timeout); longer waits poll the output.
      const deadline = Date.now() + wait_seconds * 1000;
      const first = await data<McpRunResult>('POST', '/api/v1/sessions/run', { ...req, wait_seconds: Math.min(wait_seconds, 100) });
      let r = first;
      for (let delay = 250; r.session.status !== 'ended' && Date.now() < deadline; delay = Math.min(delay * 2, 2000)) {
        await new Promise((ok) => setTimeout(ok, Math.min(delay, Math.max(0, deadline - Date.now()))));
        r = await data<McpRunResult>('GET', `/api/v1/sessions/${enc(first.session.id)}/output`);
      }
      return r.session.status === 'pending_approval' && first.pending_approval ? { ...r, pending_approval: first.pending_approval } : r;
    },
    audit: async (rec) => {
      try {
        await hubRequest(t, 'POST', '/mcp/audit', rec);
      } catch {
        /* the audit report is best effort; the REST calls themselves are audited by the hub */
      }
    },
  };
}
