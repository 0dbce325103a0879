import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { HiveError } from '@hive/protocol';
import type { Logger } from 'pino';
import type { Bus } from '../../bus/bus.js';
import type { TasksConfig } from '../../config-ai.js';
import { newId } from '../../lib/ids.js';
import { type Principal, requireScope } from '../../lib/principal.js';
import { nowIso, toJson } from '../../store/db.js';
import type { TaskOutputTable, TaskStatus } from '../../store/schema-ai.js';
import type { AuditService } from '../audit/audit-service.js';
import type { CommandsService } from '../commands/commands-service.js';
import type { VaultService } from '../vault/vault-service.js';
import { type AgentType, buildArgv, resolveAgentTypes } from './agent-types.js';
import { createLineSplitter, createMasker, createResultCollector, type Progress, parseEventLine } from './task-output.js';
import { type TasksStore, type TaskView, toTaskView } from './tasks-store.js';

export interface CreateTaskInput {
  agent_type: string;
  description: string;
  timeout_ms?: number | undefined;
  target_satellite?: string | undefined;
}

export interface TaskOutput {
  task_id: string;
  status: TaskStatus;
  chunks: { seq: number; stream: 'stdout' | 'stderr'; data: string; ts: string }[];
  /** Pass as `since` to get only what came after. */
  next_seq: number;
  truncated: boolean;
}

/** Bus events (forwarded to operators with operator.read). */
export const TASK_EVENTS = { output: 'task:output', status: 'task:status' } as const;

/** A started task process: a local child, or a `task.run` job on a satellite. */
interface TaskProc {
  pid: number | undefined;
  onData(stream: 'stdout' | 'stderr', cb: (chunk: string) => void): void;
  onError(cb: (message: string) => void): void;
  /** The process ended; output may still drain until onClose. */
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  onClose(cb: (code: number | null, signal: string | null) => void): void;
  kill(signal: NodeJS.Signals): void;
}

interface Running {
  id: string;
  proc: TaskProc;
  cancelRequested: boolean;
  timedOut: boolean;
  shutdown: boolean;
  done: Promise<void>;
  terminate(reason: 'cancel' | 'timeout' | 'shutdown'): void;
}

type Deps = {
  store: TasksStore;
  vault: Pick<VaultService, 'useKeys' | 'valuesForMasking'>;
  audit: Pick<AuditService, 'log'>;
  bus: Pick<Bus, 'publish' | 'subscribe'>;
  /** Remote tasks run as `task.run` jobs on a satellite (signed invoke, streamed output). */
  commands?: Pick<CommandsService, 'exec' | 'get' | 'cancel'> | undefined;
  resolveSatellite?: ((ref: string) => Promise<{ id: string }>) | undefined;
  logger: Logger;
  config: TasksConfig;
  /** Parent of per-task working directories. */
  workDir: string;
  /** PATH for tasks when the config sets none (the hub's PATH value, nothing else of its env). */
  defaultPath: string;
};

const FLUSH_MS = 100;
const DRAIN_MS = 2000;
const TRUNCATED_NOTE = '\n[output truncated: max_output_bytes reached]\n';

const actorOf = (p: Principal) => ({ type: p.type, id: p.id, name: p.name, ip: p.ip });

/**
 * The task spawner (seed 000 §3). A task runs one agent CLI as a child process in its own process
 * group and working directory, with an explicit minimal environment: PATH, HOME, LANG, the type's
 * extra variables and the vault keys it needs — nothing inherited from the hub, no key in argv or
 * on disk. Output is masked (every vault value) before it is stored or published, and capped.
 * The service is the single entry point; REST routes (and later MCP tools) are thin adapters.
 */
