import { HiveError, LOG_SOURCES, type Scope } from '@hive/protocol';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, GetPromptResult, JSONRPCMessage, ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { HiveExecutor, McpBatch, McpCaller, McpJob, McpRunResult, McpSession } from './executor.js';

/** Scope → what a caller holding it may use. `operator.admin` implies every other scope. */
export function hasScope(scopes: McpCaller['scopes'], scope: Scope): boolean {
  const has = (s: Scope) => (scopes instanceof Set ? scopes.has(s) : (scopes as readonly Scope[]).includes(s));
  return has(scope) || has('operator.admin');
}

type Shape = Record<string, z.ZodType>;

interface ToolOutcome {
  data: unknown;
  text?: string | undefined;
  isError?: boolean | undefined;
}

/** One MCP tool: the same definition serves Streamable HTTP (services) and stdio (REST). */
export interface HiveTool {
  name: string;
  title: string;
  description: string;
  /** The scope a caller needs; tools outside the caller's scopes are neither listed nor callable. */
  scope: Scope;
  readOnly: boolean;
  input: Shape;
  run(x: HiveExecutor, args: Record<string, unknown>): Promise<ToolOutcome>;
}

function tool<S extends Shape>(def: {
  name: string;
  title: string;
  description: string;
  scope: Scope;
  readOnly?: boolean;
  input: S;
  run(x: HiveExecutor, args: z.output<z.ZodObject<S>>): Promise<ToolOutcome>;
}): HiveTool {
  return { readOnly: false, ...def, run: def.run as HiveTool['run'] };
}

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'denied', 'cancelled']);
const Ref = z.string().trim().min(1).max(128).describe('Satellite id, slug or name');
const Tag = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/);
const Id = z.string().trim().min(1).max(128);
const WaitSeconds = z
  .number()
  .int()
  .min(0)
  .max(600)
  .default(60)
  .describe('How long to wait for the outcome (also for a pending approval), in seconds; default 60');
const ExecShape = {
  command: z.string().trim().min(1).max(128).describe('Catalog command, e.g. system.health, system.run, logs.collect, service.status'),
  params: z.record(z.string(), z.unknown()).default({}).describe('Command parameters, e.g. {"argv":["uptime"]} for system.run'),
  timeout_ms: z.number().int().min(100).max(3_600_000).optional().describe('Run timeout on the satellite'),
  wait_seconds: WaitSeconds,
};
const Messages = z
  .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(500_000) }))
  .min(1)
  .max(1000);
const ChatShape = {
  messages: Messages.optional().describe('Chat history; or give `prompt`'),
  prompt: z.string().max(500_000).optional().describe('A single user message (instead of `messages`)'),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/** Polls jobs until all are final or the time is up (50 ms, doubling to 500 ms). */
export async function waitJobs(x: HiveExecutor, jobs: McpJob[], waitMs: number): Promise<McpJob[]> {
  const out = [...jobs];
  const deadline = Date.now() + waitMs;
  let delay = 50;
  for (;;) {
    const open = out.map((j, i) => [j, i] as const).filter(([j]) => !FINAL.has(j.state));
    if (open.length === 0) return out;
    const left = deadline - Date.now();
    if (left <= 0) return out;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 500);
    await Promise.all(
      open.map(async ([j, i]) => {
        out[i] = await x.getJob(j.id);
      }),
    );
  }
}

function chatMessages(a: { messages?: { role: 'system' | 'user' | 'assistant'; content: string }[] | undefined; prompt?: string | undefined }) {
  const messages = [...(a.messages ?? [])];
  if (a.prompt) messages.push({ role: 'user', content: a.prompt });
  if (!messages.some((m) => m.role === 'user')) throw new HiveError('INVALID_PARAMETERS', 'Give `prompt` or `messages` with a user message');
  return messages;
}

function jobText(j: McpJob): string {
  const head = `job ${j.id}: ${j.command} on ${j.satellite_id} → ${j.state}`;
  if (j.state === 'pending_approval') {
    return `${head}\nWaiting for approval ${j.approval_id ?? '?'} — someone with operator.approvals must approve it (approval_resolve). Check the job later with job_get.`;
  }
  if (j.error) return `${head}\n${j.error.code}: ${j.error.message}`;
  const r = j.result as { stdout?: string; stderr?: string } | null;
  if (r && typeof r === 'object' && typeof r.stdout === 'string') return `${head}\n${r.stdout}${r.stderr ? `\nstderr:\n${r.stderr}` : ''}`;
  return `${head}\n${JSON.stringify(j.result, null, 2)}`;
}

