import { type Command, Option } from 'commander';
import { ApiError, api, type CliAuth } from '../api.js';

export interface BatchResult {
  batch_id: string;
  command: string;
  results: { satellite_id: string; slug: string; job_id: string | null; state: string; result: any; error: { code: string; message: string } | null }[];
  summary: Record<string, number> & { total: number; succeeded: number };
}

const enc = encodeURIComponent;

/** `30s`, `15m`, `2h`, `1d` → ms. */
export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) throw new ApiError(0, 'INVALID_PARAMETERS', `Not a duration: ${s} (use e.g. 30s, 15m, 2h, 1d)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
}

export function formatBatch(b: BatchResult): string {
  const lines = b.results.map((r) => {
    const first = r.error
      ? `${r.error.code}: ${r.error.message}`
      : typeof r.result?.stdout === 'string'
        ? r.result.stdout.split('\n')[0]
        : r.result
          ? JSON.stringify(r.result).slice(0, 80)
          : '';
    const exit = typeof r.result?.exitCode === 'number' ? ` exit=${r.result.exitCode}` : '';
    return `${r.slug.padEnd(24)} ${r.state.padEnd(16)}${exit} ${first}`.trimEnd();
  });
  const s = b.summary;
  const parts = Object.entries(s)
    .filter(([k, v]) => k !== 'total' && v > 0)
    .map(([k, v]) => `${v} ${k.replace('_', ' ')}`);
  lines.push(`${s.total} targets: ${parts.join(', ') || 'nothing ran'}  (batch ${b.batch_id})`);
  return lines.join('\n');
}

function out(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

interface Approval {
  id: string;
  job_id: string;
  satellite_id: string;
  command: string;
  params: unknown;
  reason: string;
  requested_by: string;
  status: string;
  created_at: string;
  expires_at: string;
}

const describeApproval = (a: Approval) =>
  `${a.id}  ${a.status.padEnd(8)} ${a.command} ${JSON.stringify(a.params)} on ${a.satellite_id.slice(0, 12)}  (${a.reason}; by ${a.requested_by}; expires ${a.expires_at})`;

/** approvals, groups, claims, jobs: the fleet-wide operator commands. */
export function addFleetCommands(program: Command, authed: (cmd: Command) => CliAuth): void {
  const approvals = program.command('approvals').description('Decide commands waiting for approval');
  approvals
    .command('list', { isDefault: true })
    .description('List approvals (pending by default)')
    .addOption(new Option('--status <s>', 'filter').choices(['pending', 'approved', 'denied', 'expired']).default('pending'))
    .option('--json', 'JSON output')
    .action(async (o: { status: string; json?: boolean }, cmd: Command) => {
      const res = await api<Approval[]>(authed(cmd), 'GET', `/api/v1/approvals?status=${o.status}`);
      out(!!o.json, res.data, () => (res.data.length ? res.data.map(describeApproval).join('\n') : `No ${o.status} approvals.`));
    });
  for (const verb of ['approve', 'deny'] as const) {
    approvals
      .command(`${verb} <id>`)
      .description(`${verb === 'approve' ? 'Approve' : 'Deny'} a pending command; the first decision wins`)
      .option('--reason <text>', 'why (kept in the audit log)')
      .option('--json', 'JSON output')
      .action(async (id: string, o: { reason?: string; json?: boolean }, cmd: Command) => {
        const res = await api<Approval>(authed(cmd), 'POST', `/api/v1/approvals/${enc(id)}/${verb}`, o.reason ? { reason: o.reason } : {});
        out(!!o.json, res.data, () => `${res.data.id}: ${res.data.status}`);
      });
  }
  approvals
    .command('watch')
    .description('Prompt for each new approval in this terminal (y = approve, n = deny, Enter = skip)')
    .action(async (_o: unknown, cmd: Command) => {
      const auth = authed(cmd);
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const seen = new Set<string>();
      process.stdout.write('Watching for approvals; Ctrl-C to stop.\n');
      for (;;) {
        const res = await api<Approval[]>(auth, 'GET', '/api/v1/approvals?status=pending');
        for (const a of res.data) {
          if (seen.has(a.id)) continue;
          seen.add(a.id);
          const answer = (await rl.question(`${describeApproval(a)}\n  approve? [y/n/Enter] `)).trim().toLowerCase();
          if (answer !== 'y' && answer !== 'n') continue;
          try {
            const r = await api<Approval>(auth, 'POST', `/api/v1/approvals/${enc(a.id)}/${answer === 'y' ? 'approve' : 'deny'}`, {});
            process.stdout.write(`  → ${r.data.status}\n`);
          } catch (err) {
            process.stdout.write(`  → ${(err as ApiError).code}: ${(err as Error).message}\n`);
          }
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    });

  const groups = program.command('groups').description('Named sets of satellites (members and/or tags)');
  groups
    .command('list', { isDefault: true })
    .description('List groups')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; name: string; members: string[]; tags: string[] }[]>(authed(cmd), 'GET', '/api/v1/groups');
      out(
        !!o.json,
        res.data,
        () => res.data.map((g) => `${g.name.padEnd(20)} members=${g.members.length} tags=${g.tags.join(',')}`).join('\n') || 'No groups.',
      );
    });
  groups
    .command('add <name>')
    .description('Create a group')
    .option('--members <list>', 'comma-separated satellites (id, slug or name)')
    .option('--tags <list>', 'comma-separated tags; satellites with any of them are members')
    .option('--description <text>', 'description')
    .option('--json', 'JSON output')
    .action(async (name: string, o: { members?: string; tags?: string; description?: string; json?: boolean }, cmd: Command) => {
      const split = (v?: string) =>
        v
          ? v
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean)
          : undefined;
      const res = await api<{ id: string; name: string }>(authed(cmd), 'POST', '/api/v1/groups', {
        name,
        ...(o.description ? { description: o.description } : {}),
        ...(o.members ? { members: split(o.members) } : {}),
        ...(o.tags ? { tags: split(o.tags) } : {}),
      });
      out(!!o.json, res.data, () => `Created group ${res.data.name} (${res.data.id})`);
    });
  groups
    .command('rm <name>')
    .description('Delete a group')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'DELETE', `/api/v1/groups/${enc(name)}`);
      process.stdout.write(`Deleted group ${name}\n`);
    });

  program
    .command('claims <satellite>')
    .description("Show a satellite's claimed commands and local policy; --approve accepts pending claims")
    .option('--approve', 'approve all pending claims')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { approve?: boolean; json?: boolean }, cmd: Command) => {
      const res = o.approve
        ? await api<Record<string, any>>(authed(cmd), 'POST', `/api/v1/satellites/${enc(ref)}/claims/approve`, {})
        : await api<Record<string, any>>(authed(cmd), 'GET', `/api/v1/satellites/${enc(ref)}`);
      const s = res.data;
      out(!!o.json, { commands: s.commands, approved_commands: s.approved_commands, pending_claims: s.pending_claims, policy: s.policy }, () =>
        [
          `claimed:  ${s.commands.join(', ')}`,
          `approved: ${s.approved_commands.join(', ')}`,
          `pending:  ${s.pending_claims.join(', ') || '—'}`,
          `policy:   ${JSON.stringify(s.policy)}`,
        ].join('\n'),
      );
    });

  const schedule = program.command('schedule').description('Run a command on a target set on a cron schedule');
  schedule
    .command('list', { isDefault: true })
    .description('List schedules')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<
        { id: string; name: string; cron: string; timezone: string; command: string; target: unknown; next_run_at: string; last_run_at: string | null }[]
      >(authed(cmd), 'GET', '/api/v1/schedules');
      out(
        !!o.json,
        res.data,
        () =>
          res.data.map((x) => `${x.name.padEnd(20)} "${x.cron}" ${x.timezone}  ${x.command} ${JSON.stringify(x.target)}  next ${x.next_run_at}`).join('\n') ||
          'No schedules.',
      );
    });
  schedule
    .command('add <name>')
    .description('Add a schedule: hive schedule add nightly --cron "0 3 * * *" --tz Europe/Berlin --target tag:web -- df -h')
    .requiredOption('--cron <expr>', 'cron expression (5 or 6 fields)')
    .requiredOption('--tz <zone>', 'IANA time zone, e.g. UTC or Europe/Berlin (explicit on purpose)')
    .requiredOption('--target <t>', 'tag:NAME, group:NAME, or satellites a,b,c')
    .option('--command <name>', 'catalog command (default system.run with the argv after --)')
    .option('--params <json>', 'params for --command as JSON', '{}')
    .option('--timeout <ms>', 'timeout per run', '30000')
    .option('--json', 'JSON output')
    .argument('[argv...]')
    .action(
      async (
        name: string,
        argv: string[],
        o: { cron: string; tz: string; target: string; command?: string; params: string; timeout: string; json?: boolean },
        cmd: Command,
      ) => {
        const m = /^(tag|group):(.+)$/.exec(o.target);
        const target = m ? { [m[1] as string]: m[2] } : { satellites: o.target.split(',').filter(Boolean) };
        let params: unknown;
        try {
          params = argv.length && !o.command ? { argv } : JSON.parse(o.params);
        } catch {
          throw new ApiError(0, 'INVALID_PARAMETERS', '--params is not valid JSON');
        }
        const res = await api<{ id: string; next_run_at: string }>(authed(cmd), 'POST', '/api/v1/schedules', {
          name,
          cron: o.cron,
          timezone: o.tz,
          target,
          command: o.command ?? 'system.run',
          params,
          timeout_ms: Number(o.timeout),
        });
        out(!!o.json, res.data, () => `Added ${name} (${res.data.id}); next run ${res.data.next_run_at}`);
      },
    );
  schedule
    .command('remove <name>')
    .alias('rm')
    .description('Remove a schedule')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'DELETE', `/api/v1/schedules/${enc(name)}`);
      process.stdout.write(`Removed ${name}\n`);
    });

  const user = program.command('user').description('People who log in to the web UI and API (admin only)');
  user
    .command('list', { isDefault: true })
    .description('List users')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ username: string; role: string; disabled: boolean; last_login_at: string | null }[]>(authed(cmd), 'GET', '/api/v1/users');
      out(!!o.json, res.data, () =>
        res.data
          .map((u) => `${u.username.padEnd(20)} ${u.role.padEnd(9)} ${u.disabled ? 'disabled' : 'active'}  last login ${u.last_login_at ?? '—'}`)
          .join('\n'),
      );
    });
  const password = async (): Promise<string> => {
    if (process.env.HIVE_USER_PASSWORD) return process.env.HIVE_USER_PASSWORD;
    if (!process.stdin.isTTY) {
      let data = '';
      for await (const chunk of process.stdin) data += chunk;
      return data.replace(/\r?\n$/, '');
    }
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    // Hide what is typed.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
    process.stdout.write('Password: ');
    const pw = await rl.question('');
    rl.close();
    process.stdout.write('\n');
    return pw;
  };
  user
    .command('add <username>')
    .description('Create a user (password from HIVE_USER_PASSWORD, stdin, or a hidden prompt; never argv)')
    .addOption(new Option('--role <role>', 'global role').choices(['admin', 'operator', 'viewer']).default('viewer'))
    .option('--json', 'JSON output')
    .action(async (username: string, o: { role: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; username: string; role: string }>(authed(cmd), 'POST', '/api/v1/users', {
        username,
        password: await password(),
        role: o.role,
      });
      out(!!o.json, res.data, () => `Created ${res.data.username} (${res.data.role})`);
    });
  user
    .command('passwd <username>')
    .description('Set a new password for a user (they must change it at next login); ends their sessions')
    .action(async (username: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'PUT', `/api/v1/users/${enc(username)}`, { password: await password() });
      process.stdout.write(`Password of ${username} reset\n`);
    });
  user
    .command('role <username> <role>')
    .description("Change a user's role (admin, operator, viewer)")
    .action(async (username: string, role: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'PUT', `/api/v1/users/${enc(username)}`, { role });
      process.stdout.write(`${username} is now ${role}\n`);
    });
  user
    .command('remove <username>')
    .alias('rm')
    .description('Delete a user')
    .action(async (username: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'DELETE', `/api/v1/users/${enc(username)}`);
      process.stdout.write(`Removed ${username}\n`);
    });

  const apikey = program.command('apikey').description('API keys for scripts and integrations (admin only)');
  apikey
    .command('list', { isDefault: true })
    .description('List API keys (never their values)')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<
        { id: string; name: string; prefix: string; scopes: string[]; expires_at: string | null; revoked_at: string | null; last_used_at: string | null }[]
      >(authed(cmd), 'GET', '/api/v1/apikeys');
      out(!!o.json, res.data, () =>
        res.data
          .map(
            (k) =>
              `${k.prefix}…  ${k.name.padEnd(16)} ${k.revoked_at ? 'revoked' : 'active '} ${k.scopes.join(',')}  expires ${k.expires_at ?? 'never'}  last used ${k.last_used_at ?? '—'}`,
          )
          .join('\n'),
      );
    });
  apikey
    .command('create <name>')
    .description('Create a key; it is printed once')
    .requiredOption('--scopes <list>', 'comma-separated: operator.read, operator.write, operator.admin, operator.approvals, operator.pairing')
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h')
    .option('--project <id>', 'restrict the key to this project')
    .addOption(new Option('--role <role>', 'its role in --project').choices(['admin', 'member', 'reviewer']))
    .option('--json', 'JSON output')
    .action(async (name: string, o: { scopes: string; expires?: string; project?: string; role?: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; key: string; expires_at: string | null }>(authed(cmd), 'POST', '/api/v1/apikeys', {
        name,
        scopes: o.scopes
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
        ...(o.expires ? { expires_in: o.expires } : {}),
        ...(o.project ? { project: o.project } : {}),
        ...(o.role ? { role: o.role } : {}),
      });
      out(!!o.json, res.data, () => `${res.data.key}\n(shown once; id ${res.data.id}, expires ${res.data.expires_at ?? 'never'})`);
    });
  apikey
    .command('rotate <id>')
    .description('Replace a key with a new secret (same name, scopes, expiry); the old one stops at once')
    .option('--json', 'JSON output')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; key: string }>(authed(cmd), 'POST', `/api/v1/apikeys/${enc(id)}/rotate`);
      out(!!o.json, res.data, () => `${res.data.key}\n(shown once; id ${res.data.id})`);
    });
  apikey
    .command('revoke <id>')
    .description('Revoke a key; connections using it are closed')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'DELETE', `/api/v1/apikeys/${enc(id)}`);
      process.stdout.write(`Revoked ${id}\n`);
    });

  const client = program.command('client').description('Client credentials for desktop/mobile/cli_agent clients (seed 000 §4)');
  client
    .command('list', { isDefault: true })
    .description('List clients')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ client_id: string; role: string; allowed_tools: string[]; revoked_at: string | null }[]>(authed(cmd), 'GET', '/api/v1/clients');
      out(
        !!o.json,
        res.data,
        () =>
          res.data
            .map((c) => `${c.client_id.padEnd(20)} ${c.role.padEnd(10)} ${c.revoked_at ? 'revoked' : 'active'} ${c.allowed_tools.join(',')}`)
            .join('\n') || 'No clients.',
      );
    });
  client
    .command('add <client_id>')
    .description('Register a client; its secret is printed once')
    .addOption(new Option('--role <role>', 'client role').choices(['admin', 'cli_agent', 'desktop', 'mobile']).default('desktop'))
    .option('--tools <list>', 'comma-separated tools the client may use')
    .option('--json', 'JSON output')
    .action(async (id: string, o: { role: string; tools?: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ client_id: string; client_secret: string }>(authed(cmd), 'POST', '/api/v1/clients', {
        client_id: id,
        role: o.role,
        ...(o.tools
          ? {
              allowed_tools: o.tools
                .split(',')
                .map((x) => x.trim())
                .filter(Boolean),
            }
          : {}),
      });
      out(!!o.json, res.data, () => `client_id ${res.data.client_id}\nclient_secret ${res.data.client_secret}\n(shown once)`);
    });
  client
    .command('revoke <client_id>')
    .description('Revoke a client; its tokens stop working at once')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await api(authed(cmd), 'DELETE', `/api/v1/clients/${enc(id)}`);
      process.stdout.write(`Revoked ${id}\n`);
    });

  const project = program.command('project').description('Projects: the tenancy boundary (every satellite belongs to one)');
  project
    .command('list', { isDefault: true })
    .description('List the projects you can see')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; description: string; satellites: number; role?: string }[]>(authed(cmd), 'GET', '/api/v1/projects');
      out(!!o.json, res.data, () =>
        res.data.map((x) => `${x.id.padEnd(20)} ${String(x.satellites).padStart(5)} satellites  ${x.role ?? ''} ${x.description}`.trimEnd()).join('\n'),
      );
    });
  project
    .command('add <id>')
    .description('Create a project (global admin)')
    .option('--description <text>', 'description')
    .action(async (id: string, o: { description?: string }, cmd: Command) => {
      await api(authed(cmd), 'POST', '/api/v1/projects', { id, ...(o.description ? { description: o.description } : {}) });
      process.stdout.write(`Created project ${id}\n`);
    });
  const permission = program.command('permission').description('Per-project roles of users, API keys and clients (admin, member, reviewer)');
  const principalOf = (s: string) => {
    const m = /^(api_key|user|client|ai):(.+)$/.exec(s);
    if (!m) throw new ApiError(0, 'INVALID_PARAMETERS', '--principal must be api_key:<id>, user:<id>, client:<id> or ai:<id>');
    return { principal_type: m[1] as string, principal_id: m[2] as string };
  };
  permission
    .command('grant')
    .description('Give a principal a role in a project; from then on it sees and acts only in its projects')
    .requiredOption('--principal <p>', 'api_key:<id>, user:<user id>, or client:<client_id>')
    .requiredOption('--project <id>', 'project')
    .addOption(new Option('--role <role>', 'project role').choices(['admin', 'member', 'reviewer']).makeOptionMandatory())
    .action(async (o: { principal: string; project: string; role: string }, cmd: Command) => {
      await api(authed(cmd), 'POST', '/api/v1/permissions', { ...principalOf(o.principal), project: o.project, role: o.role });
      process.stdout.write(`${o.principal} is ${o.role} in ${o.project}\n`);
    });
  permission
    .command('revoke')
    .description("Remove a principal's role in a project")
    .requiredOption('--principal <p>', 'api_key:<id>, user:<user id>, or client:<client_id>')
    .requiredOption('--project <id>', 'project')
    .action(async (o: { principal: string; project: string }, cmd: Command) => {
      await api(authed(cmd), 'DELETE', '/api/v1/permissions', { ...principalOf(o.principal), project: o.project });
      process.stdout.write(`Revoked ${o.principal} in ${o.project}\n`);
    });

  const ai = program.command('ai').description('AI identities (seed 002): profiles that join projects by permission');
  ai.command('list', { isDefault: true })
    .description('List AI identities')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; name: string; nickname: string; expertise: string[]; version: string }[]>(
        authed(cmd),
        'GET',
        '/api/v1/ai-identities',
      );
      out(
        !!o.json,
        res.data,
        () =>
          res.data.map((x) => `${x.id}  ${x.name.padEnd(16)} ${x.nickname.padEnd(12)} ${x.version.padEnd(8)} ${x.expertise.join(',')}`).join('\n') ||
          'No AI identities.',
      );
    });
  ai.command('add <name>')
    .description('Create an AI identity')
    .option('--nickname <n>', 'nickname')
    .option('--expertise <list>', 'comma-separated expertise')
    .option('--ai-version <v>', 'version of the identity (model or prompt)')
    .option('--json', 'JSON output')
    .action(async (name: string, o: { nickname?: string; expertise?: string; aiVersion?: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ id: string; name: string }>(authed(cmd), 'POST', '/api/v1/ai-identities', {
        name,
        ...(o.nickname ? { nickname: o.nickname } : {}),
        ...(o.expertise
          ? {
              expertise: o.expertise
                .split(',')
                .map((x) => x.trim())
                .filter(Boolean),
            }
          : {}),
        ...(o.aiVersion ? { version: o.aiVersion } : {}),
      });
      out(
        !!o.json,
        res.data,
        () =>
          `Created AI identity ${res.data.name} (${res.data.id}); grant it a project: hive permission grant --principal ai:${res.data.id} --project P --role member`,
      );
    });
  program
    .command('token')
    .description('Tokens for AI identities')
    .command('create')
    .description('Issue the token of an AI identity (replaces its earlier one); printed once')
    .requiredOption('--ai-id <id>', 'AI identity id or name')
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h')
    .option('--json', 'JSON output')
    .action(async (o: { aiId: string; expires?: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ token: string; identity_id: string; expires_at: string | null }>(
        authed(cmd),
        'POST',
        `/api/v1/ai-identities/${enc(o.aiId)}/token`,
        o.expires ? { expires_in: o.expires } : {},
      );
      out(!!o.json, res.data, () => `${res.data.token}\n(shown once; identity ${res.data.identity_id}, expires ${res.data.expires_at ?? 'never'})`);
    });

  const device = program.command('device').description('Device tokens (per device and role)');
  for (const action of ['revoke', 'rotate'] as const) {
    device
      .command(`${action} <device>`)
      .description(
        action === 'revoke'
          ? 'Revoke the device token of a role; its live connection is closed at once'
          : 'Give a connected node a new token and revoke the old one (no re-pairing)',
      )
      .addOption(new Option('--role <role>', 'token role').choices(['node', 'operator']).default('node'))
      .option('--json', 'JSON output')
      .action(async (ref: string, o: { role: string; json?: boolean }, cmd: Command) => {
        const res = await api<Record<string, unknown>>(authed(cmd), 'POST', `/api/v1/devices/${enc(ref)}/${action}`, { role: o.role });
        out(!!o.json, res.data, () => `${action === 'revoke' ? 'Revoked' : 'Rotated'} ${o.role} token of ${ref}`);
      });
  }

  const jobs = program.command('jobs').description('Command jobs');
  jobs
    .command('list', { isDefault: true })
    .description('List jobs, newest first')
    .option('--satellite <ref>', 'only this satellite')
    .option('--state <state>', 'only this state')
    .option('--batch <id>', 'only this fan-out batch')
    .option('--limit <n>', 'rows', '50')
    .option('--json', 'JSON output')
    .action(async (o: { satellite?: string; state?: string; batch?: string; limit: string; json?: boolean }, cmd: Command) => {
      const qs = new URLSearchParams({ per_page: o.limit });
      if (o.satellite) qs.set('satellite', o.satellite);
      if (o.state) qs.set('state', o.state);
      if (o.batch) qs.set('batch', o.batch);
      const res = await api<{ id: string; state: string; command: string; satellite_id: string; created_at: string; duration_ms: number | null }[]>(
        authed(cmd),
        'GET',
        `/api/v1/commands?${qs}`,
      );
      out(
        !!o.json,
        res.data,
        () =>
          res.data
            .map((j) => `${j.id}  ${j.state.padEnd(16)} ${j.command.padEnd(14)} ${j.satellite_id.slice(0, 12)}  ${j.created_at}  ${j.duration_ms ?? ''}`)
            .join('\n') || 'No jobs.',
      );
    });
  jobs
    .command('get <id>')
    .description('One job (id or correlation id)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await api(authed(cmd), 'GET', `/api/v1/commands/${enc(id)}`);
      process.stdout.write(`${JSON.stringify(res.data, null, 2)}\n`);
    });
  jobs
    .command('fix <job> <index>')
    .description('Run the fix proposed by finding <index> of a logs.analyze job (always waits for approval)')
    .action(async (job: string, index: string, _o: unknown, cmd: Command) => {
      const res = await api<{ id: string; state: string; approval_id: string | null }>(authed(cmd), 'POST', `/api/v1/commands/${enc(job)}/fixes/${enc(index)}`);
      process.stdout.write(`${res.data.id}: ${res.data.state}${res.data.approval_id ? ` (approval ${res.data.approval_id})` : ''}\n`);
    });
  jobs
    .command('cancel <id>')
    .description('Cancel a queued, pending or running job')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await api<{ id: string; state: string }>(authed(cmd), 'POST', `/api/v1/commands/${enc(id)}/cancel`);
      process.stdout.write(`${res.data.id}: ${res.data.state}\n`);
    });
}