export const tasksServiceFactory = ({ store, vault, audit, bus, commands, resolveSatellite, logger, config, workDir, defaultPath }: Deps) => {
  const types = resolveAgentTypes(config.agents);
  const running = new Map<string, Running>();
  let closing = false;

  async function view(id: string): Promise<TaskView> {
    const row = await store.get(id);
    if (!row) throw new HiveError('NOT_FOUND', `Task ${id} not found`);
    return toTaskView(row);
  }

  function publishStatus(v: TaskView): void {
    bus.publish(TASK_EVENTS.status, {
      task_id: v.task_id,
      agent_type: v.agent_type,
      status: v.status,
      exit_code: v.exit_code,
      signal: v.signal,
      error: v.error,
      started_at: v.started_at,
      completed_at: v.completed_at,
    });
  }

  function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
    if (!pid) return;
    try {
      // Negative pid: the whole process group the task leads (spawned detached).
      process.kill(-pid, signal);
    } catch {
      /* ESRCH: the group is gone */
    }
  }

  function launchLocal(argv: string[], cwd: string, env: Record<string, string>): TaskProc {
    const child = spawn(argv[0] as string, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return {
      pid: child.pid,
      onData(stream, cb) {
        child[stream]?.setEncoding('utf8');
        child[stream]?.on('data', cb);
      },
      onError(cb) {
        child.on('error', (err: NodeJS.ErrnoException) =>
          cb(err.code === 'ENOENT' ? `command not found: ${argv[0]}` : `could not start ${argv[0]}: ${err.code ?? err.message}`),
        );
      },
      onExit: (cb) => child.on('exit', cb),
      onClose: (cb) => child.on('close', cb),
      kill: (signal) => killGroup(child.pid, signal),
    };
  }

  /** Runs the task on a satellite as a signed `task.run` job; its output arrives as job:output events. */
  async function launchRemote(p: Principal, id: string, satellite: string, argv: string[], env: Record<string, string>, timeoutMs: number): Promise<TaskProc> {
    if (!commands) throw new HiveError('INTERNAL_ERROR', 'Remote tasks need the commands service');
    const data: Record<'stdout' | 'stderr', ((c: string) => void)[]> = { stdout: [], stderr: [] };
    const errors: ((m: string) => void)[] = [];
    const closes: ((code: number | null, signal: string | null) => void)[] = [];
    let correlation = '';
    let jobId = '';
    let ended = false;
    const end = (code: number | null, signal: string | null, error?: string) => {
      if (ended) return;
      ended = true;
      unsubscribe();
      if (error) for (const e of errors) e(error);
      for (const c of closes) c(code, signal);
    };
    const settle = async () => {
      const job = await commands.get(p, jobId);
      const r = job.result as { exitCode?: number | null; signal?: string | null } | null;
      if (r && job.state === 'succeeded') end(r.exitCode ?? null, r.signal ?? null);
      else end(null, null, job.error ? `${job.error.code}: ${job.error.message}` : `remote job ${job.state}`);
    };
    const unsubscribe = bus.subscribe(({ event, payload }) => {
      const ev = payload as { correlation_id?: string; id?: string; stream?: 'stdout' | 'stderr'; data?: string; state?: string };
      if (event === 'job:output' && ev.correlation_id === correlation && ev.stream && ev.data) for (const cb of data[ev.stream]) cb(ev.data);
      if (event === 'job:updated' && ev.id === jobId && ['succeeded', 'failed', 'timed_out', 'denied', 'cancelled'].includes(ev.state ?? '')) void settle();
    });
    try {
      const job = await commands.exec(p, {
        satellite,
        command: 'task.run',
        params: { task_id: id, argv, env, timeoutMs },
        timeout_ms: timeoutMs + 10_000,
        async: true,
      });
      jobId = job.id;
      correlation = job.correlation_id;
      if (job.finished_at) setImmediate(() => void settle());
    } catch (err) {
      unsubscribe();
      throw err;
    }
    return {
      pid: undefined,
      onData: (stream, cb) => void data[stream].push(cb),
      onError: (cb) => void errors.push(cb),
      onExit: () => {},
      onClose: (cb) => void closes.push(cb),
      kill: (signal) => {
        if (signal === 'SIGTERM' && !ended) void commands.cancel(p, jobId).catch(() => {});
      },
    };
  }

  async function run(p: Principal, id: string, type: AgentType, input: CreateTaskInput, keys: Map<string, string>, maskValues: string[], timeoutMs: number) {
    const masker = createMasker(maskValues);
    const cwd = path.join(workDir, id);
    if (!input.target_satellite) await mkdir(cwd, { recursive: true, mode: 0o700 });
    const env: Record<string, string> = {
      PATH: config.path ?? defaultPath,
      HOME: config.home ?? cwd,
      LANG: config.lang,
      HIVE_TASK_ID: id,
      ...type.env,
    };
    for (const need of type.providers) {
      const value = keys.get(`${need.provider}/${need.key_id}`);
      if (value !== undefined) for (const name of need.env) env[name] = value;
    }
    const satellite = input.target_satellite;
    const argv = buildArgv(type.command, { prompt: input.description, task_id: id, cwd: satellite ? '.' : cwd });
    let child: TaskProc;
    if (satellite) {
      // PATH, HOME and LANG are the node's own; only the task's variables and keys travel.
      const { PATH: _path, HOME: _home, ...remoteEnv } = env;
      child = await launchRemote(p, id, satellite, argv, remoteEnv, timeoutMs);
    } else child = launchLocal(argv, cwd, env);
    // Drop our references to the plaintext keys as soon as the child has its copy.
    keys.clear();
    for (const k of Object.keys(env)) delete env[k];

    const startedAt = nowIso();
    let seq = 0;
    let bytes = 0;
    let truncated = false;
    let pending: TaskOutputTable[] = [];
    let flushing: Promise<void> = Promise.resolve();
    const collector = createResultCollector(type.format);
    let spawnError: string | undefined;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const flush = (): Promise<void> => {
      const rows = pending;
      pending = [];
      flushing = flushing.then(async () => {
        for (let i = 0; i < rows.length; i += 500) {
          try {
            await store.appendOutput(rows.slice(i, i + 500));
          } catch (err) {
            logger.error({ task_id: id, err: (err as Error).message }, 'task output write failed');
          }
        }
      });
      return flushing;
    };
    const flushTimer = setInterval(() => void flush(), FLUSH_MS);
    flushTimer.unref();

    const emit = (stream: 'stdout' | 'stderr', raw: string): void => {
      if (!raw) return;
      const text = masker.mask(raw);
      const events: Progress[] = [];
      if (stream === 'stdout') {
        collector.addText(text);
        for (const line of text.split('\n')) {
          for (const ev of parseEventLine(type.format, line)) {
            collector.add(ev);
            events.push(ev);
          }
        }
      }
      if (truncated) return;
      let data = text;
      const size = Buffer.byteLength(data);
      if (bytes + size > config.max_output_bytes) {
        data =
          Buffer.from(data)
            .subarray(0, Math.max(0, config.max_output_bytes - bytes))
            .toString('utf8')
            .replace(/\uFFFD$/, '') + TRUNCATED_NOTE;
        truncated = true;
      }
      bytes += Buffer.byteLength(data);
      seq += 1;
      const ts = nowIso();
      pending.push({ task_id: id, seq, stream, data, ts });
      bus.publish(TASK_EVENTS.output, { task_id: id, seq, stream, data, ts, events });
    };

    const splitters = {
      stdout: createLineSplitter(64 * 1024, masker.maxLen, masker.mask),
      stderr: createLineSplitter(64 * 1024, masker.maxLen, masker.mask),
    };
    for (const stream of ['stdout', 'stderr'] as const) child.onData(stream, (chunk: string) => emit(stream, splitters[stream].push(chunk)));

    let finished = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    const entry: Running = {
      id,
      proc: child,
      cancelRequested: false,
      timedOut: false,
      shutdown: false,
      done,
      terminate(reason) {
        if (finished) return;
        if (reason === 'cancel') entry.cancelRequested = true;
        if (reason === 'timeout') entry.timedOut = true;
        if (reason === 'shutdown') entry.shutdown = true;
        child.kill('SIGTERM');
        if (!graceTimer) {
          const grace = reason === 'shutdown' ? Math.min(config.kill_grace, 2000) : config.kill_grace;
          graceTimer = setTimeout(() => child.kill('SIGKILL'), grace);
        }
      },
    };
    running.set(id, entry);
    const timeoutTimer = setTimeout(() => entry.terminate('timeout'), timeoutMs);

    const finish = async (): Promise<void> => {
      if (finished) return;
      finished = true;
      clearTimeout(timeoutTimer);
      clearTimeout(graceTimer);
      clearTimeout(drainTimer);
      clearInterval(flushTimer);
      // Nothing of a task outlives it: whatever is left in its group goes now.
      child.kill('SIGKILL');
      emit('stdout', splitters.stdout.flush());
      emit('stderr', splitters.stderr.flush());
      await flush();
      const r = collector.result();
      let status: TaskStatus;
      let error: string | null = null;
      if (spawnError) {
        status = 'failed';
        error = spawnError;
      } else if (entry.shutdown) {
        status = 'cancelled';
        error = 'hub shut down while the task ran';
      } else if (entry.cancelRequested) {
        status = 'cancelled';
        error = 'cancelled';
      } else if (entry.timedOut) {
        status = 'timed_out';
        error = `timed out after ${timeoutMs} ms`;
      } else if (exitCode === 0) {
        status = 'completed';
      } else {
        status = 'failed';
        error = exitCode !== null ? `exited with code ${exitCode}` : `killed by ${exitSignal ?? 'signal'}`;
      }
      const completedAt = nowIso();
      try {
        await store.update(id, {
          status,
          started_at: startedAt,
          pid: child.pid ?? null,
          exit_code: exitCode,
          signal: exitSignal,
          output_bytes: bytes,
          truncated: truncated ? 1 : 0,
          completed_at: completedAt,
          result: toJson({ ...r, exit_code: exitCode }),
          error: error ? masker.mask(error) : null,
        });
      } catch (err) {
        logger.error({ task_id: id, err: (err as Error).message }, 'task final state write failed');
      }
      running.delete(id);
      audit.log({
        actor: actorOf(p),
        action: 'task.finished',
        target: { type: 'task', id },
        details: {
          agent_type: type.name,
          status,
          exit_code: exitCode,
          signal: exitSignal,
          output_bytes: bytes,
          duration_ms: Date.parse(completedAt) - Date.parse(startedAt),
        },
        result: status === 'completed' ? 'success' : 'failure',
        ...(error ? { error } : {}),
        correlationId: id,
      });
      logger.info({ task_id: id, agent_type: type.name, status, exit_code: exitCode }, 'task finished');
      try {
        publishStatus(await view(id));
      } finally {
        resolveDone();
      }
    };

    child.onError((message) => {
      spawnError = message;
      void finish();
    });
    child.onExit((code, signal) => {
      exitCode = code;
      exitSignal = signal;
      // Output pipes may be held open by a leftover grandchild; do not wait on it forever.
      drainTimer = setTimeout(() => void finish(), DRAIN_MS);
    });
    child.onClose((code, signal) => {
      exitCode ??= code;
      exitSignal ??= signal;
      void finish();
    });

    if (child.pid || satellite) {
      await store.markRunning(id, child.pid ?? 0, startedAt);
      const v = await view(id);
      if (v.status === 'running') publishStatus(v);
    }
  }

  return {
    agentTypes(): { name: string; command: string[]; providers: AgentType['providers']; format: string; description: string; builtin: boolean }[] {
      return [...types.values()].map((t) => ({
        name: t.name,
        command: t.command,
        providers: t.providers,
        format: t.format,
        description: t.description,
        builtin: t.builtin,
      }));
    },

    /** client_request_task */
    async create(p: Principal, input: CreateTaskInput): Promise<TaskView> {
      requireScope(p, 'operator.write');
      if (closing) throw new HiveError('SHUTTING_DOWN', 'Hub is shutting down', undefined, { action: 'retry', retryAfterMs: 5000 });
      let target: string | null = null;
      if (input.target_satellite) {
        if (!resolveSatellite || !commands) throw new HiveError('INVALID_PARAMETERS', 'Remote tasks are not available on this hub');
        target = (await resolveSatellite(input.target_satellite)).id;
        input = { ...input, target_satellite: target };
      }
      const type = types.get(input.agent_type);
      if (!type) throw new HiveError('INVALID_PARAMETERS', `Unknown agent type ${input.agent_type}`, { known: [...types.keys()] });
      if (running.size >= config.max_concurrent) {
        throw new HiveError('RATE_LIMITED', `At most ${config.max_concurrent} tasks run at once`, undefined, { action: 'retry', retryAfterMs: 5000 });
      }
      const timeoutMs = Math.min(input.timeout_ms ?? type.timeout ?? config.default_timeout, config.max_timeout);
      const id = newId('task');
      const needs = type.providers.map((n) => ({ provider: n.provider, key_id: n.key_id, optional: n.optional }));
      // Fails (NO_API_KEY, VAULT_LOCKED) before anything is stored.
      const keys = await vault.useKeys(needs, { actor: p, purpose: 'task', task_id: id });
      const maskValues = [...keys.values(), ...(await vault.valuesForMasking())];
      const masker = createMasker(maskValues);
      await store.insert({
        task_id: id,
        client_id: p.id,
        client_type: p.type,
        agent_type: type.name,
        description: masker.mask(input.description),
        status: 'pending',
        target_satellite: target,
        timeout_ms: timeoutMs,
        keys_used: toJson([...keys.keys()]),
        pid: null,
        exit_code: null,
        signal: null,
        output_bytes: 0,
        truncated: 0,
        created_at: nowIso(),
        started_at: null,
        completed_at: null,
        result: null,
        error: null,
      });
      audit.log({
        actor: actorOf(p),
        action: 'task.created',
        target: { type: 'task', id },
        details: { agent_type: type.name, keys_used: [...keys.keys()], timeout_ms: timeoutMs, ...(target ? { target_satellite: target } : {}) },
        result: 'success',
        correlationId: id,
      });
      try {
        await run(p, id, type, input, keys, maskValues, timeoutMs);
      } catch (err) {
        keys.clear();
        await store.update(id, { status: 'failed', completed_at: nowIso(), error: `could not start: ${(err as Error).message}` });
        publishStatus(await view(id));
      }
      return view(id);
    },

    /** client_task_status */
    async get(p: Principal, id: string): Promise<TaskView> {
      requireScope(p, 'operator.read');
      return view(id);
    },

    /** client_task_output: masked output after `since` (a chunk seq). */
    async output(p: Principal, id: string, since = 0, limit = 1000): Promise<TaskOutput> {
      requireScope(p, 'operator.read');
      const v = await view(id);
      const rows = await store.output(id, since, limit);
      return {
        task_id: id,
        status: v.status,
        chunks: rows.map((r) => ({ seq: r.seq, stream: r.stream, data: r.data, ts: r.ts })),
        next_seq: rows.length ? (rows[rows.length - 1] as TaskOutputTable).seq : since,
        truncated: v.truncated,
      };
    },

    /** client_list_tasks (`mine` = only the caller's). */
    async list(
      p: Principal,
      q: { mine?: boolean | undefined; status?: TaskStatus | undefined; agent_type?: string | undefined; page: number; per_page: number },
    ): Promise<{ items: TaskView[]; total: number }> {
      requireScope(p, 'operator.read');
      return store.list({ ...(q.mine ? { client_id: p.id } : {}), status: q.status, agent_type: q.agent_type, page: q.page, per_page: q.per_page });
    },

    /** client_cancel_task: SIGTERM to the process group, SIGKILL after `kill_grace`; waits for the end. */
    async cancel(p: Principal, id: string): Promise<TaskView> {
      requireScope(p, 'operator.write');
      const v = await view(id);
      const r = running.get(id);
      if (!r) throw new HiveError('CONFLICT', `Task ${id} is not running (${v.status})`, { status: v.status });
      audit.log({ actor: actorOf(p), action: 'task.cancel', target: { type: 'task', id }, result: 'success', correlationId: id });
      r.terminate('cancel');
      await r.done;
      return view(id);
    },

    /** Marks tasks of a previous process as failed (their children died with it). */
    async recover(): Promise<number> {
      return store.failUnfinished('hub restarted while the task ran');
    },

    async shutdown(): Promise<number> {
      closing = true;
      const all = [...running.values()];
      for (const r of all) r.terminate('shutdown');
      await Promise.all(all.map((r) => r.done));
      return all.length;
    },
  };
};

export type TasksService = ReturnType<typeof tasksServiceFactory>;
