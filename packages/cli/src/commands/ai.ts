import { type Command, Option } from 'commander';
import { ApiError, api, type CliAuth, resolveAuth } from '../api.js';

interface VaultStatus {
  initialized: boolean;
  unlocked: boolean;
  key_count: number;
  kdf: { alg: string; log_n: number; r: number; p: number } | null;
  unlocked_at: string | null;
}
interface VaultKey {
  provider: string;
  key_id: string;
  fingerprint: string;
  created_at: string;
  last_used_at: string | null;
}
interface Task {
  task_id: string;
  agent_type: string;
  description: string;
  status: string;
  exit_code: number | null;
  created_at: string;
  completed_at: string | null;
  result: { text: string; error?: string } | null;
  error: string | null;
}
interface TaskOutput {
  status: string;
  chunks: { seq: number; stream: 'stdout' | 'stderr'; data: string }[];
  next_seq: number;
}

const FINAL = new Set(['completed', 'failed', 'cancelled', 'timed_out']);
const enc = encodeURIComponent;

function out(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const authed = (cmd: Command): CliAuth => resolveAuth(cmd.optsWithGlobals() as { url?: string; apiKey?: string });

/** Reads a line from the terminal without echoing it. */
function hiddenPrompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new ApiError(0, 'CANCELLED', 'Cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readStdin(): Promise<string> {
  let s = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

/** From the environment variable, else a hidden prompt (optionally confirmed), else stdin's first line. */
async function secretInput(envName: string, question: string, confirm = false): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) {
    const v = await hiddenPrompt(question);
    if (confirm && (await hiddenPrompt('Repeat: ')) !== v) throw new ApiError(0, 'INVALID_PARAMETERS', 'The two entries differ');
    return v;
  }
  const line = (await readStdin()).split(/\r?\n/)[0] ?? '';
  if (!line) throw new ApiError(0, 'INVALID_PARAMETERS', `Give the value in ${envName}, on a terminal prompt, or on stdin`);
  return line;
}

function vaultStatusText(s: VaultStatus): string {
  if (!s.initialized) return 'Vault: not initialized (run `hive vault init`)';
  return `Vault: ${s.unlocked ? 'unlocked' : 'locked'}, ${s.key_count} key(s)${s.kdf ? `, ${s.kdf.alg} N=2^${s.kdf.log_n} r=${s.kdf.r} p=${s.kdf.p}` : ''}`;
}

