import path from 'node:path';
import type { Scope } from '@hive/protocol';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { type AgentProc, cleanup, operator, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';
import { READ_TOOLS } from './mcp-tools.js';
import { STANDINS, startAiHub } from './standins/hub.js';
import { ollamaStandIn, openAiStandIn, type StandIn } from './standins/providers.js';

const AGENT = path.join(STANDINS, 'agent.mjs');

const ALL_TOOLS = [
  'approval_resolve',
  'approvals_list',
  'audit_query',
  'chat_cloud',
  'chat_local',
  'chat_smart',
  'chat_with_model',
  'client_cancel_task',
  'client_list_tasks',
  'client_request_task',
  'client_task_output',
  'client_task_status',
  'job_get',
  'logs_analyze',
  'pairing_list',
  'pairing_resolve',
  'satellite_exec',
  'satellite_get',
  'satellite_metrics',
  'satellites_exec_by_tag',
  'satellites_list',
  'session_close',
  'session_get',
  'session_recording',
  'session_run',
  'sessions_list',
  'vault_list_keys',
  'vault_status',
];
/** Exercised against a real agent (PTY) in their own describe below. */
const SESSION_TOOLS = ['session_close', 'session_get', 'session_recording', 'session_run', 'sessions_list'];

const analyzeResult = {
  source: 'journal',
  scanned: 3,
  findings: [],
  summary: { total: 0, bySeverity: {}, byCategory: {} },
};

async function connect(t: TestHub, key: string): Promise<Client> {
  const client = new Client({ name: 'mcp-e2e', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  return client;
}

const call = async (c: Client, name: string, args: Record<string, unknown> = {}) => (await c.callTool({ name, arguments: args })) as CallToolResult;
const sc = (r: CallToolResult) => r.structuredContent as any;
const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;
const resText = (r: { contents: unknown[] }): string => (r.contents[0] as { text: string }).text;
const promptText = (r: { messages: { content: unknown }[] }): string => ((r.messages[0] as { content: unknown }).content as { text: string }).text;

async function mcpAudit(t: TestHub): Promise<any[]> {
  return (await t.api('GET', '/api/v1/audit/logs?action=mcp.*&per_page=500')).body.data;
}

async function keyWith(t: TestHub, name: string, scopes: Scope[]): Promise<string> {
  return (await t.hub.services.auth.createApiKey(name, scopes)).key;
}

describe('MCP over Streamable HTTP at /mcp (real hub, SDK nodes, stand-in agents and models)', () => {
  let t: TestHub;
  let oll: StandIn;
  let oai: StandIn;
  let op: Awaited<ReturnType<typeof operator>>;
  const closers: (() => Promise<unknown>)[] = [];
  const ran: string[] = [];
  const workDir = tempDir('hive-mcp-tasks-');

  beforeAll(async () => {
    [oll, oai] = await Promise.all([ollamaStandIn(), openAiStandIn()]);
    t = await startAiHub({
      vault: { scrypt_log_n: 15 },
      tasks: { work_dir: workDir, kill_grace: 500, agents: { nokeys: { command: [process.execPath, AGENT, '{prompt}'], format: 'jsonl' } } },
      chat: {
        providers: { ollama: { type: 'ollama', base_url: oll.url }, openai: { type: 'openai', base_url: `${oai.url}/v1` } },
        rules: { short_model: 'ollama/qwen-standin', default_model: 'ollama/llama-standin', cloud_model: 'openai/cloud-standin' },
      },
    });
    await t.api('POST', '/api/v1/vault/init', { password: 'mcp test password' });
    await t.api('POST', '/api/v1/vault/keys', { provider: 'openai', value: 'sk-oai-MCPTEST-0123456789abcdefghij' });
    for (const name of ['web-1', 'web-2']) {
      const node = await simNode(t.wsUrl, name, {
        tags: ['web'],
        commands: ['system.info', 'system.run', 'logs.analyze', 'power'],
        handler: async (_m, p) => {
          const { command, params } = p as { command: string; params: { argv?: string[] } };
          ran.push(`${name}:${command}`);
          if (command === 'logs.analyze') return analyzeResult;
          if (command === 'system.run') {
            const out = `${(params.argv ?? []).slice(1).join(' ')}\n`;
            return { exitCode: 0, signal: null, stdout: out, stderr: '', stdoutTruncated: false, stderrTruncated: false, durationMs: 1 };
          }
          if (command === 'power') return { action: 'reboot', scheduled: true };
          return { hostname: name, ok: true };
        },
      });
      closers.push(() => node.client.close());
    }
    op = await operator(t);
    closers.push(() => op.close());
  });
  afterAll(async () => {
    for (const c of closers.splice(0)) await c();
    await t?.close();
    await Promise.all([oll?.close(), oai?.close()]);
    cleanup(t.dataDir);
    cleanup(workDir);
  });

  it('admin key: every tool is listed and works; resources and prompts; every call is audited as actor type mcp', async () => {
    const c = await connect(t, t.adminKey);
    closers.push(() => c.close());
    const tools = await c.listTools();
    expect(tools.tools.map((x) => x.name).sort()).toEqual(ALL_TOOLS);
    const exec = tools.tools.find((x) => x.name === 'satellite_exec');
    expect(exec?.inputSchema.required).toEqual(expect.arrayContaining(['satellite', 'command']));

    // fleet
    const list = await call(c, 'satellites_list');
    expect(sc(list).total).toBe(2);
    expect(text(list)).toMatch(/2 satellite\(s\)\nweb-/);
    const one = await call(c, 'satellite_get', { satellite: 'web-1' });
    expect(sc(one).satellite).toMatchObject({ slug: 'web-1', status: 'online', tags: ['web'] });
    const metrics = await call(c, 'satellite_metrics', { satellite: 'web-1' });
    expect(metrics.isError).toBeFalsy();
    expect(sc(metrics)).toHaveProperty('history');

    const run = await call(c, 'satellite_exec', { satellite: 'web-1', command: 'system.run', params: { argv: ['echo', 'hello mcp'] } });
    expect(run.isError, text(run)).toBeFalsy();
    expect(sc(run).job).toMatchObject({ state: 'succeeded', command: 'system.run', result: { stdout: 'hello mcp\n' } });
    expect(text(run)).toContain('hello mcp');

    const fan = await call(c, 'satellites_exec_by_tag', { tag: 'web', command: 'system.info' });
    expect(sc(fan).summary).toMatchObject({ total: 2, succeeded: 2 });
    expect(
      sc(fan)
        .results.map((r: any) => r.slug)
        .sort(),
    ).toEqual(['web-1', 'web-2']);

    const logs = await call(c, 'logs_analyze', { satellite: 'web-2' });
    expect(sc(logs).job).toMatchObject({ state: 'succeeded', command: 'logs.analyze', result: analyzeResult });

    // approvals: the tool reports the pending state with its approval id …
    const pending = await call(c, 'satellite_exec', { satellite: 'web-1', command: 'power', params: { action: 'reboot' }, wait_seconds: 0 });
    expect(pending.isError).toBeFalsy();
    const { approval_id, job_id } = sc(pending).pending_approval;
    expect(approval_id).toMatch(/\S/);
    expect(sc(pending).job.state).toBe('pending_approval');
    expect(text(pending)).toContain(approval_id);
    const approvals = await call(c, 'approvals_list');
    expect(sc(approvals).items.map((a: any) => a.id)).toContain(approval_id);
    const resolved = await call(c, 'approval_resolve', { approval_id, decision: 'approve' });
    expect(sc(resolved).approval).toMatchObject({ id: approval_id, status: 'approved' });
    const done = await call(c, 'job_get', { job_id, wait_seconds: 30 });
    expect(sc(done).job).toMatchObject({ id: job_id, state: 'succeeded' });

    // … and while it waits, a decision made elsewhere ends the wait with the outcome
    const waiting = call(c, 'satellite_exec', { satellite: 'web-2', command: 'power', params: { action: 'reboot' }, wait_seconds: 30 });
    const req = await op.waitEvent('approval.requested', (p) => p.command === 'power' && p.id !== approval_id);
    await op.request('approval.resolve', { id: req.id, decision: 'deny', reason: 'not now' });
    const denied = await waiting;
    expect(denied.isError).toBe(true);
    expect(sc(denied).job).toMatchObject({ state: 'denied', approval_id: req.id });

    // pairing, vault
    expect(sc(await call(c, 'pairing_list')).items).toEqual([]);
    const noPairing = await call(c, 'pairing_resolve', { pairing_id: 'pair_nope', decision: 'approve' });
    expect(noPairing.isError).toBe(true);
    expect(sc(noPairing).error.code).toBe('NOT_FOUND');
    expect(sc(await call(c, 'vault_status'))).toMatchObject({ initialized: true, unlocked: true, key_count: 1 });
    const keys = await call(c, 'vault_list_keys');
    expect(sc(keys).items).toEqual([expect.objectContaining({ provider: 'openai', key_id: 'main' })]);
    expect(JSON.stringify(keys)).not.toContain('MCPTEST');

    // tasks
    const task = sc(await call(c, 'client_request_task', { agent_type: 'nokeys', description: 'hello from mcp' })).task;
    await op.waitEvent('task:status', (p) => p.task_id === task.task_id && p.status !== 'running' && p.status !== 'pending');
    expect(sc(await call(c, 'client_task_status', { task_id: task.task_id })).task).toMatchObject({ status: 'completed' });
    const output = await call(c, 'client_task_output', { task_id: task.task_id });
    expect(text(output)).toContain('echo: hello from mcp');
    expect(sc(await call(c, 'client_list_tasks', { mine: true })).items.map((x: any) => x.task_id)).toContain(task.task_id);
    const sleeper = sc(await call(c, 'client_request_task', { agent_type: 'nokeys', description: 'sleep' })).task;
    await op.waitEvent('task:output', (p) => p.task_id === sleeper.task_id && String(p.data).includes('sleeping'));
    expect(sc(await call(c, 'client_cancel_task', { task_id: sleeper.task_id })).task).toMatchObject({ status: 'cancelled' });

    // chat
    const smart = await call(c, 'chat_smart', { prompt: 'hi there' });
    expect(sc(smart)).toMatchObject({ model: 'ollama/qwen-standin', text: '[ollama:qwen-standin] hi there' });
    expect(text(smart)).toContain('[ollama:qwen-standin] hi there');
    const local = await call(c, 'chat_local', { messages: [{ role: 'user', content: 'local please' }] });
    expect(sc(local).model).toMatch(/^ollama\//);
    const cloud = await call(c, 'chat_cloud', { prompt: 'cloud please' });
    expect(cloud.isError, text(cloud)).toBeFalsy();
    expect(sc(cloud).model).toBe('openai/cloud-standin');
    const explicit = await call(c, 'chat_with_model', { model: 'ollama/llama-standin', prompt: 'explicit' });
    expect(sc(explicit)).toMatchObject({ model: 'ollama/llama-standin', text: '[ollama:llama-standin] explicit' });

    // audit
    const auditRes = await call(c, 'audit_query', { action: 'command.*' });
    const commandEntries = sc(auditRes).items as any[];
    expect(commandEntries.length).toBeGreaterThan(0);
    expect(commandEntries.filter((e) => e.action === 'command.exec' || e.action === 'command.batch').every((e) => e.actor.type === 'mcp')).toBe(true);

    // resources and prompts
    const resources = await c.listResources();
    expect(resources.resources.map((r) => r.uri)).toEqual(expect.arrayContaining(['hive://satellites', 'hive://audit/recent']));
    expect(resources.resources.filter((r) => r.uri.startsWith('hive://satellites/'))).toHaveLength(2);
    const templates = await c.listResourceTemplates();
    expect(templates.resourceTemplates.map((r) => r.uriTemplate)).toEqual(['hive://satellites/{id}']);
    const fleet = await c.readResource({ uri: 'hive://satellites' });
    expect(JSON.parse(resText(fleet))).toHaveLength(2);
    const sat = JSON.parse(resText(await c.readResource({ uri: `hive://satellites/${sc(one).satellite.id}` })));
    expect(sat.satellite.slug).toBe('web-1');
    const recent = JSON.parse(resText(await c.readResource({ uri: 'hive://audit/recent' })));
    expect(recent.length).toBeGreaterThan(0);
    const prompts = await c.listPrompts();
    expect(prompts.prompts.map((p) => p.name).sort()).toEqual(['diagnose-satellite', 'fleet-report']);
    const diag = await c.getPrompt({ name: 'diagnose-satellite', arguments: { id: 'web-1' } });
    expect(promptText(diag)).toMatch(
      /Diagnose the satellite "web-1"[\s\S]*## Health \(live system\.health\)\nUNKNOWN_COMMAND[\s\S]*## Metrics[\s\S]*## Recent errors/,
    );
    const report = await c.getPrompt({ name: 'fleet-report' });
    expect(promptText(report)).toContain('Satellites: 2 (2 online, 0 offline)');

    // every call above is in the audit trail as actor type mcp
    const entries = await mcpAudit(t);
    const toolCalls = entries.filter((e) => e.action === 'mcp.tool');
    expect(new Set(toolCalls.map((e) => e.target.id))).toEqual(new Set(ALL_TOOLS.filter((n) => !SESSION_TOOLS.includes(n))));
    expect(entries.every((e) => e.actor.type === 'mcp' && e.details.transport === 'http')).toBe(true);
    expect(entries.filter((e) => e.action === 'mcp.resource').map((e) => e.target.id)).toEqual(
      expect.arrayContaining(['hive://satellites', 'hive://audit/recent']),
    );
    expect(entries.filter((e) => e.action === 'mcp.prompt').map((e) => e.target.id)).toEqual(expect.arrayContaining(['diagnose-satellite', 'fleet-report']));
    expect(toolCalls.find((e) => e.target.id === 'pairing_resolve')).toMatchObject({ result: 'failure', error: expect.stringContaining('NOT_FOUND') });
    const jobs = (await t.api('GET', '/api/v1/commands?per_page=100')).body.data as any[];
    expect(jobs.length).toBeGreaterThanOrEqual(6);
    expect(jobs.every((j) => j.actor.type === 'mcp')).toBe(true);
  });

  it('scopes filter the tool list; a forbidden call is refused and audited', async () => {
    const readKey = await keyWith(t, 'mcp-read', ['operator.read']);
    const c = await connect(t, readKey);
    closers.push(() => c.close());
    expect((await c.listTools()).tools.map((x) => x.name).sort()).toEqual(READ_TOOLS);
    // no audit resource without admin; the fleet ones are there
    expect((await c.listResources()).resources.map((r) => r.uri)).not.toContain('hive://audit/recent');
    const before = ran.length;
    const refused = await call(c, 'satellite_exec', { satellite: 'web-1', command: 'system.run', params: { argv: ['echo', 'x'] } });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/FORBIDDEN: Tool satellite_exec needs scope operator\.write/);
    expect(ran.length).toBe(before);
    const vault = await call(c, 'vault_list_keys');
    expect(vault.isError).toBe(true);
    expect(sc(await call(c, 'vault_status'))).toMatchObject({ initialized: true });

    const approver = await connect(t, await keyWith(t, 'mcp-approver', ['operator.approvals']));
    closers.push(() => approver.close());
    expect((await approver.listTools()).tools.map((x) => x.name).sort()).toEqual(['approval_resolve', 'approvals_list']);
    expect((await call(approver, 'satellites_list')).isError).toBe(true);

    const entries = (await mcpAudit(t)).filter((e) => e.actor.name === 'mcp-read' || e.actor.name === 'mcp-approver');
    expect(entries.map((e) => `${e.actor.type}:${e.target.id}:${e.result}`).sort()).toEqual([
      'mcp:satellite_exec:failure',
      'mcp:satellites_list:failure',
      'mcp:vault_list_keys:failure',
      'mcp:vault_status:success',
    ]);
    expect(entries.find((e) => e.target.id === 'satellite_exec').error).toContain('FORBIDDEN');
  });

  it('bearer auth: 401 without or with an invalid key, 403 for a key without any operator scope; a plain JSON-RPC tool call works', async () => {
    const rpc = (key: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${t.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...headers,
        },
        body: JSON.stringify(body),
      });
    const listCall = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'satellites_list', arguments: { tag: 'web' } } };

    const none = await rpc(undefined, listCall);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect((await none.json()) as any).toMatchObject({ error: 'invalid_token' });

    const bad = await rpc('hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', listCall);
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as any).error).toBe('invalid_token');
    expect((await rpc('not-a-key', listCall)).status).toBe(401);
    expect((await rpc(undefined, listCall, { authorization: 'Basic abc' })).status).toBe(401);

    const noScopes = await rpc(await keyWith(t, 'mcp-none', []), listCall);
    expect(noScopes.status).toBe(403);
    expect(noScopes.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope"/);
    expect(((await noScopes.json()) as any).error).toBe('insufficient_scope');

    const okRes = await rpc(t.adminKey, listCall);
    expect(okRes.status).toBe(200);
    const body = (await okRes.json()) as any;
    expect(body.result.structuredContent.total).toBe(2);
    expect(body.result.content[0].text).toMatch(/^2 satellite\(s\)/);

    const getRes = await fetch(`${t.url}/mcp`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(getRes.status).toBe(405);
  });
});

