import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { StreamEndpoint } from '@hive/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, HIVE_BIN, operator, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

type Op = Awaited<ReturnType<typeof operator>>;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Runs `hive …` and lets the test react to its stderr while it runs. */
function hiveLive(args: string[], env: Record<string, string>) {
  const p = spawn(process.execPath, [HIVE_BIN, ...args], {
    env: { ...process.env, XDG_CONFIG_HOME: tempDir('hive-cli-'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  p.stdout?.on('data', (d) => {
    stdout += d;
  });
  p.stderr?.on('data', (d) => {
    stderr += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  return {
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    stderrMatch(re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(stderr);
          if (!m) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`stderr never matched ${re}: ${stderr}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
  };
}

describe('approval waiting: session.open and file.write wait for a person instead of refusing', () => {
  let t: TestHub;
  let agent: AgentProc;
  let satId: string;
  let requester: Op;
  let approver: Op;
  let requesterKey: string;
  let approverKey: string;
  let files: string;
  let local: string;

  beforeAll(async () => {
    // session.open needs approval by rule; file.write needs it by default (approvals.require).
    t = await startHub({ overrides: { approvals: { rules: [{ command: 'session.open', require: true }] } } });
    files = path.join(t.dataDir, 'files');
    local = path.join(t.dataDir, 'local');
    mkdirSync(files);
    mkdirSync(local);
    const cfg = path.join(t.dataDir, 'agent.json');
    writeFileSync(cfg, JSON.stringify({ policy: { allowed_paths: [files], allow_file_write: true } }));
    // The requester may act but not decide approvals (a project member); the approver is the administrator.
    requesterKey = (await t.hub.services.auth.createApiKey('requester', ['operator.read', 'operator.write'])).key;
    approverKey = t.adminKey;
    requester = await operator(t, requesterKey);
    approver = await operator(t, approverKey);
    agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'agent'), ['--name', 'gated', '--config', cfg], { SHELL: '/bin/sh' });
    satId = (await approver.waitEvent('satellite:online', (p) => p.slug?.startsWith('gated'))).id;
  });
  afterAll(async () => {
    await requester?.close();
    await approver?.close();
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('WS session.open waits: the requester is told the approval id, a second operator approves over REST, the shell opens', async () => {
    const pendingEvent = requester.waitEvent('session:pending_approval', (p) => p.satellite === satId);
    const opening = requester.request<{ session: any; attach: { stream_id: number } }>('session.open', { satellite: satId, cols: 80, rows: 24 }, 60_000);
    const pending = await pendingEvent;
    const requested = await approver.waitEvent('approval.requested', (p) => p.id === pending.approval_id);
    expect(requested).toMatchObject({
      command: 'session.open',
      satellite_id: satId,
      requested_by: 'api_key:requester',
      reason: 'policy rule for session.open',
    });
    // While it waits the session exists, in state pending_approval, tied to the approval.
    const waiting = (await t.api('GET', `/api/v1/sessions/${requested.job_id}`)).body.data;
    expect(waiting).toMatchObject({ status: 'pending_approval', approval_id: pending.approval_id, satellite_id: satId });
    // The requester cannot approve its own request (no operator.approvals).
    const self = await t.api('POST', `/api/v1/approvals/${pending.approval_id}/approve`, {}, requesterKey);
    expect(self.body.error.code).toBe('FORBIDDEN');
    const ok = await t.api('POST', `/api/v1/approvals/${pending.approval_id}/approve`, { reason: 'go ahead' }, approverKey);
    expect(ok.body.data.status).toBe('approved');
    const opened = await opening;
    expect(opened.session).toMatchObject({ id: requested.job_id, status: 'active', approval_id: pending.approval_id });
    let out = '';
    const done = new Promise<string>((resolve) => {
      const stream: StreamEndpoint = requester.acceptStream(opened.attach.stream_id, {
        onData: (c) => {
          out += Buffer.from(c).toString('utf8');
          if (out.includes('approved-42')) stream.write(Buffer.from('exit 4\n'));
        },
        onClose: ({ reason }) => resolve(reason),
      });
      stream.write(Buffer.from('echo approved-$((40+2))\n'));
    });
    expect(await done).toBe('exit:4');
    const audit = (await t.api('GET', `/api/v1/audit/logs?action=session.opened&target_id=${opened.session.id}`)).body.data[0];
    expect(audit.details).toMatchObject({ approval_id: pending.approval_id });
  });

  it('a denial refuses the open with APPROVAL_DENIED and the reason; nothing runs on the satellite', async () => {
    const opening = t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'touch should-not-exist' }, requesterKey);
    const req = await approver.waitEvent(
      'approval.requested',
      (p) => p.command === 'session.open' && p.status === 'pending' && p.params.command === 'touch should-not-exist',
    );
    await approver.request('approval.resolve', { id: req.id, decision: 'deny', reason: 'not on prod' });
    const res = await opening;
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('APPROVAL_DENIED');
    expect(res.body.error.message).toContain('denied by api_key:admin: not on prod');
    expect(res.body.error.details).toMatchObject({ approval_id: req.id, session_id: req.job_id, status: 'denied' });
    const row = (await t.api('GET', `/api/v1/sessions/${req.job_id}`)).body.data;
    expect(row).toMatchObject({ status: 'ended', end_reason: 'approval_denied', pid: null, started_at: null });
    const refused = (await t.api('GET', `/api/v1/audit/logs?action=session.refused&target_id=${req.job_id}`)).body.data[0];
    expect(refused).toMatchObject({ result: 'failure', details: { approval_id: req.id, decision: 'denied' } });
  });

  it('a requester that goes away withdraws its approval', async () => {
    const leaving = await operator(t, requesterKey);
    const pendingEvent = leaving.waitEvent('session:pending_approval');
    void leaving.request('session.open', { satellite: satId }, 60_000).catch(() => {});
    const { approval_id } = await pendingEvent;
    const resolved = approver.waitEvent('approval.resolved', (p) => p.id === approval_id);
    await leaving.close();
    expect(await resolved).toMatchObject({ status: 'denied', resolution: 'requester went away', resolved_by: 'api_key:requester' });
    const late = await t.api('POST', `/api/v1/approvals/${approval_id}/approve`, {}, approverKey);
    expect(late.body.error.code).toBe('ALREADY_RESOLVED');
  });

  it('hive ssh prints that it waits (with the approval id) and runs once approved', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: requesterKey };
    const ssh = hiveLive(['ssh', 'gated', '--', 'echo', 'ssh-after-approval'], env);
    const m = await ssh.stderrMatch(/waiting for approval (apr_[\w-]+)/);
    await t.api('POST', `/api/v1/approvals/${m[1]}/approve`, {}, approverKey);
    expect(await ssh.exited).toBe(0);
    expect(ssh.stdout).toContain('ssh-after-approval');
  });

  it('hive cp under the default policy: waits for approval (id on stderr), lands once approved; a denial leaves no file', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: requesterKey };
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const src = path.join(local, 'approved.bin');
    writeFileSync(src, data);
    const target = path.join(files, 'approved.bin');
    const cp = hiveLive(['cp', src, `gated:${target}`], env);
    const m = await cp.stderrMatch(/waiting for approval (apr_[\w-]+)/);
    const req = (await t.api('GET', `/api/v1/approvals/${m[1]}`, undefined, approverKey)).body.data;
    expect(req).toMatchObject({
      command: 'file.write',
      status: 'pending',
      reason: 'file.write always needs approval',
      params: { path: target, size: data.length },
    });
    expect(existsSync(target)).toBe(false);
    await approver.request('approval.resolve', { id: m[1], decision: 'approve' });
    expect(await cp.exited, cp.stderr).toBe(0);
    expect(cp.stdout).toContain(sha256(data));
    expect(sha256(readFileSync(target))).toBe(sha256(data));

    // Large enough that the refusal comes while the CLI still has most of the body to send.
    const denied = path.join(files, 'denied.bin');
    const small = path.join(local, 'denied.bin');
    writeFileSync(small, randomBytes(32 * 1024 * 1024));
    const cp2 = hiveLive(['cp', small, `gated:${denied}`], env);
    const m2 = await cp2.stderrMatch(/waiting for approval (apr_[\w-]+)/);
    await t.api('POST', `/api/v1/approvals/${m2[1]}/deny`, { reason: 'no uploads today' }, approverKey);
    expect(await cp2.exited).toBe(1);
    expect(cp2.stdout).toMatch(/APPROVAL_DENIED: .*no uploads today/);
    expect(existsSync(denied)).toBe(false);
    const audit = (await t.api('GET', '/api/v1/audit/logs?action=file.pushed&result=failure')).body.data[0];
    expect(audit.details).toMatchObject({ path: denied, approval_id: m2[1] });
  });

  it('a raw PUT gets a 103 with the approval id, then the upload result once approved', async () => {
    const body = Buffer.from('raw put under approval\n');
    const target = path.join(files, 'raw.txt');
    const u = new URL(`${t.url}/api/v1/satellites/${satId}/files?path=${encodeURIComponent(target)}`);
    let hinted: http.IncomingHttpHeaders | undefined;
    const done = new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: `${u.pathname}${u.search}`,
          method: 'PUT',
          headers: { 'x-api-key': requesterKey, 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('information', (info) => {
        hinted = info.headers;
        void t.api('POST', `/api/v1/approvals/${info.headers['x-hive-approval-id']}/approve`, {}, approverKey);
      });
      req.on('error', reject);
      req.end(body);
    });
    const res = await done;
    expect(hinted?.link).toMatch(/^<\/api\/v1\/approvals\/apr_\S+>; rel="hive-approval"$/);
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ bytes: body.length, sha256: sha256(body) });
    expect(readFileSync(target, 'utf8')).toBe('raw put under approval\n');
  });
});

describe('approval timeout', () => {
  it('no decision within approvals.timeout: APPROVAL_DENIED (timed out), the session row ends with approval_timeout', async () => {
    const t = await startHub({ overrides: { approvals: { timeout: 1500, require: ['session.open'] } } });
    const op = await operator(t);
    const agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'a'), ['--name', 'slowapprove'], { SHELL: '/bin/sh' });
    try {
      const sat = (await op.waitEvent('satellite:online')).id;
      const res = await t.api('POST', '/api/v1/sessions', { satellite: sat });
      expect(res.body.error.code).toBe('APPROVAL_DENIED');
      expect(res.body.error.message).toMatch(/timed out/);
      const row = (await t.api('GET', `/api/v1/sessions/${res.body.error.details.session_id}`)).body.data;
      expect(row).toMatchObject({ status: 'ended', end_reason: 'approval_timeout' });
      const ended = (await t.api('GET', `/api/v1/satellites/${sat}/sessions?state=ended`)).body;
      expect(ended.data.map((s: any) => s.id)).toContain(row.id);
      expect((await t.api('GET', `/api/v1/satellites/${sat}/sessions?state=live`)).body.pagination.total).toBe(0);
    } finally {
      await op.close();
      await agent.kill();
      await t.close();
      cleanup(t.dataDir);
    }
  });
});
