import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';

/** Tables whose rows are keyed by a text `id` (everything written through `write`). */
type IdTable = { [K in keyof Database]: Database[K] extends { id: string } ? K : never }[keyof Database];

/** One row write of a batch: an insert (optionally ignoring a row whose id exists) or an update by id. */
export type WriteOp =
  | { table: IdTable; kind: 'insert'; row: Record<string, unknown>; ignoreConflict?: boolean }
  | { table: IdTable; kind: 'update'; id: string; patch: Record<string, unknown> };

/** Writes a batch of row writes in one transaction, in order; all or nothing. */
export type BatchWrite = (ops: readonly WriteOp[]) => Promise<void>;

/** Columns with a value (undefined means "leave as is", as in Kysely). */
const defined = (o: Record<string, unknown>): string[] => Object.keys(o).filter((k) => o[k] !== undefined);

/**
 * Runs a batch of row writes in one SQLite transaction, each op with a cached prepared statement.
 * Self-contained (it uses nothing from outside its body): its source also runs in the write worker
 * thread (see `startWriteWorker`).
 */
export function sqliteBatchRunner(sqlite: SQLite.Database): (ops: readonly WriteOp[]) => void {
  const IDENT = /^[a-z_][a-z0-9_]*$/;
  const ident = (s: string): string => {
    if (!IDENT.test(s)) throw new Error(`not a column name: ${s}`);
    return s;
  };
  // The statement of the last row shape seen per table and kind: rows of one table nearly
  // always carry the same columns, so most ops reuse it without building any SQL text.
  const shapes = new Map<string, { cols: string[]; stmt: SQLite.Statement }>();
  /** Whether `o`'s defined columns (minus `skip`) are exactly `cols`; and whether any value is a boolean. */
  const fits = (o: Record<string, unknown>, cols: readonly string[], skip?: string): { same: boolean; bools: boolean } => {
    let n = 0;
    let same = true;
    let bools = false;
    for (const k in o) {
      const v = o[k];
      if (v === undefined || k === skip) continue;
      if (typeof v === 'boolean') bools = true;
      if (cols[n++] !== k) same = false;
    }
    return { same: same && n === cols.length, bools };
  };
  const statementFor = (op: WriteOp): { stmt: SQLite.Statement | null; bools: boolean } => {
    const values = op.kind === 'insert' ? op.row : op.patch;
    const key = `${op.table}:${op.kind}:${op.kind === 'insert' && op.ignoreConflict ? 1 : 0}`;
    const known = shapes.get(key);
    const skip = op.kind === 'update' ? 'id' : undefined;
    if (known) {
      const f = fits(values, known.cols, skip);
      if (f.same) return { stmt: known.stmt, bools: f.bools };
    }
    const cols = Object.keys(values)
      .filter((c) => values[c] !== undefined && c !== skip)
      .map(ident);
    if (cols.length === 0) return { stmt: null, bools: false };
    const text =
      op.kind === 'insert'
        ? `insert into ${ident(op.table)} (${cols.join(', ')}) values (${cols.map((c) => `@${c}`).join(', ')})${op.ignoreConflict ? ' on conflict (id) do nothing' : ''}`
        : `update ${ident(op.table)} set ${cols.map((c) => `${c} = @${c}`).join(', ')} where id = @id`;
    const stmt = sqlite.prepare(text);
    shapes.set(key, { cols, stmt });
    return { stmt, bools: fits(values, cols, skip).bools };
  };
  // better-sqlite3 binds named parameters from the object (undefined binds NULL, unused keys are
  // ignored); only booleans need converting.
  const bindable = (o: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const k in o) out[k] = typeof o[k] === 'boolean' ? Number(o[k]) : o[k];
    return out;
  };
  return sqlite.transaction((ops: readonly WriteOp[]) => {
    for (const op of ops) {
      const { stmt, bools } = statementFor(op);
      if (!stmt) continue;
      if (op.kind === 'insert') stmt.run(bools ? bindable(op.row) : op.row);
      else stmt.run(bindable({ ...op.patch, id: op.id }));
    }
  });
}

/**
 * The hot write paths (job rows of a fan-out, audit entries) write thousands of rows a second.
 * On SQLite each op runs a cached prepared statement inside one transaction (`sqliteBatchRunner`):
 * about half the CPU of Kysely's compiled multi-row inserts, most of it spent in SQLite itself.
 * With a database file that work runs in a worker thread with its own connection
 * (`startWriteWorker`), off the event loop; in memory (tests) or should the worker die, on the
 * hub's connection while Kysely's single connection is held. On PostgreSQL the work happens in
 * the server, so Kysely stays (consecutive inserts into one table go as multi-row inserts).
 */