function jobOutcome(j: McpJob): ToolOutcome {
  const pending = j.state === 'pending_approval';
  const failed = FINAL.has(j.state) && j.state !== 'succeeded' && !(j.state === 'failed' && j.error?.code === 'COMMAND_FAILED');
  return {
    data: {
      job: j,
      ...(pending ? { pending_approval: { approval_id: j.approval_id, job_id: j.id, message: 'The command waits for an approval' } } : {}),
    },
    text: jobText(j),
    isError: failed,
  };
}

async function execAndWait(
  x: HiveExecutor,
  satellite: string,
  a: { command: string; params: Record<string, unknown>; timeout_ms?: number | undefined; wait_seconds: number },
) {
  const job = await x.exec(satellite, { command: a.command, params: a.params, timeout_ms: a.timeout_ms });
  const [final] = await waitJobs(x, [job], a.wait_seconds * 1000);
  return jobOutcome(final as McpJob);
}

const list = (items: unknown[], total?: number) => ({ items, total: total ?? items.length });

function sessionLine(s: McpSession): string {
  const how =
    s.status === 'ended'
      ? `ended (${s.end_reason ?? '?'}${s.exit_code !== null && s.exit_code !== undefined ? `, exit ${s.exit_code}` : ''})`
      : s.status === 'pending_approval'
        ? `waiting for approval ${s.approval_id ?? '?'}`
        : s.status;
  return `${s.id} on ${s.satellite_slug}: ${s.kind} ${s.command ? JSON.stringify(s.command) : '(login shell)'} ${how}, opened ${s.created_at}`;
}

function runOutcome(r: McpRunResult): ToolOutcome {
  const s = r.session;
  if (s.status === 'pending_approval') {
    const apr = r.pending_approval?.approval_id ?? s.approval_id ?? '?';
    return {
      data: { ...r, pending_approval: r.pending_approval ?? { approval_id: apr, session_id: s.id } },
      text: `${sessionLine(s)}\nWaiting for approval ${apr} — someone with operator.approvals must approve it (approval_resolve). The run starts once approved; check it with session_get ${s.id}.`,
    };
  }
  const head = sessionLine(s);
  if (s.status !== 'ended') return { data: r, text: `${head}\nStill running; output so far:\n${r.output ?? ''}` };
  const failed = r.exit_code === null;
  return {
    data: r,
    text: `${head}\n${r.output ?? ''}${r.output_truncated ? '\n(output truncated)' : ''}`,
    isError: failed,
  };
}

