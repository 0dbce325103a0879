import { close, closeSync, mkdirSync, openSync, readdirSync, readFileSync, rm, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { HiveError } from '@hive/protocol';
import type { Logger } from 'pino';
import { newId } from '../../lib/ids.js';
import { redact } from '../../lib/redact.js';
import type { Db } from '../../store/db.js';
import { fromJson, toJson } from '../../store/db.js';
import type { AuditLogsTable } from '../../store/schema.js';
import type { BatchWrite } from '../../store/writer.js';
import { type Anchor, chainWriter, rowFromWalLine, type VerifyReport, verifyChains } from './audit-chain.js';

export interface AuditActor {
  type: string;
  id: string;
  name: string;
  ip?: string | undefined;
}

export interface AuditInput {
  actor: AuditActor;
  action: string;
  target?: { type: string; id: string } | undefined;
  details?: Record<string, unknown> | undefined;
  result: 'success' | 'failure';
  error?: string | undefined;
  sourceIp?: string | undefined;
  correlationId?: string | undefined;
}

export interface AuditEntry {
  id: string;
  timestamp: string;
  actor: { type: string; id: string; name: string };
  action: string;
  target: { type: string; id: string } | null;
  details: Record<string, unknown>;
  result: 'success' | 'failure';
  error: string | null;
  source_ip: string | null;
  correlation_id: string | null;
  /**
   * Where the entry sits in its hash chain (docs/audit.md): an entry's `hash` can be compared
   * with a head noted earlier. Null on entries from before hash chaining.
   */
  seal: { chain: string; seq: number; hash: string; prev_hash: string | null } | null;
}

export interface AuditQuery {
  action?: string | undefined;
  actor_id?: string | undefined;
  target_id?: string | undefined;
  correlation_id?: string | undefined;
  result?: 'success' | 'failure' | undefined;
  since?: string | undefined;
  until?: string | undefined;
  page: number;
  per_page: number;
  /** Restricted principal: only entries about satellites of these projects, or its own actions. */
  scope?: { projects: string[]; actorId: string } | undefined;
}

/** Entries deleted per statement by retention (`prune`). */
const PRUNE_CHUNK = 5000;
/** Entries per transaction; a larger backlog goes in several, with a turn of the event loop between them. */
const BATCH = 1000;
/** How long entries wait to be written together. */
const WRITE_DELAY_MS = 20;
/** …and at most this long while a fan-out has not answered (see `deferWrites`). */
const DEFERRED_DELAY_MS = 5000;

/**
 * The audit trail. `log` never blocks the caller: entries are queued and written in batches in
 * one transaction (thousands of connects per second stay cheap); a failed write keeps the batch
 * and retries, and `flush` (called by queries and at shutdown) waits until everything is stored.
 * Each entry is sealed into this process's hash chain as it is logged (see audit-chain.ts).
 */
export const auditServiceFactory = ({ db, write, logger, walDir }: { db: Db; write: BatchWrite; logger: Logger; walDir?: string | undefined }) => {
  let queue: AuditLogsTable[] = [];
  /** Write-ahead log segment of each queued entry (same order as `queue`). */
  let queueSeg: number[] = [];
  const wal = walDir ? createWal(walDir, logger) : undefined;
  let writing: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let retryMs = 100;
  const chain = chainWriter();

  /** The entry's row, sealed into this process's chain, and its write-ahead log line. */
  function toRow(e: AuditInput): { row: AuditLogsTable; line: string } {
    const row: AuditLogsTable = {
      id: newId('aud'),
      ts: new Date().toISOString(),
      actor_type: e.actor.type,
      actor_id: e.actor.id,
      actor_name: e.actor.name,
      action: e.action,
      target_type: e.target?.type ?? null,
      target_id: e.target?.id ?? null,
      details: toJson(redact(e.details ?? {})),
      result: e.result,
      error: e.error ? String(redact(e.error)).slice(0, 2000) : null,
      source_ip: e.sourceIp ?? e.actor.ip ?? null,
      correlation_id: e.correlationId ?? null,
    };
    // Sealed here, in the order entries are logged and before the write-ahead log sees them.
    const line = chain.seal(row);
    return { row, line };
  }

  /**
   * Writes the entries queued now (in transactions of BATCH at most). Entries logged meanwhile wait
   * for the next write, WRITE_DELAY_MS later: under steady load, writing each one as soon as the
   * last transaction was done made transactions of one or two entries.
   */
  async function writeAll(): Promise<void> {
    let left = queue.length;
    for (let first = true; left > 0 && queue.length > 0; first = false) {
      if (!first) await new Promise((r) => setImmediate(r));
      const batch = queue.slice(0, Math.min(BATCH, left));
      const segs = queueSeg.slice(0, batch.length);
      // Now and then new entries go to a fresh segment, so older ones can be deleted once stored.
      wal?.rotate();
      try {
        // A retry after a commit whose answer was lost must not fail on the ids it already wrote.
        await write(batch.map((row) => ({ table: 'audit_logs', kind: 'insert', row: row as unknown as Record<string, unknown>, ignoreConflict: true })));
        queue = queue.slice(batch.length);
        queueSeg = queueSeg.slice(batch.length);
        left -= batch.length;
        wal?.stored(segs);
        retryMs = 100;
      } catch (err) {
        logger.error({ err: (err as Error).message, pending: queue.length }, 'audit write failed; will retry');
        await new Promise((r) => setTimeout(r, retryMs));
        retryMs = Math.min(retryMs * 2, 5000);
        if (closed && retryMs >= 5000) throw err;
      }
    }
  }

  let closed = false;
  /** Fan-outs that have not answered yet (`deferWrites`). */
  let deferred = 0;
  let timerDelay = 0;

  function schedule(): void {
    if (writing) return;
    // Entries are safe in the write-ahead log already; fewer, larger transactions cost less (each
    // commit writes WAL pages; at 1,000 commands a second commits were ~40 µs per command).
    const delay = deferred > 0 ? DEFERRED_DELAY_MS : WRITE_DELAY_MS;
    if (timer) {
      if (timerDelay <= delay) return;
      clearTimeout(timer);
    }
    timerDelay = delay;
    timer = setTimeout(() => {
      timer = null;
      void startWrite();
    }, delay);
  }

  /** Starts writing what is queued, unless a write is under way (which reschedules what is left). */
  function startWrite(): Promise<void> {
    if (!writing) {
      writing = writeAll().finally(() => {
        writing = null;
        if (queue.length > 0) schedule();
      });
    }
    return writing;
  }

  /**
   * Resolves once everything logged before the call, and whatever came in meanwhile, is stored.
   * Only for callers that wait (queries, close): the timer's write must not chain itself to the
   * next one, or under steady load each write's promise would wait for the next, and the chain of
   * them would live (and grow) until the queue happened to be empty.
   */
  function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    return startWrite().then(() => (queue.length > 0 ? flush() : undefined));
  }

  function toEntry(r: AuditLogsTable): AuditEntry {
    return {
      id: r.id,
      timestamp: r.ts,
      actor: { type: r.actor_type, id: r.actor_id, name: r.actor_name },
      action: r.action,
      target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
      details: fromJson(r.details, {}),
      result: r.result,
      error: r.error,
      source_ip: r.source_ip,
      correlation_id: r.correlation_id,
      seal: r.chain && r.hash ? { chain: r.chain, seq: Number(r.seq), hash: r.hash, prev_hash: r.prev_hash ?? null } : null,
    };
  }

  return {
    /**
     * Logs an entry: sealed, in the write-ahead log, queued for the database. `batched`: its
     * write-ahead line may wait for the end of this turn of the event loop and go out with the
     * others of the turn (a fan-out's results arrive thousands a second; one write each was ~12 %
     * of the hub's time in a 10,000-target fan-out). Only for entries nobody is told about before
     * `settleWal()`: the fan-out calls it before it answers.
     */
    log(e: AuditInput, opts?: { batched?: boolean }): void {
      const { row, line } = toRow(e);
      queue.push(row);
      queueSeg.push(wal ? wal.append(line, opts?.batched === true) : 0);
      schedule();
    },
    /**
     * A fan-out starts: entries wait to be written to the database until it has answered (they
     * are in the write-ahead log; queries flush first), at most DEFERRED_DELAY_MS. Returns the
     * release, which the fan-out calls once, when it has answered or failed.
     */
    deferWrites(): () => void {
      deferred++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        deferred--;
        if (deferred === 0 && queue.length > 0) schedule();
      };
    },
    /** Writes the write-ahead lines of `batched` entries now. */
    settleWal(): void {
      wal?.drain();
    },
    flush,
    /**
     * Stores entries a previous process logged but did not get into the database before it died
     * (SIGKILL, power loss of the process): the write-ahead log under `walDir`. Returns how many.
     */
    async recover(): Promise<number> {
      if (!walDir) return 0;
      let restored = 0;
      for (const file of leftoverSegments(walDir, wal?.prefix)) {
        const rows: AuditLogsTable[] = [];
        for (const line of readFileSync(file, 'utf8').split('\n')) {
          if (!line.trim()) continue;
          try {
            const row = rowFromWalLine(line);
            if (row) rows.push(row);
          } catch {
            /* a line cut by the crash */
          }
        }
        for (let i = 0; i < rows.length; i += BATCH) {
          const r = await db
            .insertInto('audit_logs')
            .values(rows.slice(i, i + BATCH))
            .onConflict((oc) => oc.column('id').doNothing())
            .executeTakeFirst();
          restored += Number(r.numInsertedOrUpdatedRows ?? 0);
        }
        rmSync(file, { force: true });
      }
      if (restored) logger.warn({ restored }, 'audit entries recovered from the write-ahead log');
      return restored;
    },
    async query(q: AuditQuery): Promise<{ items: AuditEntry[]; total: number }> {
      await flush();
      let sel = db.selectFrom('audit_logs');
      const scope = q.scope;
      if (scope) {
        sel = sel.where((eb) =>
          eb.or([
            eb('actor_id', '=', scope.actorId),
            ...(scope.projects.length ? [eb('target_id', 'in', eb.selectFrom('satellites').select('id').where('project', 'in', scope.projects))] : []),
          ]),
        );
      }
      if (q.action) {
        // `pairing.*` matches a whole family of actions
        sel = q.action.endsWith('.*') ? sel.where('action', 'like', `${q.action.slice(0, -1)}%`) : sel.where('action', '=', q.action);
      }
      if (q.actor_id) sel = sel.where('actor_id', '=', q.actor_id);
      if (q.target_id) sel = sel.where('target_id', '=', q.target_id);
      if (q.correlation_id) sel = sel.where('correlation_id', '=', q.correlation_id);
      if (q.result) sel = sel.where('result', '=', q.result);
      if (q.since) sel = sel.where('ts', '>=', new Date(q.since).toISOString());
      if (q.until) sel = sel.where('ts', '<=', new Date(q.until).toISOString());
      const [{ n } = { n: 0 }] = await sel.select((eb) => eb.fn.countAll<number>().as('n')).execute();
      const rows = await sel
        .selectAll()
        .orderBy('id', 'desc')
        .limit(q.per_page)
        .offset((q.page - 1) * q.per_page)
        .execute();
      return { items: rows.map(toEntry), total: Number(n) };
    },
    async get(id: string): Promise<AuditEntry> {
      await flush();
      const row = await db.selectFrom('audit_logs').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new HiveError('NOT_FOUND', `Audit entry ${id} not found`);
      return toEntry(row);
    },
    /**
     * Checks every chain of the audit log (all instances'), page by page; see audit-chain.ts.
     * `anchors`: heads noted earlier (`chain:seq:hash`); a cut, changed or vanished one is reported.
     */
    async verify(opts: { anchors?: Anchor[] } = {}): Promise<VerifyReport> {
      await flush();
      return verifyChains(db, opts);
    },
    /** This process's chain id (its entries' `chain`). */
    chain: chain.chain,
    /**
     * Deletes entries older than `days` (audit.retention_days). Returns how many. Chains stay
     * verifiable: a chain whose start is gone is accepted when the entry before its first remaining
     * one is older than every entry left (what deleting by age leaves behind).
     */
    async prune(days: number, now = new Date(), chunk = PRUNE_CHUNK): Promise<number> {
      await flush();
      const cutoff = new Date(now.getTime() - days * 86_400_000).toISOString();
      // Oldest first, a chunk per statement with a turn of the event loop between: a first
      // retention run over millions of entries must neither stall the hub (SQLite works
      // synchronously on its connection) nor hold the write lock that job rows and audit entries
      // wait for (see writer.ts) for longer than one chunk takes.
      let n = 0;
      for (;;) {
        const r = await db
          .deleteFrom('audit_logs')
          .where('id', 'in', (eb) => eb.selectFrom('audit_logs').select('id').where('ts', '<', cutoff).orderBy('ts').limit(chunk))
          .executeTakeFirst();
        const k = Number(r.numDeletedRows);
        n += k;
        if (k < chunk) break;
        await new Promise((r) => setImmediate(r));
      }
      if (n) logger.info({ deleted: n, cutoff }, 'audit retention applied');
      return n;
    },
    async close(): Promise<void> {
      closed = true;
      wal?.drain();
      await flush();
      wal?.close();
    },
  };
};

