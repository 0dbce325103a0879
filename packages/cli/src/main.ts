import { agentCommand } from '@hive/agent';
import { Command, Option } from 'commander';
import { ApiError, api, type CliAuth, type CliFlags, resolveAuth, saveAuth } from './api.js';
import { addAiCommands } from './commands/ai.js';
import { addAuditVerify } from './commands/audit.js';
import { addFleetCommands, type BatchResult, formatBatch, parseDuration } from './commands/fleet.js';
import { addMcpCommands } from './commands/mcp.js';
import { addSessionCommands } from './commands/sessions.js';
import type { ServerFlags } from './start.js';

// The hub's dependencies load only for commands that run it, so everyday commands start fast.
const runServer = async (o: ServerFlags, opts: { withAgent: boolean }) => (await import('./start.js')).runServer(o, opts);
const printFingerprint = async (o: ServerFlags & { json?: boolean }) => (await import('./start.js')).printFingerprint(o);

const VERSION = '0.1.0';

interface Sat {
  id: string;
  slug: string;
  name: string;
  status: string;
  hostname: string | null;
  os: string | null;
  arch: string | null;
  tags: string[];
  roles: string[];
  last_seen: string | null;
  agent_version: string | null;
  commands: string[];
}

function out(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const enc = encodeURIComponent;

function authed(cmd: Command): CliAuth {
  return resolveAuth(cmd.optsWithGlobals() as CliFlags);
}

function serverOptions(cmd: Command, withPrint = true): Command {
  cmd
    .option('--port <n>', 'port to listen on (env HIVE_PORT, default 7420)')
    .option('--host <addr>', 'address to bind (env HIVE_HOST, default 127.0.0.1)')
    .option('--data <dir>', 'data directory (env HIVE_DATA_DIR, default ./data)')
    .option('--config <file>', 'server.yaml (env HIVE_CONFIG)')
    .option('--tls', 'serve HTTPS/WSS only (env HIVE_TLS; default: on unless bound to loopback)')
    .option('--no-tls', 'serve plain HTTP/WS')
    .option('--tls-cert <file>', 'certificate (PEM) instead of the self-signed one (env HIVE_TLS_CERT_FILE)')
    .option('--tls-key <file>', 'its private key (PEM) (env HIVE_TLS_KEY_FILE)');
  return withPrint ? cmd.option('--print-config', 'print the effective configuration (secrets redacted) and exit') : cmd;
}

export function buildCli(): Command {
  const program = new Command('hive')
    .description('Hive: self-hosted control plane for fleets of machines and AI agents')
    .version(VERSION)
    .option('--url <url>', 'hub URL (env HIVE_URL, or `hive login`)')
    .option('--api-key <key>', 'API key (env HIVE_API_KEY, or `hive login`)')
    .option('--hub-fingerprint <sha256>', "pin the hub's TLS certificate: sha256:AB:CD:… from `hive server fingerprint` (env HIVE_HUB_FINGERPRINT)")
    .option('--ca-file <file>', "CA (PEM) that signed the hub's certificate, instead of the system CAs (env HIVE_CA_FILE)")
    .showHelpAfterError();

  const server = serverOptions(program.command('server').description('Run the hub (REST, WebSocket, status page)')).action((o: ServerFlags) =>
    runServer(o, { withAgent: false }),
  );
  serverOptions(
    server
      .command('fingerprint')
      .description("Print the SHA-256 fingerprint of the hub's TLS certificate (creates the self-signed certificate if there is none yet)"),
    false,
  )
    .option('--json', 'JSON output')
    .action((_o: unknown, cmd: Command) => printFingerprint(cmd.optsWithGlobals() as ServerFlags & { json?: boolean }));
  serverOptions(program.command('start').description('Run the hub plus a local agent that pairs over loopback')).action((o: ServerFlags) =>
    runServer(o, { withAgent: true }),
  );
  program.addCommand(agentCommand('agent').description('Run a hive-agent (same as `hive-agent`)'));

  program
    .command('login')
    .description(
      'Check and store --url and --api-key for later commands (~/.config/hive/cli.json, mode 0600). For an https hub with a self-signed certificate, the fingerprint given with --hub-fingerprint, or else the one seen now (trust on first use), is pinned too',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals() as CliFlags;
      if (!g.url) throw new ApiError(0, 'INVALID_PARAMETERS', 'Give --url, e.g. hive login --url http://127.0.0.1:7420 --api-key hive_…');
      const resolved = resolveAuth(g);
      const auth: CliAuth = { ...resolved, apiKey: g.apiKey ?? process.env.HIVE_API_KEY };
      if (!auth.apiKey) throw new ApiError(0, 'AUTH_REQUIRED', 'Give --api-key or set HIVE_API_KEY');
      let seen: { fingerprint: string; authorized: boolean } | undefined;
      await api(auth, 'GET', '/api/v1/satellites?per_page=1', undefined, { tofu: true, onSeen: (s) => (seen = s) });
      if (seen && !seen.authorized && !auth.hubFingerprint) {
        auth.hubFingerprint = seen.fingerprint;
        process.stdout.write(
          `The hub's certificate is not CA-signed; pinned its fingerprint\n  ${seen.fingerprint}\nCompare it with \`hive server fingerprint\` on the hub. Later commands refuse any other certificate.\n`,
        );
      }
      process.stdout.write(`Logged in to ${auth.url}; saved to ${saveAuth(auth)}\n`);
    });

  program
    .command('keygen')
    .description('Print a fresh API key in Hive format (e.g. for ADMIN_API_KEY)')
    .action(async () => {
      const { mintToken } = await import('@hive/server');
      process.stdout.write(`${mintToken('hive').token}\n`);
    });

  // ------------------------------------------------------------------ satellites
  const sats = program.command('satellites').alias('sats').description('List and manage satellites');
  sats
    .command('list', { isDefault: true })
    .description('List satellites')
    .addOption(new Option('--status <s>', 'online or offline').choices(['online', 'offline']))
    .option('--tag <tag>', 'only satellites with this tag')
    .option('-q, --query <text>', 'search name, slug, hostname, id')
    .option('--page <n>', 'page', '1')
    .option('--per-page <n>', 'rows per page', '100')
    .option('--json', 'JSON output')
    .action(async (o: { status?: string; tag?: string; query?: string; page: string; perPage: string; json?: boolean }, cmd: Command) => {
      const qs = new URLSearchParams({ page: o.page, per_page: o.perPage });
      if (o.status) qs.set('status', o.status);
      if (o.tag) qs.set('tag', o.tag);
      if (o.query) qs.set('q', o.query);
      const res = await api<Sat[]>(authed(cmd), 'GET', `/api/v1/satellites?${qs}`);
      out(!!o.json, res, () => {
        if (res.data.length === 0) return 'No satellites.';
        const rows = [['SLUG', 'STATUS', 'NAME', 'HOST', 'OS', 'TAGS', 'LAST SEEN', 'ID']];
        for (const s of res.data)
          rows.push([s.slug, s.status, s.name, s.hostname ?? '', `${s.os ?? ''}/${s.arch ?? ''}`, s.tags.join(','), s.last_seen ?? '', s.id.slice(0, 12)]);
        const p = res.pagination;
        return `${table(rows)}${p && p.total_pages > 1 ? `\n(page ${p.page}/${p.total_pages}, ${p.total} total)` : ''}`;
      });
    });
  sats
    .command('get <satellite>')
    .description('Show one satellite (id, slug or unique name)')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { json?: boolean }, cmd: Command) => {
      const res = await api<Sat>(authed(cmd), 'GET', `/api/v1/satellites/${enc(ref)}`);
      out(!!o.json, res.data, () =>
        Object.entries(res.data)
          .map(([k, v]) => `${k.padEnd(14)} ${Array.isArray(v) ? v.join(', ') : (v ?? '')}`)
          .join('\n'),
      );
    });
  sats
    .command('update <satellite>')
    .description('Rename or retag a satellite')
    .option('--name <name>', 'new display name')
    .option('--tags <list>', 'comma-separated tags (replaces all)')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { name?: string; tags?: string; json?: boolean }, cmd: Command) => {
      const body: Record<string, unknown> = {};
      if (o.name) body.name = o.name;
      if (o.tags !== undefined)
        body.tags = o.tags
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
      const res = await api<Sat>(authed(cmd), 'PUT', `/api/v1/satellites/${enc(ref)}`, body);
      out(!!o.json, res.data, () => `Updated ${res.data.slug}: name=${res.data.name} tags=${res.data.tags.join(',')}`);
    });
  sats
    .command('rm <satellite>')
    .alias('delete')
    .description('Remove a satellite: revokes its token and closes its connection')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string }>(authed(cmd), 'DELETE', `/api/v1/satellites/${enc(ref)}`);
      out(!!o.json, res.data, () => `Removed ${res.data.id}`);
    });

  // ------------------------------------------------------------------ pairing
  const pairing = program.command('pairing').description('Approve or reject devices asking to join');
  pairing
    .command('list', { isDefault: true })
    .description('List pairing requests (pending by default)')
    .addOption(new Option('--status <s>', 'filter').choices(['pending', 'approved', 'rejected', 'expired', 'all']).default('pending'))
    .option('--json', 'JSON output')
    .action(async (o: { status: string; json?: boolean }, cmd: Command) => {
      const qs = o.status === 'all' ? '' : `?status=${o.status}`;
      const res = await api<
        {
          id: string;
          device_id: string;
          role: string;
          client: { hostname?: string; displayName?: string; name?: string };
          remote_ip: string;
          status: string;
          created_at: string;
        }[]
      >(authed(cmd), 'GET', `/api/v1/pairing${qs}`);
      out(!!o.json, res.data, () => {
        if (res.data.length === 0) return `No ${o.status === 'all' ? '' : `${o.status} `}pairing requests.`;
        const rows = [['ID', 'STATUS', 'ROLE', 'NAME', 'FROM', 'DEVICE', 'CREATED']];
        for (const r of res.data)
          rows.push([
            r.id,
            r.status,
            r.role,
            r.client.displayName ?? r.client.hostname ?? r.client.name ?? '',
            r.remote_ip ?? '',
            r.device_id.slice(0, 16),
            r.created_at,
          ]);
        return table(rows);
      });
    });
  for (const verb of ['approve', 'reject'] as const) {
    pairing
      .command(`${verb} <id>`)
      .description(`${verb === 'approve' ? 'Approve' : 'Reject'} a pairing request`)
      .option('--json', 'JSON output')
      .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
        const res = await api<{ id: string; status: string; device_id: string }>(authed(cmd), 'POST', `/api/v1/pairing/${enc(id)}/${verb}`);
        out(!!o.json, res.data, () => `${res.data.id}: ${res.data.status} (device ${res.data.device_id.slice(0, 16)})`);
      });
  }

  // ------------------------------------------------------------------ exec
  program
    .command('exec <satellite> [argv...]')
    .description(
      'Run a command: `hive exec web-1 -- uname -a` (system.run, no shell), or --command NAME --params JSON. Target: id, slug, name, a,b,c, tag:NAME or group:NAME',
    )
    .option('--command <name>', 'catalog command (default system.run when argv is given)')
    .option('--params <json>', 'params for --command as JSON', '{}')
    .option('--timeout <ms>', 'timeout in milliseconds', '30000')
    .option('--cwd <dir>', 'working directory for system.run')
    .option('--queue <duration>', 'if the satellite is offline, queue the job this long (e.g. 30m, 2h)')
    .option('--json', 'print the whole job (or batch) as JSON')
    .action(
      async (
        ref: string,
        argv: string[],
        o: { command?: string; params: string; timeout: string; cwd?: string; queueUntil?: string; queue?: string; json?: boolean },
        cmd: Command,
      ) => {
        o.queueUntil = o.queue;
        let command = o.command ?? 'system.run';
        let params: Record<string, unknown>;
        if (argv.length > 0 && command === 'system.run') params = { argv, ...(o.cwd ? { cwd: o.cwd } : {}) };
        else {
          try {
            params = JSON.parse(o.params) as Record<string, unknown>;
          } catch {
            throw new ApiError(0, 'INVALID_PARAMETERS', '--params is not valid JSON');
          }
          if (!o.command && argv.length === 0) command = 'system.info';
        }
        const timeout = Number(o.timeout);
        if (!Number.isInteger(timeout) || timeout < 100) throw new ApiError(0, 'INVALID_PARAMETERS', '--timeout must be an integer ≥ 100');
        const body = {
          command,
          params,
          timeout_ms: timeout,
          ...(o.queueUntil ? { queue_until: new Date(Date.now() + parseDuration(o.queueUntil)).toISOString() } : {}),
        };
        const many = /^(tag|group):(.+)$/.exec(ref) ?? (ref.includes(',') ? ['', 'list', ref] : null);
        if (many) {
          const [, kind, value] = many as [string, string, string];
          const target = kind === 'tag' ? { tag: value } : kind === 'group' ? { group: value } : { satellites: value.split(',').filter(Boolean) };
          const res = await api<BatchResult>(authed(cmd), 'POST', '/api/v1/exec', { target, ...body });
          if (o.json) process.stdout.write(`${JSON.stringify(res.data, null, 2)}\n`);
          else process.stdout.write(`${formatBatch(res.data)}\n`);
          const s = res.data.summary;
          process.exitCode = s.succeeded === s.total ? 0 : 1;
          return;
        }
        const res = await api<{ id: string; state: string; result: { exitCode?: number | null; stdout?: string; stderr?: string } | null }>(
          authed(cmd),
          'POST',
          `/api/v1/satellites/${enc(ref)}/exec`,
          body,
        );
        const job = res.data;
        if (o.json) process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
        else if (job.state === 'queued') process.stdout.write(`Queued as ${job.id}; it runs when the satellite connects.\n`);
        else if (command === 'system.run' && job.result) {
          if (job.result.stdout) process.stdout.write(job.result.stdout);
          if (job.result.stderr) process.stderr.write(job.result.stderr);
        } else process.stdout.write(`${JSON.stringify(job.result, null, 2)}\n`);
        if (command === 'system.run' && job.state !== 'queued') process.exitCode = job.result?.exitCode ?? 1;
      },
    );

  // ------------------------------------------------------------------ audit
  const audit = program
    .command('audit')
    .description('Query the audit log (newest first); `hive audit verify` checks its hash chains')
    .option('--action <a>', 'action, or a family like pairing.*')
    .option('--target <id>', 'target id')
    .option('--correlation <id>', 'correlation id')
    .addOption(new Option('--result <r>', 'success or failure').choices(['success', 'failure']))
    .option('--limit <n>', 'entries', '50')
    .option('--json', 'JSON output')
    .action(async (o: { action?: string; target?: string; correlation?: string; result?: string; limit: string; json?: boolean }, cmd: Command) => {
      const qs = new URLSearchParams({ per_page: o.limit });
      if (o.action) qs.set('action', o.action);
      if (o.target) qs.set('target_id', o.target);
      if (o.correlation) qs.set('correlation_id', o.correlation);
      if (o.result) qs.set('result', o.result);
      const res = await api<
        { timestamp: string; actor: { type: string; name: string }; action: string; target: { id: string } | null; result: string; error: string | null }[]
      >(authed(cmd), 'GET', `/api/v1/audit/logs?${qs}`);
      out(!!o.json, res.data, () => {
        const rows = [['TIME', 'ACTOR', 'ACTION', 'TARGET', 'RESULT']];
        for (const e of res.data)
          rows.push([e.timestamp, `${e.actor.type}:${e.actor.name}`, e.action, e.target?.id.slice(0, 16) ?? '', e.result + (e.error ? ` (${e.error})` : '')]);
        return table(rows);
      });
    });
  addAuditVerify(audit, authed);

  addFleetCommands(program, authed);
  addAiCommands(program);
  addMcpCommands(program);
  addSessionCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof ApiError) {
      process.stderr.write(`hive: ${err.code}: ${err.message}\n`);
      if (err.details && Object.keys(err.details).length) process.stderr.write(`  ${JSON.stringify(err.details)}\n`);
      process.exit(err.status === 0 && err.code === 'HUB_UNREACHABLE' ? 69 : 1);
    }
    throw err;
  }
}