export function batchWriter(
  db: Db,
  sqlite?: SQLite.Database,
  file?: string,
  busy: SqliteBusyOptions = {},
  /** The WAL's limit (the checkpointer's): past it, the write worker checkpoints after its transaction. */
  walLimitBytes: number = WAL_LIMIT_BYTES,
): BatchWrite & { close(): Promise<void>; worker?: Worker; checkpoint?: () => boolean } {
  if (sqlite) {
    const run = sqliteBatchRunner(sqlite);
    const here: BatchWrite = async (ops) => {
      if (ops.length === 0) return;
      await db.connection().execute(async () => run(ops));
    };
    if (!file) return Object.assign(here, { close: async () => {} });
    const worker = startWriteWorker(file, busy, walLimitBytes);
    const write: BatchWrite = (ops) => (ops.length === 0 ? Promise.resolve() : worker.alive() ? worker.write(ops) : here(ops));
    return Object.assign(write, { close: () => worker.close(), worker: worker.thread, checkpoint: () => worker.checkpoint() });
  }
  const write: BatchWrite = async (ops) => {
    if (ops.length === 0) return;
    await db.transaction().execute(async (trx) => {
      // Rows of several tables: each op names its table.
      const t = trx as unknown as Kysely<any>;
      for (let i = 0; i < ops.length; ) {
        const op = ops[i] as WriteOp;
        if (op.kind === 'update') {
          if (defined(op.patch).length) await t.updateTable(op.table).set(op.patch).where('id', '=', op.id).execute();
          i++;
          continue;
        }
        // Consecutive inserts into the same table with the same columns: one statement (≤ 100 rows).
        const cols = defined(op.row).join(',');
        let j = i + 1;
        while (j < ops.length && j - i < 100) {
          const n = ops[j] as WriteOp;
          if (n.kind !== 'insert' || n.table !== op.table || !!n.ignoreConflict !== !!op.ignoreConflict || defined(n.row).join(',') !== cols) break;
          j++;
        }
        const rows = ops.slice(i, j).map((o) => (o as Extract<WriteOp, { kind: 'insert' }>).row);
        const q = t.insertInto(op.table).values(rows);
        await (op.ignoreConflict ? q.onConflict((oc) => oc.column('id').doNothing()) : q).execute();
        i = j;
      }
    });
  };
  return Object.assign(write, { close: async () => {} });
}

