import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simNode } from './fleet.js';
import { cleanup, HIVE_BIN, operator, runCli, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';
import { READ_TOOLS } from './mcp-tools.js';

const call = async (c: Client, name: string, args: Record<string, unknown> = {}) => (await c.callTool({ name, arguments: args })) as CallToolResult;
const sc = (r: CallToolResult) => r.structuredContent as any;
const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;
const resText = (r: { contents: unknown[] }): string => (r.contents[0] as { text: string }).text;
const promptText = (r: { messages: { content: unknown }[] }): string => ((r.messages[0] as { content: unknown }).content as { text: string }).text;

describe('hive mcp (stdio subprocess → hub REST), with a real agent', () => {
  let t: TestHub;
  const cfgDir = tempDir('hive-mcp-cfg-');
  const agentDir = tempDir('hive-mcp-agent-');
  const closers: (() => Promise<unknown>)[] = [];
  let agentSlug = '';

  beforeAll(async () => {
    t = await startHub();
    const op = await operator(t);
    closers.push(() => op.close());
    const agent = spawnAgent(t.wsUrl, agentDir, ['--name', 'real-1']);
    closers.push(() => agent.kill());
    const online = await op.waitEvent('satellite:online', (p) => p.name === 'real-1' || p.slug?.startsWith('real-1'), 30_000);
    agentSlug = (await t.api('GET', `/api/v1/satellites/${online.id}`)).body.data.slug;
    const node = await simNode(t.wsUrl, 'sim-1', { tags: ['lab'], commands: ['system.info', 'system.run', 'power'] });
    closers.push(() => node.client.close());
  });
  afterAll(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {});
    await t?.close();
    cleanup(t.dataDir);
    cleanup(cfgDir);
    cleanup(agentDir);
  });

  async function stdioClient(key: string): Promise<{ client: Client; stderr: string[] }> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [HIVE_BIN, 'mcp'],
      env: { PATH: process.env.PATH ?? '', HIVE_URL: t.url, HIVE_API_KEY: key, XDG_CONFIG_HOME: cfgDir },
      stderr: 'pipe',
    });
    const stderr: string[] = [];
    transport.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: 'mcp-stdio-e2e', version: '0' });
    await client.connect(transport);
    closers.push(() => client.close());
    return { client, stderr };
  }

  it('offers the same tools as /mcp for the same key; tools run through REST; calls are audited as mcp', async () => {
    const { client } = await stdioClient(t.adminKey);
    const http = new Client({ name: 'mcp-http', version: '0' });
    await http.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${t.adminKey}` } } }));
    closers.push(() => http.close());
    const [viaStdio, viaHttp] = await Promise.all([client.listTools(), http.listTools()]);
    expect(viaStdio.tools.map((x) => x.name).sort()).toEqual(viaHttp.tools.map((x) => x.name).sort());
    expect(viaStdio.tools).toEqual(viaHttp.tools);
    expect(viaStdio.tools).toHaveLength(28);

    const list = await call(client, 'satellites_list');
    expect(sc(list).total).toBe(2);
    expect(
      sc(list)
        .items.map((s: any) => s.slug)
        .sort(),
    ).toEqual([agentSlug, 'sim-1'].sort());

    // a real agent runs a real command
    const health = await call(client, 'satellite_exec', { satellite: agentSlug, command: 'system.health' });
    expect(health.isError, text(health)).toBeFalsy();
    expect(sc(health).job).toMatchObject({ state: 'succeeded', command: 'system.health' });
    const echo = await call(client, 'satellite_exec', { satellite: agentSlug, command: 'system.run', params: { argv: ['echo', 'via stdio'] } });
    expect(sc(echo).job.result.stdout).toBe('via stdio\n');
    expect((await call(client, 'satellite_get', { satellite: agentSlug })).isError).toBeFalsy();
    // a command in a real PTY through REST (POST /api/v1/sessions/run), read back from the recording
    const pty = await call(client, 'session_run', { satellite: agentSlug, command: 'echo via-stdio-pty; exit 2' });
    expect(sc(pty), text(pty)).toMatchObject({ exit_code: 2, session: { status: 'ended', kind: 'run' } });
    expect(sc(pty).output).toContain('via-stdio-pty');
    expect(text(await call(client, 'session_recording', { session_id: sc(pty).session.id }))).toContain('via-stdio-pty');

    // approval round trip through REST polling
    const pending = await call(client, 'satellite_exec', { satellite: 'sim-1', command: 'power', params: { action: 'reboot' }, wait_seconds: 0 });
    const { approval_id, job_id } = sc(pending).pending_approval;
    expect(sc(await call(client, 'approvals_list')).items.map((a: any) => a.id)).toContain(approval_id);
    expect(sc(await call(client, 'approval_resolve', { approval_id, decision: 'deny', reason: 'no' })).approval.status).toBe('denied');
    expect(sc(await call(client, 'job_get', { job_id, wait_seconds: 20 })).job.state).toBe('denied');
    const fan = await call(client, 'satellites_exec_by_tag', { tag: 'lab', command: 'system.info' });
    expect(sc(fan).summary).toMatchObject({ total: 1, succeeded: 1 });

    expect(sc(await call(client, 'vault_status'))).toMatchObject({ initialized: false });
    expect(sc(await call(client, 'audit_query', { action: 'command.exec' })).items.length).toBeGreaterThan(0);

    const sat = await client.readResource({ uri: 'hive://satellites' });
    expect(JSON.parse(resText(sat))).toHaveLength(2);
    const diag = await client.getPrompt({ name: 'diagnose-satellite', arguments: { id: agentSlug } });
    expect(promptText(diag)).toContain(`Diagnose the satellite "${agentSlug}"`);
    expect(promptText(diag)).toMatch(/## Health \(live system\.health\)\n\{[\s\S]*## Metrics/);

    const audit = (await t.api('GET', '/api/v1/audit/logs?action=mcp.tool&per_page=500')).body.data as any[];
    const stdioCalls = audit.filter((e) => e.details.transport === 'stdio');
    expect(new Set(stdioCalls.map((e) => e.target.id))).toEqual(
      new Set([
        'satellites_list',
        'satellite_exec',
        'satellite_get',
        'session_run',
        'session_recording',
        'approvals_list',
        'approval_resolve',
        'job_get',
        'satellites_exec_by_tag',
        'vault_status',
        'audit_query',
      ]),
    );
    expect(stdioCalls.every((e) => e.actor.type === 'mcp' && e.actor.name === 'admin')).toBe(true);
    // the REST calls behind the tools are audited by the services as mcp too
    const execs = (await t.api('GET', '/api/v1/audit/logs?action=command.*&per_page=500')).body.data as any[];
    expect(execs.length).toBeGreaterThan(0);
    expect(execs.filter((e) => e.action !== 'command.result' && e.actor.type !== 'system').every((e) => e.actor.type === 'mcp')).toBe(true);
    const denial = (await t.api('GET', '/api/v1/audit/logs?action=approval.*')).body.data as any[];
    expect(denial.find((e) => e.action === 'approval.denied')?.actor.type).toBe('mcp');
  });

  it('a read-only key lists only read tools; a forbidden call is refused, never reaches the hub, and is audited', async () => {
    const { key } = await t.hub.services.auth.createApiKey('stdio-read', ['operator.read']);
    const { client } = await stdioClient(key);
    expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual(READ_TOOLS);
    const jobsBefore = (await t.api('GET', '/api/v1/commands?per_page=1')).body.pagination.total;
    const refused = await call(client, 'satellite_exec', { satellite: 'sim-1', command: 'system.info' });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('FORBIDDEN');
    const approve = await call(client, 'approval_resolve', { approval_id: 'apr_x', decision: 'approve' });
    expect(approve.isError).toBe(true);
    expect((await t.api('GET', '/api/v1/commands?per_page=1')).body.pagination.total).toBe(jobsBefore);
    expect(sc(await call(client, 'satellites_list')).total).toBe(2);
    const audit = ((await t.api('GET', '/api/v1/audit/logs?action=mcp.tool&per_page=500')).body.data as any[]).filter((e) => e.actor.name === 'stdio-read');
    expect(audit.map((e) => `${e.actor.type}:${e.target.id}:${e.result}`).sort()).toEqual([
      'mcp:approval_resolve:failure',
      'mcp:satellite_exec:failure',
      'mcp:satellites_list:success',
    ]);
  });

  it('without a key or with a bad one, hive mcp exits with a clear error', async () => {
    const noKey = await runCli(['mcp'], { HIVE_URL: t.url, HIVE_API_KEY: '', XDG_CONFIG_HOME: cfgDir });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('AUTH_REQUIRED');
    const bad = await runCli(['mcp'], {
      HIVE_URL: t.url,
      HIVE_API_KEY: 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      XDG_CONFIG_HOME: cfgDir,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('AUTH_INVALID');
    expect(bad.stdout).toBe('');
  });
});
