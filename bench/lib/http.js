import http from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * A tiny REST client for the hub: node:http with a keep-alive Agent, so the load generator's
 * own cost stays small and the number of sockets it opens is bounded by `maxSockets`.
 */
export function createHubApi({ host, port, apiKey, maxSockets }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });

  /**
   * One request; never rejects. Resolves with { status, body, ms, error, firstByteMs, bytes }:
   * `firstByteMs` is when the response head arrived (the answer was ready and its first bytes
   * went out), `bytes` the body's size.
   */
  function request(method, path, body, timeoutMs = 60_000) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { 'x-api-key': apiKey, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const done = (r) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, ms: performance.now() - started });
      };
      // Whole-request deadline (queueing in the agent included), so every phase is bounded.
      const timer = setTimeout(() => {
        req.destroy(new Error('client timeout'));
        done({ status: 0, body: null, error: 'CLIENT_TIMEOUT' });
      }, timeoutMs);
      const req = http.request({ host, port, method, path, agent, headers }, (res) => {
        const firstByteMs = performance.now() - started;
        let bytes = 0;
        const chunks = [];
        res.on('data', (c) => {
          bytes += c.length;
          chunks.push(c);
        });
        res.on('end', () => {
          let parsed = null;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            /* not JSON */
          }
          done({ status: res.statusCode ?? 0, body: parsed, error: null, firstByteMs, bytes });
        });
        res.on('error', (err) => done({ status: 0, body: null, error: err.code ?? err.message }));
      });
      req.on('error', (err) => done({ status: 0, body: null, error: err.code ?? err.message }));
      req.end(payload);
    });
  }

  /**
   * `POST /api/v1/satellites/:id/exec`. ok = HTTP 200 with a succeeded job. `code` is the error
   * code (hub error code, HTTP status or socket error) otherwise.
   */
  async function exec(satelliteId, command = 'system.info', params = {}, timeoutMs = 60_000) {
    const r = await request('POST', `/api/v1/satellites/${encodeURIComponent(satelliteId)}/exec`, { command, params }, timeoutMs);
    const ok = r.status === 200 && r.body?.success === true && r.body.data?.state === 'succeeded';
    const code = ok ? null : (r.error ?? r.body?.error?.code ?? (r.body?.data?.state ? `state:${r.body.data.state}` : `HTTP_${r.status}`));
    return { ok, code, ms: r.ms, hubMs: typeof r.body?.data?.duration_ms === 'number' ? r.body.data.duration_ms : null };
  }

  return { request, exec, close: () => agent.destroy() };
}
