import { IdMap } from '../../lib/id-map.js';
import type { Db } from '../../store/db.js';
import { fromJson, toJson } from '../../store/db.js';
import type { JobState, JobsTable } from '../../store/schema.js';
import type { BatchWrite, WriteOp } from '../../store/writer.js';

export interface JobView {
  id: string;
  correlation_id: string;
  satellite_id: string;
  command: string;
  params: unknown;
  state: JobState;
  actor: { type: string; id: string };
  source: string;
  batch_id: string | null;
  approval_id: string | null;
  queue_until: string | null;
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  result: unknown;
  error: { code: string; message: string } | null;
}

export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'timed_out', 'denied', 'cancelled'];

/** `parsed`: params/result already parsed (they are not parsed again). */
export const toJobView = (r: JobsTable, parsed?: { params: unknown; result: unknown }): JobView => ({
  id: r.id,
  correlation_id: r.correlation_id,
  satellite_id: r.satellite_id,
  command: r.command,
  params: parsed ? parsed.params : fromJson(r.params, {}),
  state: r.state,
  actor: { type: r.actor_type, id: r.actor_id },
  source: r.source,
  batch_id: r.batch_id,
  approval_id: r.approval_id,
  queue_until: r.queue_until,
  timeout_ms: r.timeout_ms,
  created_at: r.created_at,
  started_at: r.started_at,
  finished_at: r.finished_at,
  duration_ms: r.duration_ms,
  result: parsed ? parsed.result : fromJson(r.result, null),
  error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
});

/** How long job writes wait to be written together (every commit writes WAL pages: fewer, larger ones). */
const COALESCE_MS = 20;
/** Rows per transaction: a larger backlog goes in several, with a turn of the event loop between them. */
const MAX_ROWS_PER_TX = 1000;
/**
 * How long the row of a just-started job of a fan-out may wait for its result: most commands
 * finish within this (a fan-out to 10,000 satellites takes about a second), and their row is then
 * written once, final (one row write instead of an insert and an update). Rows of jobs that
 * finished wait until their fan-out has answered (`answering`). A crash within this window loses
 * only rows of jobs still running or of a fan-out that had not answered; the fan-out itself (who,
 * what, which target, how many satellites) and each job's outcome are in the audit write-ahead
 * log. Single commands are not held (their request is audited when they end), nor is anything when
 * instances share the database (`hold: false`: another instance must find the rows of one that
 * died).
 */
const HOLD_RUNNING_MS = 1000;
/** …counted from when the job was sent (`started`), but never longer than this from its creation. */
const HOLD_MAX_MS = 5000;

/**
 * A job's result as JSON text, made when its row is written: a fan-out's rows wait for its answer,
 * so the 10,000 results are not turned into text again before it (the answer carries the objects).
 * Only in a row or patch handed to this store (`laterJson`), which every read waits for.
 */
class LaterJson {
  constructor(private readonly value: unknown) {}
  text(): string {
    return toJson(this.value);
  }
}
/** `value` as the `result` column of a row this store writes (see LaterJson). */
export const laterJson = (value: unknown): string => new LaterJson(value) as unknown as string;

interface Queued {
  row?: JobsTable;
  update?: { id: string; patch: Partial<JobsTable> };
  /** Queued at; `hold`: the held row is due at this time. */
  at: number;
  hold: number;
  /** Once written: true, or the error. */
  outcome?: true | { error: unknown };
  /** Made only when someone waits (a fan-out's thousands of rows mostly have nobody waiting). */
  done?: Promise<void>;
  resolve?: () => void;
  reject?: (e: unknown) => void;
  /** Called when the write failed and nobody waits on `done`. */
  onError?: (e: unknown) => void;
}

/** The write of `q` has ended. */
function settle(q: Queued, error?: { error: unknown }): void {
  q.outcome = error ?? true;
  if (error) {
    if (q.reject) q.reject(error.error);
    else q.onError?.(error.error);
  } else q.resolve?.();
}