export type AuditService = ReturnType<typeof auditServiceFactory>;

/**
 * Append-only segments `audit-<pid>-<seq>.wal`, one entry per line: its canonical JSON array
 * with the hash appended (older versions wrote a JSON row; recovery reads both). An entry is appended
 * before it is queued; a segment is deleted when all its entries are in the database.
 */
function createWal(dir: string, logger: Logger) {
  const tag = `${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const segments = new Map<number, { file: string; fd: number; pending: number; written: number; opened: number }>();
  let seq = 0;
  // A log that cannot be written (disk full, directory removed) never stops auditing: entries
  // stay queued in memory and are retried as before; it is said once.
  let broken = false;
  const fail = (err: unknown) => {
    if (!broken) logger.error({ err: (err as Error).message }, 'audit write-ahead log failed; entries are kept in memory only');
    broken = true;
  };
  function open() {
    const file = path.join(dir, `audit-${tag}-${++seq}.wal`);
    let fd = -1;
    if (!broken) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        fd = openSync(file, 'a', 0o600);
      } catch (err) {
        fail(err);
      }
    }
    const seg = { file, fd, pending: 0, written: 0, opened: Date.now() };
    segments.set(seq, seg);
    return { seq, seg };
  }
  let current = open();
  /**
   * Deletes a segment whose entries are all stored. Off the event loop unless `now`: an unlink of
   * a file of a few MB took up to ~30 ms here (ext4 freeing its blocks), once a second at 1,000
   * commands a second. One still there after a crash is replayed harmlessly (its ids are skipped).
   */
  function drop(n: number, now = false) {
    const seg = segments.get(n);
    if (!seg) return;
    segments.delete(n);
    if (!now) {
      const remove = () => rm(seg.file, { force: true }, () => {});
      if (seg.fd >= 0) close(seg.fd, remove);
      else remove();
      return;
    }
    try {
      if (seg.fd >= 0) closeSync(seg.fd);
      rmSync(seg.file, { force: true });
    } catch {
      /* best effort */
    }
  }
  /** Held lines are written once this long (see `append`). */
  const HELD_MAX_CHARS = 65_536;
  /** Lines of `later` appends not written yet (all of the current segment; in order). */
  let held = '';
  let draining: NodeJS.Immediate | null = null;
  function drain(): void {
    if (draining) {
      clearImmediate(draining);
      draining = null;
    }
    if (!held) return;
    const text = held;
    held = '';
    if (!broken && current.seg.fd >= 0) {
      try {
        writeSync(current.seg.fd, text);
      } catch (err) {
        fail(err);
      }
    }
  }
  return {
    /**
     * `line`: the sealed entry, newline included (audit-chain.ts `rowFromWalLine` reads it back).
     * `later`: written with the other held lines at the end of this turn of the event loop (or
     * before the next line that is not held, a new segment, or `drain()`), in one write.
     */
    append(line: string, later = false): number {
      held += line;
      // Held lines are written by 64 K characters at most: a fan-out's turn can hold thousands,
      // and lines waiting in memory were copied by every scavenge meanwhile.
      if (!later || held.length >= HELD_MAX_CHARS) drain();
      else draining ??= setImmediate(drain);
      current.seg.pending++;
      current.seg.written++;
      return current.seq;
    },
    /**
     * Starts a new segment once the current one is a second old or holds 10,000 entries (not on
     * every batch: at thousands of entries a second that was an open, a close and an unlink every
     * few milliseconds). A segment goes when all its entries are stored.
     */
    rotate(): void {
      drain();
      if (current.seg.pending > 0 && (current.seg.written >= 10_000 || Date.now() - current.seg.opened >= 1000)) current = open();
    },
    stored(segs: number[]): void {
      for (const n of segs) {
        const seg = segments.get(n);
        if (seg) seg.pending--;
      }
      for (const [n, seg] of segments) if (n !== current.seq && seg.pending <= 0) drop(n);
    },
    /** File name prefix of this process's own segments (recovery leaves them alone). */
    prefix: `audit-${tag}-`,
    drain,
    close(): void {
      drain();
      for (const [n, seg] of [...segments]) if (seg.pending <= 0) drop(n, true);
    },
  };
}

/** Write-ahead log segments in `dir`, except those whose name starts with `own`. */
function leftoverSegments(dir: string, own?: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /^audit-.*\.wal$/.test(f) && !(own && f.startsWith(own)))
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}