function addVault(program: Command): void {
  const vault = program.command('vault').description('The key vault: provider API keys, encrypted under a master password');
  const statusCmd = (name: string, desc: string, run: (auth: CliAuth) => Promise<VaultStatus>) =>
    vault
      .command(name)
      .description(desc)
      .option('--json', 'JSON output')
      .action(async (o: { json?: boolean }, cmd: Command) => {
        const s = await run(authed(cmd));
        out(o.json, s, () => vaultStatusText(s));
      });

  statusCmd('status', 'Show whether the vault is initialized and unlocked', async (a) => (await api<VaultStatus>(a, 'GET', '/api/v1/vault/status')).data);
  statusCmd('init', 'Create the vault (master password from HIVE_VAULT_PASSWORD or a prompt); leaves it unlocked', async (a) => {
    const password = await secretInput('HIVE_VAULT_PASSWORD', 'New vault master password: ', true);
    return (await api<VaultStatus>(a, 'POST', '/api/v1/vault/init', { password })).data;
  });
  statusCmd('unlock', 'Unlock the vault after a hub start (HIVE_VAULT_PASSWORD or a prompt)', async (a) => {
    const password = await secretInput('HIVE_VAULT_PASSWORD', 'Vault master password: ');
    return (await api<VaultStatus>(a, 'POST', '/api/v1/vault/unlock', { password })).data;
  });
  statusCmd('lock', 'Lock the vault: the hub wipes its key material from memory', async (a) => (await api<VaultStatus>(a, 'POST', '/api/v1/vault/lock')).data);
  statusCmd('passwd', 'Change the master password (HIVE_VAULT_PASSWORD / HIVE_VAULT_NEW_PASSWORD or prompts)', async (a) => {
    const password = await secretInput('HIVE_VAULT_PASSWORD', 'Current master password: ');
    const newPassword = await secretInput('HIVE_VAULT_NEW_PASSWORD', 'New master password: ', true);
    return (await api<VaultStatus>(a, 'POST', '/api/v1/vault/passwd', { password, new_password: newPassword })).data;
  });

  vault
    .command('add-key <provider>')
    .description('Store an API key; the value comes from a hidden prompt or stdin, never from the command line')
    .option('--id <id>', 'key id, for several keys of one provider', 'main')
    .option('--replace', 'overwrite an existing key')
    .option('--json', 'JSON output')
    .action(async (provider: string, o: { id: string; replace?: boolean; json?: boolean }, cmd: Command) => {
      const value = process.stdin.isTTY ? await hiddenPrompt(`API key for ${provider}: `) : (await readStdin()).trim();
      if (!value) throw new ApiError(0, 'INVALID_PARAMETERS', 'No key value given (type it at the prompt or pipe it on stdin)');
      const res = await api<VaultKey>(authed(cmd), 'POST', '/api/v1/vault/keys', { provider, key_id: o.id, value, replace: !!o.replace });
      out(o.json, res.data, () => `Stored ${res.data.provider}/${res.data.key_id} (fingerprint ${res.data.fingerprint})`);
    });

  vault
    .command('list-keys')
    .description('List stored keys: provider, id, fingerprint, dates (never values)')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<VaultKey[]>(authed(cmd), 'GET', '/api/v1/vault/keys');
      out(o.json, res.data, () =>
        res.data.length === 0
          ? 'No keys.'
          : table([
              ['PROVIDER', 'ID', 'FINGERPRINT', 'CREATED', 'LAST USED'],
              ...res.data.map((k) => [k.provider, k.key_id, k.fingerprint, k.created_at, k.last_used_at ?? '-']),
            ]),
      );
    });

  vault
    .command('remove-key <provider>')
    .description('Delete a stored key')
    .option('--id <id>', 'key id', 'main')
    .option('--json', 'JSON output')
    .action(async (provider: string, o: { id: string; json?: boolean }, cmd: Command) => {
      const res = await api<{ provider: string; key_id: string }>(authed(cmd), 'DELETE', `/api/v1/vault/keys/${enc(provider)}/${enc(o.id)}`);
      out(o.json, res.data, () => `Removed ${res.data.provider}/${res.data.key_id}`);
    });
}

async function follow(auth: CliAuth, id: string): Promise<void> {
  let since = 0;
  for (;;) {
    const res = await api<TaskOutput>(auth, 'GET', `/api/v1/tasks/${enc(id)}/output?since=${since}`);
    for (const c of res.data.chunks) (c.stream === 'stderr' ? process.stderr : process.stdout).write(c.data);
    since = res.data.next_seq;
    if (FINAL.has(res.data.status) && res.data.chunks.length === 0) return;
    if (res.data.chunks.length === 0) await new Promise((r) => setTimeout(r, 500));
  }
}