describe('MCP session tools (real agent, real PTY)', () => {
  let t: TestHub;
  let op: Awaited<ReturnType<typeof operator>>;
  let free: AgentProc;
  let gated: AgentProc;
  let c: Client;

  beforeAll(async () => {
    // Shells on satellites tagged `gated` need a person's approval.
    t = await startHub({ overrides: { approvals: { rules: [{ command: 'session.open', satellite: 'tag:gated', require: true }] } } });
    op = await operator(t);
    free = spawnAgent(t.wsUrl, path.join(t.dataDir, 'free'), ['--name', 'free'], { SHELL: '/bin/sh' });
    await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('free'));
    gated = spawnAgent(t.wsUrl, path.join(t.dataDir, 'gated'), ['--name', 'gated', '--tags', 'gated'], { SHELL: '/bin/sh' });
    await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('gated'));
    c = await connect(t, t.adminKey);
  });
  afterAll(async () => {
    await c?.close();
    await op?.close();
    await free?.kill();
    await gated?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('session_run returns plain output and the exit code; sessions_list, session_get and session_recording read it back; all audited as mcp', async () => {
    const run = await call(c, 'session_run', { satellite: 'free', command: 'printf "\\033[1;31mred\\033[0m\\n"; echo mcp-run-$((6*7)); exit 3' });
    expect(run.isError, text(run)).toBeFalsy();
    const r = sc(run);
    expect(r).toMatchObject({ exit_code: 3, output_truncated: false, session: { kind: 'run', status: 'ended', end_reason: 'exited' } });
    expect(r.output).toContain('mcp-run-42');
    expect(r.output).toContain('red\n');
    expect(r.output).not.toContain('\x1b');
    expect(text(run)).toContain('exit 3');
    const id = r.session.id;

    const list = await call(c, 'sessions_list', { satellite: 'free', state: 'ended' });
    expect(sc(list).items.map((s: any) => s.id)).toContain(id);
    expect(text(list)).toContain(id);
    expect(sc(await call(c, 'sessions_list', { state: 'live' })).total).toBe(0);

    const got = await call(c, 'session_get', { session_id: id });
    expect(sc(got)).toMatchObject({ exit_code: 3, session: { id, actor: { type: 'mcp' } } });
    expect(sc(got).output).toContain('mcp-run-42');

    const rec = await call(c, 'session_recording', { session_id: id });
    expect(sc(rec)).toMatchObject({ session_id: id, truncated: false });
    expect(text(rec)).toContain('mcp-run-42');
    expect(text(rec)).not.toContain('\x1b');
    const head = await call(c, 'session_recording', { session_id: id, max_bytes: 3, from: 'start' });
    expect(sc(head)).toMatchObject({ text: 'red', truncated: true });

    // Bounded output: only max_bytes come back.
    const long = sc(await call(c, 'session_run', { satellite: 'free', command: 'yes abcdefgh | head -c 100000', max_bytes: 1000 }));
    expect(long.output.length).toBeLessThanOrEqual(1000);
    expect(long.output_truncated).toBe(true);

    const missing = await call(c, 'session_get', { session_id: 'sess_missing' });
    expect(missing.isError).toBe(true);
    expect(sc(missing).error.code).toBe('SESSION_NOT_FOUND');

    const audit = (await t.api('GET', '/api/v1/audit/logs?action=session.opened&per_page=10')).body.data as any[];
    expect(audit.find((e) => e.target.id === id).actor.type).toBe('mcp');
  });

  it('session_run under approval returns the approval id; approved later it runs (session_get); a denial while waiting is an error', async () => {
    const pending = await call(c, 'session_run', { satellite: 'gated', command: 'echo approved-run', wait_seconds: 0 });
    expect(pending.isError).toBeFalsy();
    const p = sc(pending);
    expect(p.session.status).toBe('pending_approval');
    expect(p.pending_approval.approval_id).toMatch(/^apr_/);
    expect(text(pending)).toContain(p.pending_approval.approval_id);
    expect(sc(await call(c, 'approvals_list')).items.map((a: any) => a.id)).toContain(p.pending_approval.approval_id);
    const ended = op.waitEvent('session:ended', (e) => e.session_id === p.session.id);
    expect(sc(await call(c, 'approval_resolve', { approval_id: p.pending_approval.approval_id, decision: 'approve' })).approval.status).toBe('approved');
    expect(await ended).toMatchObject({ reason: 'exited', exit_code: 0 });
    const after = sc(await call(c, 'session_get', { session_id: p.session.id }));
    expect(after.output).toContain('approved-run');

    const waiting = call(c, 'session_run', { satellite: 'gated', command: 'echo never', wait_seconds: 30 });
    const req = await op.waitEvent('approval.requested', (e) => e.command === 'session.open' && e.params.command === 'echo never');
    await op.request('approval.resolve', { id: req.id, decision: 'deny', reason: 'not now' });
    const denied = await waiting;
    expect(denied.isError).toBe(true);
    expect(sc(denied).error).toMatchObject({ code: 'APPROVAL_DENIED', details: { approval_id: req.id, status: 'denied' } });
    expect((await t.api('GET', `/api/v1/sessions/${req.job_id}`)).body.data).toMatchObject({ status: 'ended', end_reason: 'approval_denied', pid: null });
  });

  it('session_close ends a running session; read-only keys cannot run or close', async () => {
    const running = sc(await call(c, 'session_run', { satellite: 'free', command: 'sleep 1000', wait_seconds: 0 }));
    expect(running.session.status).toBe('active');
    const closed = await call(c, 'session_close', { session_id: running.session.id });
    expect(sc(closed).session).toMatchObject({ status: 'ended', end_reason: 'terminated' });

    const reader = await connect(t, (await t.hub.services.auth.createApiKey('mcp-sessions-read', ['operator.read'])).key);
    try {
      const names = (await reader.listTools()).tools.map((x) => x.name);
      expect(names).toEqual(expect.arrayContaining(['sessions_list', 'session_get', 'session_recording']));
      expect(names).not.toContain('session_run');
      const refused = await call(reader, 'session_run', { satellite: 'free', command: 'true' });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toContain('FORBIDDEN: Tool session_run needs scope operator.write');
      expect(sc(await call(reader, 'sessions_list', { satellite: 'free' })).total).toBeGreaterThanOrEqual(3);
    } finally {
      await reader.close();
    }
    const tools = (await t.api('GET', '/api/v1/audit/logs?action=mcp.tool&per_page=200')).body.data as any[];
    expect(new Set(tools.map((e) => e.target.id))).toEqual(new Set([...SESSION_TOOLS, 'approvals_list', 'approval_resolve']));
    expect(tools.every((e) => e.actor.type === 'mcp')).toBe(true);
  });
});