/** A promise for the write of `q`. */
function doneOf(q: Queued): Promise<void> {
  if (!q.done) {
    const o = q.outcome;
    q.done =
      o === true
        ? Promise.resolve()
        : o
          ? Promise.reject(o.error)
          : new Promise<void>((resolve, reject) => {
              q.resolve = resolve;
              q.reject = reject;
            });
  }
  return q.done;
}

/**
 * Job rows are written behind: inserts and updates queue up and go to the database together,
 * one transaction every few milliseconds, so a fan-out to 10,000 satellites is a few
 * transactions instead of 20,000 statements. A queued insert absorbs the job's later updates; a
 * running fan-out job's insert is held back for its result (HOLD_RUNNING_MS). Every read and
 * conditional write first waits for what is queued (read-your-writes).
 */
export const commandsStoreFactory = ({ db, write, hold = true }: { db: Db; write: BatchWrite; hold?: boolean }) => {
  /** Fan-outs that have not answered yet: the rows of their finished jobs wait for the answer. */
  const answering = new Set<string>();
  /** Whether a queued insert is held: the row of a running fan-out job, or of a fan-out still answering. */
  const isHeld = (q: Queued): boolean => hold && !!q.row && q.row.batch_id !== null && (q.row.state === 'running' || answering.has(q.row.batch_id));
  /** When a held row is due: its own `hold`, or for a fan-out still answering HOLD_MAX_MS after its creation. */
  const dueAt = (q: Queued): number => (q.row?.batch_id && answering.has(q.row.batch_id) ? q.at + HOLD_MAX_MS : q.hold);
  let pending: Queued[] = [];
  /** Queued inserts by job id (they absorb updates of the same job). */
  const inserts = new IdMap<Queued>();
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  let timerAt = 0;

  const opOf = (q: Queued): WriteOp => {
    const values = q.row ?? q.update?.patch ?? {};
    const later = values.result as unknown;
    if (later instanceof LaterJson) values.result = later.text();
    return q.row
      ? { table: 'jobs', kind: 'insert', row: q.row as unknown as Record<string, unknown> }
      : { table: 'jobs', kind: 'update', id: q.update?.id ?? '', patch: q.update?.patch ?? {} };
  };

  /** Writes what is due (everything when `all`): updates at once, held inserts once old enough. */
  async function writeBatch(all: boolean): Promise<void> {
    const now = Date.now();
    const batch: Queued[] = [];
    const keep: Queued[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const q of pending) {
      const due = dueAt(q);
      if (all || due <= now || !isHeld(q)) batch.push(q);
      else {
        keep.push(q);
        if (due < next) next = due;
      }
    }
    pending = keep;
    for (const q of batch) if (q.row) inserts.delete(q.row.id);
    if (keep.length) arm(next, 0);
    // A fan-out's rows come in thousands at once: a few transactions, with the event loop free
    // between them (each one blocks it while SQLite works).
    for (let i = 0; i < batch.length; i += MAX_ROWS_PER_TX) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      const part = batch.length <= MAX_ROWS_PER_TX ? batch : batch.slice(i, i + MAX_ROWS_PER_TX);
      try {
        await write(part.map(opOf));
        for (const b of part) settle(b);
      } catch {
        // One bad write must not sink the others: one by one, each answering for itself.
        for (const b of part)
          await write([opOf(b)]).then(
            () => settle(b),
            (error: unknown) => settle(b, { error }),
          );
      }
    }
  }

  function arm(from: number, delay: number): void {
    const at = from + delay;
    if (timer && timerAt <= at) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(
      () => {
        timer = null;
        chain = chain.then(() => writeBatch(false));
      },
      Math.max(0, at - Date.now()),
    );
  }

  /** Queues a change of job `id`; a queued insert of it absorbs the change (it is written once). */
  function queueUpdate(id: string, patch: Partial<JobsTable>, soon: boolean, onError?: (e: unknown) => void): Queued {
    const held = inserts.get(id);
    if (held?.row) {
      // The row is not written yet: it is written once, with this change.
      Object.assign(held.row, patch);
      if (!isHeld(held)) arm(Date.now(), soon ? 0 : COALESCE_MS);
      return held;
    }
    return enqueue({ update: { id, patch }, onError }, soon);
  }

  let urgent = false;
  function enqueue(item: Pick<Queued, 'row' | 'update' | 'onError'>, soon = false): Queued {
    const q = item as Queued;
    q.at = Date.now();
    q.hold = q.at + HOLD_RUNNING_MS;
    pending.push(q);
    if (q.row) inserts.set(q.row.id, q);
    if (soon && !urgent) {
      // Someone waits for this write: go with the next turn of the event loop.
      urgent = true;
      setImmediate(() => {
        urgent = false;
        chain = chain.then(() => writeBatch(false));
      });
    }
    // A few ms of coalescing: results of a fan-out arrive spread out, and each transaction's
    // begin/commit costs more than the rows in it. Held inserts have their own, later deadline.
    arm(q.at, isHeld(q) ? HOLD_RUNNING_MS : COALESCE_MS);
    return q;
  }

  /**
   * Waits until every queued write is in the database (`all` false: except the held rows of
   * running jobs — enough for reads of queued or waiting jobs, like the periodic sweep).
   */
  async function settled(all = true): Promise<void> {
    if (pending.length) chain = chain.then(() => writeBatch(all));
    await chain;
  }

  // Every row carries every column, so rows of one multi-row insert line up.
  const full = (r: JobsTable): JobsTable => (r.instance_id !== undefined ? r : { instance_id: null, ...r });

  return {
    settled,
    insert(rows: JobsTable | JobsTable[]): Promise<void> {
      if (!Array.isArray(rows)) return doneOf(enqueue({ row: full(rows) }));
      return Promise.all(rows.map((row) => doneOf(enqueue({ row: full(row) })))).then(() => undefined);
    },
    /** Queues the row without anyone waiting for it (a fan-out's jobs); a failed write goes to `onError`. */
    insertBehind(row: JobsTable, onError: (e: unknown) => void): void {
      enqueue({ row: full(row), onError });
    },
    /** `soon`: the caller waits for it (written with the next turn, not after the coalescing delay). */
    update(id: string, patch: Partial<JobsTable>, soon = false): Promise<void> {
      return doneOf(queueUpdate(id, patch, soon));
    },
    /**
     * `update` that nobody waits for (a job that finished, on one process): no promise. A failed
     * write goes to `onError`, or, while the job's own insert is still queued, to the insert's.
     */
    updateBehind(id: string, patch: Partial<JobsTable>, onError: (e: unknown) => void): void {
      queueUpdate(id, patch, false, onError);
    },
    /**
     * A fan-out starts: the rows of its jobs, running or finished, are held until `answered` (at
     * most HOLD_MAX_MS from their creation, `dueAt`), so its answer does not wait for their writes.
     */
    answering(batchId: string): void {
      if (hold) answering.add(batchId);
    },
    /** The fan-out has answered (or failed): its held rows are written now. */
    answered(batchId: string): void {
      if (answering.delete(batchId) && pending.length) arm(Date.now(), 0);
    },
    /** The job was sent now: its held row waits for the result from here (within HOLD_MAX_MS of its creation). */
    started(id: string): void {
      const held = inserts.get(id);
      if (held) held.hold = Math.min(Date.now() + HOLD_RUNNING_MS, held.at + HOLD_MAX_MS);
    },
    /** Conditional state change; false when the job was no longer in one of `from`. */
    async transition(id: string, from: readonly JobState[], patch: Partial<JobsTable>): Promise<boolean> {
      await settled();
      const r = await db
        .updateTable('jobs')
        .set(patch)
        .where('id', '=', id)
        .where('state', 'in', [...from])
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    /**
     * The final write of a job when instances share the database: not over another final state
     * (an instance declared lost, that only stalled, must not turn the `failed` a survivor wrote
     * back into its own late result). False when the row kept its state.
     */
    async finishIfOpen(id: string, patch: Partial<JobsTable> & { state: JobState }): Promise<boolean> {
      await settled();
      const r = await db
        .updateTable('jobs')
        .set(patch)
        .where('id', '=', id)
        .where((eb) => eb.or([eb('state', 'not in', [...FINAL_STATES]), eb('state', '=', patch.state)]))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async get(id: string): Promise<JobsTable | undefined> {
      await settled();
      return db
        .selectFrom('jobs')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', id), eb('correlation_id', '=', id)]))
        .executeTakeFirst();
    },
    async byBatch(batchId: string): Promise<JobsTable[]> {
      await settled();
      return db.selectFrom('jobs').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
    },
    async queuedFor(satelliteId: string): Promise<JobsTable[]> {
      await settled(false);
      return db.selectFrom('jobs').selectAll().where('satellite_id', '=', satelliteId).where('state', '=', 'queued').orderBy('id').execute();
    },
    async list(f: {
      satellite_id?: string | undefined;
      state?: string | undefined;
      batch_id?: string | undefined;
      projects?: string[] | undefined;
      page: number;
      per_page: number;
    }) {
      await settled();
      if (f.projects && f.projects.length === 0) return { items: [], total: 0 };
      let sel = db.selectFrom('jobs');
      const projects = f.projects;
      if (projects) sel = sel.where('satellite_id', 'in', (eb) => eb.selectFrom('satellites').select('id').where('project', 'in', projects));
      if (f.satellite_id) sel = sel.where('satellite_id', '=', f.satellite_id);
      if (f.state) sel = sel.where('state', '=', f.state as JobState);
      if (f.batch_id) sel = sel.where('batch_id', '=', f.batch_id);
      const [{ n } = { n: 0 }] = await sel.select((eb) => eb.fn.countAll<number>().as('n')).execute();
      const rows = await sel
        .selectAll()
        .orderBy('id', 'desc')
        .limit(f.per_page)
        .offset((f.page - 1) * f.per_page)
        .execute();
      return { items: rows.map((r) => toJobView(r)), total: Number(n) };
    },
    /** Ends running jobs a dead process left behind. Pending approvals and queued jobs survive. */
    /**
     * Ends running jobs a process left behind, as `failed` with `reason`: all of them, or only
     * `ids`, or (scale-out) those of one dead `instance`, or of every instance not in `keep`.
     * Returns their ids.
     */
    async failRunning(reason: string, w: { ids?: string[]; instance?: string; keep?: Set<string> } = {}): Promise<string[]> {
      await settled();
      if (w.ids?.length === 0) return [];
      let q = db
        .updateTable('jobs')
        .set({ state: 'failed', finished_at: new Date().toISOString(), error_code: 'INTERNAL_ERROR', error_message: reason })
        .where('state', '=', 'running');
      if (w.ids) q = q.where('id', 'in', w.ids);
      if (w.instance) q = q.where('instance_id', '=', w.instance);
      const keep = w.keep;
      if (keep?.size) q = q.where((eb) => eb.or([eb('instance_id', 'is', null), eb('instance_id', 'not in', [...keep])]));
      const rows = await q.returning('id').execute();
      return rows.map((r) => r.id);
    },
    /** Queued jobs whose queue_until passed end timed_out. Returns their ids. */
    async expireQueued(now: string): Promise<string[]> {
      await settled(false);
      const rows = await db.selectFrom('jobs').select('id').where('state', '=', 'queued').where('queue_until', '<', now).execute();
      const ids = rows.map((r) => r.id);
      if (ids.length) {
        await db
          .updateTable('jobs')
          .set({ state: 'timed_out', finished_at: now, error_code: 'COMMAND_TIMEOUT', error_message: 'satellite did not come online before queue_until' })
          .where('id', 'in', ids)
          .where('state', '=', 'queued')
          .execute();
      }
      return ids;
    },
  };
};

export type CommandsStore = ReturnType<typeof commandsStoreFactory>;