function addTasks(program: Command): void {
  const tasks = program.command('tasks').description('AI agent tasks run by the hub with keys from the vault');
  tasks
    .command('types')
    .description('List agent types (built-in and configured)')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await api<{ name: string; providers: { provider: string; optional: boolean }[]; description: string }[]>(
        authed(cmd),
        'GET',
        '/api/v1/tasks/types',
      );
      out(o.json, res.data, () =>
        table([
          ['TYPE', 'KEYS', 'DESCRIPTION'],
          ...res.data.map((t) => [t.name, t.providers.map((p) => `${p.provider}${p.optional ? '?' : ''}`).join(','), t.description]),
        ]),
      );
    });
  tasks
    .command('run <agent_type> <prompt...>')
    .description('Start a task; --follow streams its output until it ends')
    .option('--timeout <ms>', 'timeout in milliseconds')
    .option('--satellite <ref>', 'run on this satellite (its agent needs policy.allow_tasks) instead of the hub')
    .option('--follow', 'stream the output and exit with the task')
    .option('--json', 'JSON output')
    .action(async (type: string, words: string[], o: { timeout?: string; satellite?: string; follow?: boolean; json?: boolean }, cmd: Command) => {
      const auth = authed(cmd);
      const body: Record<string, unknown> = { agent_type: type, description: words.join(' ') };
      if (o.timeout) body.timeout_ms = Number(o.timeout);
      if (o.satellite) body.target_satellite = o.satellite;
      const res = await api<Task>(auth, 'POST', '/api/v1/tasks', body);
      if (!o.follow) return out(o.json, res.data, () => `Task ${res.data.task_id} ${res.data.status}`);
      await follow(auth, res.data.task_id);
      const final = (await api<Task>(auth, 'GET', `/api/v1/tasks/${enc(res.data.task_id)}`)).data;
      if (o.json) out(true, final, () => '');
      else process.stderr.write(`\n[task ${final.task_id} ${final.status}${final.error ? `: ${final.error}` : ''}]\n`);
      process.exitCode = final.status === 'completed' ? 0 : 1;
    });
  tasks
    .command('list', { isDefault: true })
    .description('List tasks')
    .addOption(new Option('--status <s>', 'filter').choices(['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out']))
    .option('--mine', 'only tasks started with this API key')
    .option('--json', 'JSON output')
    .action(async (o: { status?: string; mine?: boolean; json?: boolean }, cmd: Command) => {
      const qs = new URLSearchParams({ per_page: '100' });
      if (o.status) qs.set('status', o.status);
      if (o.mine) qs.set('mine', 'true');
      const res = await api<Task[]>(authed(cmd), 'GET', `/api/v1/tasks?${qs}`);
      out(o.json, res, () =>
        res.data.length === 0
          ? 'No tasks.'
          : table([
              ['ID', 'TYPE', 'STATUS', 'CREATED', 'DESCRIPTION'],
              ...res.data.map((t) => [t.task_id, t.agent_type, t.status, t.created_at, t.description.slice(0, 50)]),
            ]),
      );
    });
  tasks
    .command('get <id>')
    .description('Show a task and its result')
    .option('--json', 'JSON output')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const t = (await api<Task>(authed(cmd), 'GET', `/api/v1/tasks/${enc(id)}`)).data;
      out(o.json, t, () => `${t.task_id} ${t.agent_type} ${t.status}${t.error ? ` (${t.error})` : ''}\n${t.result?.text ?? ''}`);
    });
  tasks
    .command('output <id>')
    .description("Print a task's (masked) output; --follow until it ends")
    .option('--follow', 'keep streaming')
    .action(async (id: string, o: { follow?: boolean }, cmd: Command) => {
      const auth = authed(cmd);
      if (o.follow) return follow(auth, id);
      const res = await api<TaskOutput>(auth, 'GET', `/api/v1/tasks/${enc(id)}/output?limit=5000`);
      for (const c of res.data.chunks) (c.stream === 'stderr' ? process.stderr : process.stdout).write(c.data);
    });
  tasks
    .command('cancel <id>')
    .description('Cancel a running task (SIGTERM to its process group, SIGKILL after the grace period)')
    .option('--json', 'JSON output')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const t = (await api<Task>(authed(cmd), 'POST', `/api/v1/tasks/${enc(id)}/cancel`)).data;
      out(o.json, t, () => `Task ${t.task_id} ${t.status}`);
    });
}

function addChat(program: Command): void {
  program
    .command('chat <message...>')
    .description('Ask a model through the hub; the router picks one unless --model is given')
    .option('--model <provider/model>', 'explicit model, e.g. ollama/llama3.2:latest')
    .addOption(new Option('--mode <mode>', 'routing mode').choices(['smart', 'local', 'cloud']).default('smart'))
    .option('--json', 'JSON output')
    .action(async (words: string[], o: { model?: string; mode: string; json?: boolean }, cmd: Command) => {
      const body = { messages: [{ role: 'user', content: words.join(' ') }], mode: o.mode, ...(o.model ? { model: o.model } : {}) };
      const res = await api<{ text: string; model: string; route: { rule: string; reason: string } }>(authed(cmd), 'POST', '/api/v1/chat', body);
      out(o.json, res.data, () => `${res.data.text}\n\n[${res.data.model} — ${res.data.route.rule}: ${res.data.route.reason}]`);
    });
}

/** `hive vault|tasks|chat …` (seed 000). */
export function addAiCommands(program: Command): void {
  addVault(program);
  addTasks(program);
  addChat(program);
}