/** The WAL size past which the write worker checkpoints between two of its transactions (see checkpointer.ts). */
export const WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long the write worker's checkpoint waits for another connection's checkpoint to end (the hub's checkpointer thread). */
const CHECKPOINT_WAIT_MS = 500;

/** How the write worker meets another connection's write lock on the database file. */
export interface SqliteBusyOptions {
  /** SQLite's busy_timeout: how long one attempt waits for the lock (default 5000 ms). */
  timeoutMs?: number | undefined;
  /** A batch that still meets the lock is tried again until this long after its first attempt (default 60,000 ms); then it fails with SQLITE_BUSY. */
  giveUpMs?: number | undefined;
  /** Called on each retry of a batch (attempt 2, 3, …): the hub logs it. */
  onBusy?: ((attempt: number) => void) | undefined;
}

/** Pending writes of the worker: one message each, answered in order. */
interface WorkerWrite {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * A worker thread with its own connection to the database file that runs `sqliteBatchRunner`
 * for every batch, one after another. The hub's event loop only hands the rows over (a structured
 * clone, a few µs per row) instead of spending ~70 µs per row in SQLite; readers that wait for
 * queued writes wait for the worker's answer. The worker's connection checkpoints the WAL itself
 * after its commits (it is the main writer; see checkpointer.ts for the hub's connection). Should
 * the worker die, its pending writes fail (their callers retry) and later ones run on the hub's
 * connection again.
 */
function startWriteWorker(
  file: string,
  busy: SqliteBusyOptions,
  walLimitBytes: number,
): { thread: Worker; alive(): boolean; write(ops: readonly WriteOp[]): Promise<void>; checkpoint(): boolean; close(): Promise<void> } {
  // Messages are run one after another, in order. A batch that meets another connection's write
  // lock (SQLITE_BUSY after busy_timeout: a long transaction of the hub's own connection, a backup,
  // someone's sqlite3 shell) is tried again after a short pause, the ones behind it waiting, until
  // giveUpMs; each retry is reported ({ busy: attempt }), every other answer is null or the error.
  //
  // After each transaction the worker looks at the WAL's size itself (a stat, a few µs): past the
  // limit, it checkpoints right there, between two of its transactions, so the checkpoint completes
  // and the next commit starts the WAL over (journal_size_limit then cuts the file back). Waiting
  // for the checkpointer thread's next pass to notice let the WAL grow by whatever was committed
  // during that pass: on a slow disk (a pass's fsync taking a second) tens of MB. A checkpoint of
  // the checkpointer thread in progress makes a PASSIVE one return at once ("busy") without
  // copying anything: it is tried again, the worker's writes waiting, for up to CHECKPOINT_WAIT_MS.
  // Readers of an older snapshot are not waited for (PASSIVE), as before.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { statSync } = require('node:fs');
    const Database = require(workerData.module);
    const db = new Database(workerData.file, { fileMustExist: true });
    db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('cache_size = -16384');
    db.pragma('journal_size_limit = ' + workerData.walLimitBytes);
    const run = (${sqliteBatchRunner.toString()})(db);
    const walFile = workerData.file + '-wal';
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const overLimit = () => { try { return statSync(walFile).size > workerData.walLimitBytes; } catch { return false; } };
    const checkpoint = () => {
      const until = Date.now() + workerData.checkpointWaitMs;
      for (;;) {
        let r;
        try { r = db.pragma('wal_checkpoint(PASSIVE)')[0]; } catch { return; }
        if (!r || !r.busy || Date.now() >= until) return;
        Atomics.wait(pause, 0, 0, 2);
      }
    };
    const queue = [];
    const answer = (a) => {
      queue.shift();
      parentPort.postMessage(a);
      if (queue.length) attempt(Date.now(), 1);
    };
    const attempt = (since, n) => {
      const m = queue[0];
      if (m === 'close') {
        db.close();
        parentPort.close();
        return;
      }
      if (m === 'checkpoint') {
        checkpoint();
        answer(null);
        return;
      }
      try {
        run(m);
        if (overLimit()) checkpoint();
        answer(null);
      } catch (e) {
        const code = e && e.code;
        if (/^SQLITE_(BUSY|LOCKED)/.test(String(code)) && Date.now() - since < workerData.busyGiveUpMs) {
          parentPort.postMessage({ busy: n + 1 });
          setTimeout(() => attempt(since, n + 1), 50);
          return;
        }
        answer({ message: String(e && e.message), code });
      }
    };
    parentPort.on('message', (m) => {
      queue.push(m);
      if (queue.length === 1) attempt(Date.now(), 1);
    });
  `;
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(code, {
    eval: true,
    workerData: {
      module,
      file,
      busyTimeoutMs: busy.timeoutMs ?? 5000,
      busyGiveUpMs: busy.giveUpMs ?? 60_000,
      walLimitBytes,
      checkpointWaitMs: CHECKPOINT_WAIT_MS,
    },
  });
  worker.unref();
  // In flight, oldest first (rarely more than a couple: each writer waits for its last write).
  const pending: WorkerWrite[] = [];
  let alive = true;
  let closing = false;
  /** A checkpoint is in the worker's queue (one at a time is enough). */
  let checkpointing = false;
  let exitedResolve: () => void = () => {};
  const exited = new Promise<void>((r) => {
    exitedResolve = r;
  });
  worker.on('message', (m: { message: string; code?: string } | { busy: number } | null) => {
    if (m && 'busy' in m) {
      busy.onBusy?.(m.busy);
      return;
    }
    const w = pending.shift();
    // Idle: the worker does not keep the process up (while closing it must, until it has exited).
    if (pending.length === 0 && !closing) worker.unref();
    if (!w) return;
    if (m === null) w.resolve();
    else w.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
  });
  const gone = (err?: Error) => {
    if (!alive) return;
    alive = false;
    for (const w of pending.splice(0)) w.reject(err ?? new Error('the database write worker stopped'));
    exitedResolve();
  };
  worker.once('error', (err) => gone(err));
  worker.once('exit', () => gone());
  return {
    thread: worker,
    // Once closing, later writes go through the hub's connection (still open until the store closes).
    alive: () => alive && !closing,
    write(ops) {
      return new Promise<void>((resolve, reject) => {
        if (pending.length === 0) worker.ref(); // a write in flight keeps the process up
        pending.push({ resolve, reject });
        worker.postMessage(ops);
      });
    },
    /** Checkpoints the WAL on the worker's connection after the writes handed over; false when the worker is gone. */
    checkpoint() {
      if (!alive || closing) return false;
      if (!checkpointing) {
        checkpointing = true;
        const done = () => {
          checkpointing = false;
        };
        if (pending.length === 0) worker.ref();
        pending.push({ resolve: done, reject: done });
        worker.postMessage('checkpoint');
      }
      return true;
    },
    async close() {
      if (!alive || closing) return exited;
      closing = true;
      // Writes already handed over finish first: the worker answers messages in order.
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