/** The tool table. Names are stable (documented in README "MCP (AI assistants)"). */
export const HIVE_TOOLS: readonly HiveTool[] = [
  tool({
    name: 'satellites_list',
    title: 'List satellites',
    description: 'Satellites (machines) of the fleet with status, tags and last contact. Filter by status, tag or a search text.',
    scope: 'operator.read',
    readOnly: true,
    input: {
      status: z.enum(['online', 'offline']).optional(),
      tag: Tag.optional(),
      q: z.string().trim().max(128).optional().describe('Search in name, slug, hostname'),
      page: z.number().int().min(1).default(1),
      per_page: z.number().int().min(1).max(500).default(50),
    },
    run: async (x, a) => {
      const { items, total } = await x.listSatellites(a);
      const rows = (items as { slug: string; id: string; status: string; tags: string[]; os?: string | null }[]).map(
        (s) => `${s.slug} (${s.id}) ${s.status}${s.tags.length ? ` [${s.tags.join(', ')}]` : ''}`,
      );
      return { data: list(items, total), text: `${total} satellite(s)${rows.length ? `\n${rows.join('\n')}` : ''}` };
    },
  }),
  tool({
    name: 'satellite_get',
    title: 'Get a satellite',
    description: 'One satellite with its facts, tags, claimed and approved commands and local policy.',
    scope: 'operator.read',
    readOnly: true,
    input: { satellite: Ref },
    run: async (x, a) => ({ data: { satellite: await x.getSatellite(a.satellite) } }),
  }),
  tool({
    name: 'satellite_metrics',
    title: 'Satellite metrics',
    description: 'Latest health/metrics report of a satellite and its recent history (CPU, memory, disk, load).',
    scope: 'operator.read',
    readOnly: true,
    input: { satellite: Ref, limit: z.number().int().min(1).max(2880).default(20) },
    run: async (x, a) => ({ data: (await x.metrics(a.satellite, a.limit)) as Record<string, unknown> }),
  }),
  tool({
    name: 'satellite_exec',
    title: 'Run a command on a satellite',
    description:
      'Runs a catalog command on one satellite and waits for the result. Commands that need approval return state pending_approval with the approval id when no decision came within wait_seconds.',
    scope: 'operator.write',
    input: { satellite: Ref, ...ExecShape },
    run: (x, a) => execAndWait(x, a.satellite, a),
  }),
  tool({
    name: 'satellites_exec_by_tag',
    title: 'Run a command on all satellites with a tag',
    description: 'Fans a catalog command out to every satellite carrying the tag and waits for all results (or wait_seconds).',
    scope: 'operator.write',
    input: { tag: Tag, ...ExecShape, concurrency: z.number().int().min(1).max(10_000).optional() },
    run: async (x, a) => {
      const batch: McpBatch = await x.execByTag(a.tag, { command: a.command, params: a.params, timeout_ms: a.timeout_ms, concurrency: a.concurrency });
      const started = batch.results.filter((r) => r.job_id);
      const jobs = await waitJobs(
        x,
        started.map((r) => ({ id: r.job_id as string, state: r.state }) as McpJob),
        a.wait_seconds * 1000,
      );
      const byId = new Map(jobs.map((j) => [j.id, j]));
      const results = batch.results.map((r) => {
        const j = r.job_id ? byId.get(r.job_id) : undefined;
        return j && 'command' in j
          ? { satellite_id: r.satellite_id, slug: r.slug, job_id: j.id, state: j.state, approval_id: j.approval_id, result: j.result, error: j.error }
          : { ...r, approval_id: null };
      });
      const summary: Record<string, number> = { total: results.length };
      for (const r of results) summary[r.state] = (summary[r.state] ?? 0) + 1;
      const text = [
        `${a.command} on tag ${a.tag}: ${Object.entries(summary)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
        ...results.map(
          (r) => `${r.slug}: ${r.state}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}${r.approval_id ? ` approval ${r.approval_id}` : ''}`,
        ),
      ].join('\n');
      return { data: { batch_id: batch.batch_id, command: batch.command, results, summary }, text };
    },
  }),
  tool({
    name: 'job_get',
    title: 'Get a job',
    description: 'State and result of a command job (e.g. one that waited for approval).',
    scope: 'operator.read',
    readOnly: true,
    input: { job_id: Id, wait_seconds: z.number().int().min(0).max(600).default(0).describe('Wait up to this many seconds for the job to end; default 0') },
    run: async (x, a) => {
      const [j] = await waitJobs(x, [await x.getJob(a.job_id)], a.wait_seconds * 1000);
      return jobOutcome(j as McpJob);
    },
  }),
  tool({
    name: 'sessions_list',
    title: 'List terminal sessions',
    description:
      'Terminal sessions (interactive shells and session_run commands), newest first: who opened them, the command, how they ended, whether a recording exists. Per satellite or fleet-wide; state live, ended or all.',
    scope: 'operator.read',
    readOnly: true,
    input: {
      satellite: Ref.optional(),
      state: z.enum(['live', 'ended', 'all']).default('all'),
      page: z.number().int().min(1).default(1),
      per_page: z.number().int().min(1).max(500).default(50),
    },
    run: async (x, a) => {
      const { items, total } = await x.listSessions(a);
      return { data: list(items, total), text: `${total} session(s)${items.length ? `\n${items.map(sessionLine).join('\n')}` : ''}` };
    },
  }),
  tool({
    name: 'session_get',
    title: 'Get a terminal session',
    description: 'One session: state, command, exit code, end reason, recording; for session_run sessions also the collected output.',
    scope: 'operator.read',
    readOnly: true,
    input: { session_id: Id },
    run: async (x, a) => {
      const s = await x.getSession(a.session_id);
      if (s.kind !== 'run') return { data: { session: s }, text: sessionLine(s) };
      return runOutcome(await x.sessionResult(a.session_id));
    },
  }),
  tool({
    name: 'session_recording',
    title: 'Read a session recording',
    description:
      'What the terminal showed during a recorded session, replayed as plain text (escape sequences stripped), at most max_bytes from the end (default) or the start.',
    scope: 'operator.read',
    readOnly: true,
    input: {
      session_id: Id,
      max_bytes: z
        .number()
        .int()
        .min(1)
        .max(1024 * 1024)
        .default(64 * 1024),
      from: z.enum(['start', 'end']).default('end'),
    },
    run: async (x, a) => {
      const r = await x.sessionRecordingText(a.session_id, { max_bytes: a.max_bytes, from: a.from });
      const note = r.truncated ? `(truncated: the ${a.from === 'end' ? 'last' : 'first'} ${a.max_bytes} bytes)\n` : '';
      return { data: { session_id: a.session_id, ...r }, text: `${note}${r.text}` };
    },
  }),
  tool({
    name: 'session_close',
    title: 'Close a terminal session',
    description: 'Terminates a live session (the satellite kills its process) or withdraws one still waiting for approval.',
    scope: 'operator.write',
    input: { session_id: Id },
    run: async (x, a) => {
      const s = await x.closeSession(a.session_id);
      return { data: { session: s }, text: sessionLine(s) };
    },
  }),
  tool({
    name: 'session_run',
    title: 'Run a command in a terminal',
    description:
      'Runs a command in a pseudo-terminal on a satellite (like `hive ssh sat -- cmd`) and returns its output (plain text, at most max_bytes) and exit code. The approval policy for session.open applies: a run that needs approval returns pending_approval with the approval id when no decision came within wait_seconds, and starts once approved (see session_get).',
    scope: 'operator.write',
    input: {
      satellite: Ref,
      command: z.union([z.string().trim().min(1).max(4096), z.array(z.string().max(4096)).min(1).max(256)]).describe('A shell command line, or an argv'),
      timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000).describe('The run ends (killed) after this long'),
      max_bytes: z
        .number()
        .int()
        .min(1)
        .max(1024 * 1024)
        .default(64 * 1024)
        .describe('Output kept, bytes (the first ones)'),
      wait_seconds: WaitSeconds,
    },
    run: async (x, a) => runOutcome(await x.runSession(a)),
  }),
  tool({
    name: 'logs_analyze',
    title: 'Analyze logs',
    description: 'Runs logs.analyze on a satellite: known error patterns with category, severity, suggestion and a proposed fix.',
    scope: 'operator.write',
    input: {
      satellite: Ref,
      source: z.enum(LOG_SOURCES).default('journal'),
      path: z.string().max(4096).optional().describe('Absolute path, for source "file"'),
      unit: z.string().max(256).optional().describe('systemd unit, for source "journal"'),
      since: z.string().max(64).optional(),
      lines: z.number().int().min(1).max(100_000).default(5000),
      wait_seconds: WaitSeconds,
    },
    run: async (x, a) => {
      const { satellite, wait_seconds, ...params } = a;
      const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
      return execAndWait(x, satellite, { command: 'logs.analyze', params: clean, wait_seconds });
    },
  }),
  tool({
    name: 'approvals_list',
    title: 'List approvals',
    description: 'Approval requests (default: pending) for commands that need a person’s decision.',
    scope: 'operator.approvals',
    readOnly: true,
    input: { status: z.enum(['pending', 'approved', 'denied', 'expired']).default('pending') },
    run: async (x, a) => ({ data: list(await x.listApprovals(a.status)) }),
  }),
  tool({
    name: 'approval_resolve',
    title: 'Approve or deny',
    description: 'Approves or denies a pending approval request; the first decision wins.',
    scope: 'operator.approvals',
    input: { approval_id: Id, decision: z.enum(['approve', 'deny']), reason: z.string().trim().max(500).optional() },
    run: async (x, a) => ({ data: { approval: await x.resolveApproval(a.approval_id, a.decision, a.reason) } }),
  }),
  tool({
    name: 'audit_query',
    title: 'Query the audit log',
    description: 'Audit entries, newest first. `action` may end in `.*` (e.g. command.*).',
    scope: 'operator.admin',
    readOnly: true,
    input: {
      action: z.string().trim().max(128).optional(),
      actor_id: z.string().trim().max(128).optional(),
      target_id: z.string().trim().max(128).optional(),
      correlation_id: z.string().trim().max(64).optional(),
      result: z.enum(['success', 'failure']).optional(),
      since: z.iso.datetime({ offset: true }).optional(),
      until: z.iso.datetime({ offset: true }).optional(),
      page: z.number().int().min(1).default(1),
      per_page: z.number().int().min(1).max(500).default(50),
    },
    run: async (x, a) => {
      const { items, total } = await x.queryAudit(a);
      return { data: list(items, total) };
    },
  }),
  tool({
    name: 'pairing_list',
    title: 'List pairing requests',
    description: 'Devices asking to join the fleet (default: pending).',
    scope: 'operator.pairing',
    readOnly: true,
    input: { status: z.enum(['pending', 'approved', 'rejected', 'expired']).default('pending') },
    run: async (x, a) => ({ data: list(await x.listPairing(a.status)) }),
  }),
  tool({
    name: 'pairing_resolve',
    title: 'Approve or reject a pairing request',
    description: 'Lets a new device join (approve) or turns it away (reject).',
    scope: 'operator.pairing',
    input: { pairing_id: Id, decision: z.enum(['approve', 'reject']) },
    run: async (x, a) => ({ data: { pairing: await x.resolvePairing(a.pairing_id, a.decision) } }),
  }),
  tool({
    name: 'vault_status',
    title: 'Vault status',
    description: 'Whether the key vault is initialized and unlocked, and how many keys it holds (never values).',
    scope: 'operator.read',
    readOnly: true,
    input: {},
    run: async (x) => ({ data: (await x.vaultStatus()) as Record<string, unknown> }),
  }),
  tool({
    name: 'vault_list_keys',
    title: 'List vault keys',
    description: 'Provider keys in the vault: provider, key id, fingerprint, dates — never the values.',
    scope: 'operator.admin',
    readOnly: true,
    input: {},
    run: async (x) => ({ data: list(await x.vaultListKeys()) }),
  }),
  tool({
    name: 'client_request_task',
    title: 'Start an agent task',
    description: 'Spawns an AI agent (agent type from the hub config) for a task; keys come from the vault. Returns the task at once.',
    scope: 'operator.write',
    input: {
      agent_type: z.string().trim().min(1).max(32),
      description: z.string().trim().min(1).max(100_000),
      timeout_ms: z.number().int().min(100).max(86_400_000).optional(),
      target_satellite: z.string().trim().min(1).max(128).optional(),
    },
    run: async (x, a) => ({ data: { task: await x.createTask(a) } }),
  }),
  tool({
    name: 'client_task_status',
    title: 'Task status',
    description: 'Status, exit code and result of an agent task.',
    scope: 'operator.read',
    readOnly: true,
    input: { task_id: Id },
    run: async (x, a) => ({ data: { task: await x.getTask(a.task_id) } }),
  }),
  tool({
    name: 'client_task_output',
    title: 'Task output',
    description: 'Output chunks of an agent task from sequence number `since` (secrets masked).',
    scope: 'operator.read',
    readOnly: true,
    input: { task_id: Id, since: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(5000).default(1000) },
    run: async (x, a) => {
      const out = (await x.taskOutput(a.task_id, a.since, a.limit)) as { chunks?: { data: string }[] };
      return {
        data: out as Record<string, unknown>,
        text: `${JSON.stringify({ ...out, chunks: undefined })}\n${(out.chunks ?? []).map((c) => c.data).join('')}`,
      };
    },
  }),
  tool({
    name: 'client_list_tasks',
    title: 'List tasks',
    description: 'Agent tasks, newest first; `mine` limits to tasks started with this key.',
    scope: 'operator.read',
    readOnly: true,
    input: {
      mine: z.boolean().optional(),
      status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out']).optional(),
      agent_type: z.string().trim().max(32).optional(),
      page: z.number().int().min(1).default(1),
      per_page: z.number().int().min(1).max(500).default(50),
    },
    run: async (x, a) => {
      const { items, total } = await x.listTasks(a);
      return { data: list(items, total) };
    },
  }),
  tool({
    name: 'client_cancel_task',
    title: 'Cancel a task',
    description: 'Stops a running agent task (SIGTERM, then SIGKILL) and waits for it to end.',
    scope: 'operator.write',
    input: { task_id: Id },
    run: async (x, a) => ({ data: { task: await x.cancelTask(a.task_id) } }),
  }),
  ...(
    [
      ['chat_with_model', 'Chat with a chosen model', 'Chat with an explicit model `provider/model` (e.g. ollama/llama3.2, openai/gpt-4o-mini).', 'explicit'],
      ['chat_smart', 'Chat (router picks the model)', 'The chat router picks the model from the request (short → local, code → code model, …).', 'smart'],
      ['chat_local', 'Chat with a local model', 'Only local models (Ollama).', 'local'],
      ['chat_cloud', 'Chat with a cloud model', 'Only cloud providers (keys from the vault).', 'cloud'],
    ] as const
  ).map(([name, title, description, mode]) =>
    tool({
      name,
      title,
      description,
      scope: 'operator.write',
      input: mode === 'explicit' ? { model: z.string().trim().min(1).max(200), ...ChatShape } : ChatShape,
      run: async (
        x,
        a: {
          model?: string;
          messages?: { role: 'system' | 'user' | 'assistant'; content: string }[];
          prompt?: string;
          max_tokens?: number;
          temperature?: number;
        },
      ) => {
        const r = (await x.chat({
          messages: chatMessages(a),
          mode: mode === 'explicit' ? 'smart' : mode,
          ...(a.model ? { model: a.model } : {}),
          max_tokens: a.max_tokens,
          temperature: a.temperature,
        })) as { text?: string; model?: string };
        return { data: r as Record<string, unknown>, text: `${r.text ?? ''}\n\n(model: ${r.model ?? '?'})` };
      },
    }),
  ),
];

/** Tools a caller with these scopes (and, for clients, this tool list) may use. */
export function allowedTools(scopes: McpCaller['scopes'], names?: readonly string[]): HiveTool[] {
  return HIVE_TOOLS.filter((t) => hasScope(scopes, t.scope) && (!names?.length || names.includes(t.name)));
}

function errorOf(err: unknown): { code: string; message: string; details?: Record<string, unknown> | undefined } {
  if (err instanceof HiveError) return { code: err.code, message: err.message, details: err.details };
  return { code: 'INTERNAL_ERROR', message: err instanceof Error ? err.message : String(err) };
}

/** Arguments as the audit keeps them: small ones whole, large ones (chat text) cut down. */
function auditArgs(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    const json = JSON.stringify(v) ?? '';
    out[k] = json.length <= 300 ? v : typeof v === 'string' ? `${v.slice(0, 200)}… (${v.length} chars)` : `(${json.length} bytes)`;
  }
  return out;
}

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v });

export interface HiveMcpOptions {
  caller: McpCaller;
  executor: HiveExecutor;
  version: string;
}

/**
 * An McpServer offering exactly what the caller's scopes allow: tools, resources
 * (`hive://satellites`, `hive://satellites/{id}`, `hive://audit/recent`) and prompts
 * (`diagnose-satellite`, `fleet-report`). Every tool call, resource read and prompt is audited
 * through the executor as actor type `mcp`.
 */
export function createHiveMcpServer({ caller, executor: x, version }: HiveMcpOptions): McpServer {
  const server = new McpServer(
    { name: 'hive', title: 'Hive fleet control plane', version },
    {
      instructions:
        'Hive operates a fleet of machines (satellites). Start with satellites_list; satellite_exec runs catalog commands such as system.health, logs.collect or system.run. Some commands wait for a person’s approval.',
    },
  );
  const can = (s: Scope) => hasScope(caller.scopes, s);

  for (const t of allowedTools(caller.scopes, caller.allowedTools)) {
    const cb = async (args: Record<string, unknown>): Promise<CallToolResult> => {
      try {
        const out = await t.run(x, args);
        const structured = asRecord(out.data);
        await x.audit({ kind: 'tool', name: t.name, result: out.isError ? 'failure' : 'success', args: auditArgs(args) });
        return {
          content: [{ type: 'text', text: out.text ?? JSON.stringify(structured, null, 2) }],
          structuredContent: structured,
          ...(out.isError ? { isError: true } : {}),
        };
      } catch (err) {
        const e = errorOf(err);
        await x.audit({ kind: 'tool', name: t.name, result: 'failure', error: e, args: auditArgs(args) });
        return { content: [{ type: 'text', text: `${e.code}: ${e.message}` }], structuredContent: { error: e }, isError: true };
      }
    };
    server.registerTool(
      t.name,
      {
        title: t.title,
        description: `${t.description} (scope ${t.scope})`,
        inputSchema: t.input,
        annotations: { title: t.title, readOnlyHint: t.readOnly, openWorldHint: false },
      },
      cb as never,
    );
  }

  const audited = async <T>(kind: 'resource' | 'prompt', name: string, fn: () => Promise<T>): Promise<T> => {
    try {
      const r = await fn();
      await x.audit({ kind, name, result: 'success' });
      return r;
    } catch (err) {
      await x.audit({ kind, name, result: 'failure', error: errorOf(err) });
      throw err;
    }
  };
  const json = (uri: string, v: unknown): ReadResourceResult => ({ contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(v, null, 2) }] });

  if (can('operator.read')) {
    server.registerResource(
      'satellites',
      'hive://satellites',
      { title: 'Satellites', description: 'The fleet: every satellite with status and tags', mimeType: 'application/json' },
      (uri) => audited('resource', uri.href, async () => json(uri.href, (await x.listSatellites({ page: 1, per_page: 500 })).items)),
    );
    server.registerResource(
      'satellite',
      new ResourceTemplate('hive://satellites/{id}', {
        list: async () => {
          const { items } = await x.listSatellites({ page: 1, per_page: 500 });
          return {
            resources: (items as { id: string; slug: string; status: string }[]).map((s) => ({
              uri: `hive://satellites/${s.id}`,
              name: s.slug,
              description: `${s.slug} (${s.status})`,
              mimeType: 'application/json',
            })),
          };
        },
      }),
      { title: 'Satellite', description: 'One satellite with its latest metrics', mimeType: 'application/json' },
      (uri, vars) =>
        audited('resource', uri.href, async () => {
          const id = String(Array.isArray(vars.id) ? vars.id[0] : vars.id);
          const [satellite, metrics] = await Promise.all([x.getSatellite(id), x.metrics(id, 1)]);
          return json(uri.href, { satellite, latest: (metrics as { latest?: unknown }).latest ?? null });
        }),
    );
  }
  if (can('operator.admin')) {
    server.registerResource(
      'audit-recent',
      'hive://audit/recent',
      { title: 'Recent audit entries', description: 'The newest 50 audit entries', mimeType: 'application/json' },
      (uri) => audited('resource', uri.href, async () => json(uri.href, (await x.queryAudit({ page: 1, per_page: 50 })).items)),
    );
  }

  if (can('operator.read')) {
    server.registerPrompt(
      'diagnose-satellite',
      {
        title: 'Diagnose a satellite',
        description: 'Gathers the satellite’s facts, a live health check, metrics history and recent errors into a diagnosis prompt',
        argsSchema: { id: z.string().trim().min(1).max(128).describe('Satellite id, slug or name') },
      },
      ({ id }) =>
        audited('prompt', 'diagnose-satellite', async (): Promise<GetPromptResult> => {
          const [satellite, metrics] = await Promise.all([x.getSatellite(id), x.metrics(id, 10)]);
          const sat = satellite as { id: string; status: string };
          // A live health check when the key may run commands and the satellite is connected.
          let health: unknown = '(no live check: needs operator.write and an online satellite)';
          if (can('operator.write') && sat.status === 'online') {
            try {
              const [j] = await waitJobs(x, [await x.exec(sat.id, { command: 'system.health', params: {} })], 10_000);
              health = j?.error ? `${j.error.code}: ${j.error.message}` : (j?.result ?? `job ${j?.id} still ${j?.state}`);
            } catch (err) {
              health = `${errorOf(err).code}: ${errorOf(err).message}`;
            }
          }
          const [failedJobs, timedOut] = await Promise.all([
            x.listJobs({ satellite: sat.id, state: 'failed', page: 1, per_page: 10 }),
            x.listJobs({ satellite: sat.id, state: 'timed_out', page: 1, per_page: 5 }),
          ]);
          const errors: unknown[] = [...failedJobs.items, ...timedOut.items].map((j) => ({
            job_id: j.id,
            command: j.command,
            state: j.state,
            error: j.error,
            finished_at: j.finished_at,
          }));
          if (can('operator.admin')) {
            errors.push(...(await x.queryAudit({ target_id: sat.id, result: 'failure', page: 1, per_page: 10 })).items);
          }
          return {
            description: `Diagnose ${id}`,
            messages: [
              {
                role: 'user',
                content: {
                  type: 'text',
                  text: [
                    `Diagnose the satellite "${id}" of my Hive fleet. Explain what looks wrong, how sure you are, and propose concrete next steps (Hive tools or commands to run).`,
                    '',
                    '## Satellite',
                    JSON.stringify(satellite, null, 2),
                    '',
                    '## Health (live system.health)',
                    typeof health === 'string' ? health : JSON.stringify(health, null, 2),
                    '',
                    '## Metrics (status reports, latest first)',
                    JSON.stringify(metrics, null, 2),
                    '',
                    '## Recent errors (failed and timed-out jobs, failed actions)',
                    errors.length ? JSON.stringify(errors, null, 2) : 'none recorded',
                  ].join('\n'),
                },
              },
            ],
          };
        }),
    );
    server.registerPrompt(
      'fleet-report',
      { title: 'Fleet report', description: 'A status report of the whole fleet: online/offline, tags, pending approvals' },
      () =>
        audited('prompt', 'fleet-report', async (): Promise<GetPromptResult> => {
          const { items, total } = await x.listSatellites({ page: 1, per_page: 500 });
          const sats = items as { slug: string; status: string; tags: string[]; last_seen: string | null; os: string | null }[];
          const online = sats.filter((s) => s.status === 'online').length;
          const approvals = can('operator.approvals') ? await x.listApprovals('pending') : null;
          return {
            description: 'Fleet report',
            messages: [
              {
                role: 'user',
                content: {
                  type: 'text',
                  text: [
                    'Write a concise status report of my Hive fleet: what is healthy, what needs attention (offline machines, pending approvals), and suggested actions.',
                    '',
                    `Satellites: ${total} (${online} online, ${total - online} offline)`,
                    ...sats.map(
                      (s) =>
                        `- ${s.slug}: ${s.status}, os ${s.os ?? '?'}, last seen ${s.last_seen ?? 'never'}${s.tags.length ? `, tags ${s.tags.join(', ')}` : ''}`,
                    ),
                    '',
                    approvals
                      ? `Pending approvals: ${approvals.length}\n${JSON.stringify(approvals, null, 2)}`
                      : 'Pending approvals: (not visible with this key)',
                  ].join('\n'),
                },
              },
            ],
          };
        }),
    );
  }
  return server;
}

/**
 * Answers calls to tools the caller may not use with a clear FORBIDDEN result (instead of the
 * SDK's "not found") and audits the refusal. Call after `server.connect(transport)`.
 */
export function guardTransport(transport: Transport, caller: McpCaller, x: HiveExecutor): void {
  const inner = transport.onmessage;
  if (!inner) throw new Error('guardTransport: connect the server first');
  const known = new Map(HIVE_TOOLS.map((t) => [t.name, t]));
  transport.onmessage = (msg: JSONRPCMessage, extra) => {
    const m = msg as { id?: string | number; method?: string; params?: { name?: unknown } };
    if (m.method === 'tools/call' && m.id !== undefined && typeof m.params?.name === 'string') {
      const t = known.get(m.params.name);
      if (t && !hasScope(caller.scopes, t.scope)) {
        const error = { code: 'FORBIDDEN', message: `Tool ${t.name} needs scope ${t.scope}`, details: { required: t.scope } };
        const id = m.id;
        // Audited before the answer goes out, so the trail never lags behind what the client saw.
        void x
          .audit({ kind: 'tool', name: t.name, result: 'failure', error })
          .then(() =>
            transport.send({
              jsonrpc: '2.0',
              id,
              result: { content: [{ type: 'text', text: `FORBIDDEN: ${error.message}` }], structuredContent: { error }, isError: true },
            }),
          )
          .catch(() => {});
        return;
      }
    }
    inner.call(transport, msg, extra);
  };
}
