import { hash } from 'node:crypto';
import { HiveError } from '@hive/protocol';
import { newId } from '../../lib/ids.js';
import type { Db } from '../../store/db.js';
import type { AuditLogsTable } from '../../store/schema.js';

/**
 * Hash chain of the audit log (SPEC C7: tampering is detectable, `hive audit verify`).
 *
 * - One chain per writing process: a fresh chain id (`chain_…`) when the audit service starts,
 *   entries numbered by `seq` from 0 in the order `log` was called. Hub instances sharing one
 *   database never write into each other's chain, so no coordination or extra read is needed. A
 *   restarted process starts a new chain (entries a killed one left in its write-ahead log are
 *   replayed into the killed one's chain, hashes included).
 * - `hash` = SHA-256 hex over a canonical JSON array of the entry's stored fields, its chain and
 *   seq, and the previous entry's `ts` and `hash` (`prev_ts`, `prev_hash`; null on a chain's first
 *   entry). One hash per entry over a few hundred bytes, computed in memory before the entry is
 *   queued: no extra database round trip.
 * - Verification walks every chain in `seq` order, a page at a time, and reports per chain: an
 *   entry whose fields do not match its hash (modified), missing numbers (deleted), a link that does
 *   not match its predecessor (reordered, replaced, inserted), two entries with one number.
 * - Retention deletes the oldest entries (`ts` before a cutoff, for all chains at once), so a chain
 *   may legitimately start after seq 0. Its first remaining entry is accepted as the anchor when
 *   the entry before it (`prev_ts`, hashed into it) is older than the oldest entry still stored in
 *   any chain — exactly what retention leaves. Deleting the start of a chain that retention would
 *   not yet have removed is reported (missing_start).
 * - Not detectable without outside help: the end of a chain cut off (nothing follows it), a whole
 *   chain deleted, and anyone with write access recomputing every hash after a change. Against those,
 *   note the head of every chain (`chain:seq:hash`, printed by `hive audit verify`) somewhere the
 *   database's users cannot write, and pass them back as anchors: an anchored entry that is gone,
 *   changed or recomputed is reported.
 */

/** Numbers (entries) per page when verifying (one indexed query per page; the table is never loaded whole). */
const PAGE = 1000;
/** Problems listed per chain; more are counted in problems_omitted. */
const MAX_PROBLEMS = 100;

type ChainRow = Pick<
  AuditLogsTable,
  | 'id'
  | 'ts'
  | 'actor_type'
  | 'actor_id'
  | 'actor_name'
  | 'action'
  | 'target_type'
  | 'target_id'
  | 'details'
  | 'result'
  | 'error'
  | 'source_ip'
  | 'correlation_id'
  | 'chain'
  | 'seq'
  | 'prev_ts'
  | 'prev_hash'
  | 'hash'
>;

/** The canonical text an entry's hash is computed over (field order fixed; JSON escapes make it unambiguous). */
function canonical(r: ChainRow): string {
  return JSON.stringify([
    'v1',
    r.chain,
    Number(r.seq),
    r.prev_ts,
    r.prev_hash,
    r.id,
    r.ts,
    r.actor_type,
    r.actor_id,
    r.actor_name,
    r.action,
    r.target_type,
    r.target_id,
    r.details,
    r.result,
    r.error,
    r.source_ip,
    r.correlation_id,
  ]);
}

export const entryHash = (r: ChainRow): string => hash('sha256', canonical(r), 'hex');

/** Columns in the order of the canonical array after its `'v1'` (the write-ahead log stores entries so). */
const CANONICAL_COLUMNS = [
  'chain',
  'seq',
  'prev_ts',
  'prev_hash',
  'id',
  'ts',
  'actor_type',
  'actor_id',
  'actor_name',
  'action',
  'target_type',
  'target_id',
  'details',
  'result',
  'error',
  'source_ip',
  'correlation_id',
] as const;

/**
 * A sealed entry as one line of the write-ahead log, newline included: its canonical text with the
 * hash appended (the text is already made for the hash; a second JSON encoding of the row is saved).
 */
const walLineOf = (text: string, entryHash: string): string => `${text.slice(0, -1)},"${entryHash}"]\n`;

/** The row of a write-ahead log line (`walLineOf`, or a plain JSON row as older versions wrote); null if it is neither. */
export function rowFromWalLine(line: string): AuditLogsTable | null {
  const v = JSON.parse(line) as unknown;
  if (!Array.isArray(v)) return v && typeof v === 'object' ? (v as AuditLogsTable) : null;
  if (v[0] !== 'v1' || v.length !== CANONICAL_COLUMNS.length + 2) return null;
  const row: Record<string, unknown> = {};
  CANONICAL_COLUMNS.forEach((c, i) => {
    row[c] = v[i + 1];
  });
  row.hash = v[v.length - 1];
  return row as unknown as AuditLogsTable;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const TEXT_FIELDS = ['actor_type', 'actor_id', 'actor_name', 'action', 'target_type', 'target_id', 'details', 'error', 'source_ip', 'correlation_id'] as const;

/**
 * The chain this process writes. `seal` stamps a row (in place) as its next entry; called by the
 * audit service before the entry reaches the write-ahead log, so a replayed entry keeps its hash.
 */
export function chainWriter(chain: string = newId('chain')) {
  let seq = 0;
  let prevHash: string | null = null;
  let prevTs: string | null = null;
  return {
    chain,
    /** Stamps `row` (in place) and returns its write-ahead log line (see `rowFromWalLine`). */
    seal(row: AuditLogsTable): string {
      // Retention deletes by time; a clock stepping back must not put an entry "before" its predecessor.
      if (prevTs !== null && row.ts < prevTs) row.ts = prevTs;
      row.chain = chain;
      row.seq = seq;
      row.prev_ts = prevTs;
      row.prev_hash = prevHash;
      let text = canonical(row);
      // A lone UTF-16 surrogate cannot be stored as UTF-8: the database would keep U+FFFD and the
      // entry would no longer match its hash. Rare (JSON escapes it as \udXXX): replaced up front.
      if (text.includes('\\ud')) {
        const r = row as unknown as Record<string, string | null>;
        for (const k of TEXT_FIELDS) {
          const v = r[k];
          if (typeof v === 'string') r[k] = v.replace(LONE_SURROGATE, '\uFFFD');
        }
        text = canonical(row);
      }
      row.hash = hash('sha256', text, 'hex');
      seq++;
      prevHash = row.hash;
      prevTs = row.ts;
      return walLineOf(text, row.hash);
    },
  };
}

export type ChainWriter = ReturnType<typeof chainWriter>;

export interface ChainProblem {
  kind: 'modified' | 'missing' | 'broken_link' | 'duplicate' | 'unsealed' | 'missing_start' | 'anchor_mismatch' | 'truncated' | 'chain_missing';
  seq?: number;
  id?: string;
  message: string;
}

export interface ChainReport {
  chain: string;
  /** Entries of this chain present now. */
  entries: number;
  /** `genesis`: the chain's first entry (seq 0) is present; `pruned`: retention removed its start. */
  start: 'genesis' | 'pruned' | null;
  first: { seq: number; id: string; ts: string } | null;
  last: { seq: number; id: string; ts: string; action: string } | null;
  /** Hash of the last entry: note `chain:seq:hash` to anchor the chain against truncation. */
  head_hash: string | null;
  problems: ChainProblem[];
  problems_omitted?: number;
}

export interface VerifyReport {
  ok: boolean;
  /** Entries checked, all chains. */
  entries: number;
  /** Entries written before hash chaining (migration 0009): present, not verifiable. */
  unchained: number;
  /** Oldest entry still stored (any chain): a chain may start after an entry older than this (retention). */
  oldest: string | null;
  chains: ChainReport[];
}

export interface Anchor {
  chain: string;
  seq: number;
  hash: string;
}

const ANCHOR = /^([A-Za-z0-9_-]{1,128}):(\d{1,15}):([0-9a-f]{64})$/;

/** Parses `chain:seq:hash[,chain:seq:hash…]` (the heads `hive audit verify` prints). */
export function parseAnchors(s: string | undefined): Anchor[] {
  if (!s?.trim()) return [];
  return s
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((a) => {
      const m = ANCHOR.exec(a);
      if (!m) throw new HiveError('INVALID_PARAMETERS', `Anchor ${a.slice(0, 80)} is not chain:seq:hash (as printed by hive audit verify)`);
      return { chain: m[1] as string, seq: Number(m[2]), hash: m[3] as string };
    });
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Verifies every chain, one page of entries at a time (memory stays bounded by the page size and
 * the report). Entries written while it runs are included as far as it gets.
 */
export async function verifyChains(db: Db, opts: { anchors?: Anchor[]; pageSize?: number } = {}): Promise<VerifyReport> {
  const pageSize = opts.pageSize ?? PAGE;
  const anchors = new Map<string, Anchor[]>();
  for (const a of opts.anchors ?? []) anchors.set(a.chain, [...(anchors.get(a.chain) ?? []), a]);

  // The oldest entry still stored. Re-read before blaming a gap on tampering: retention running
  // alongside may have removed entries this walk had already passed.
  let oldest: string | null | undefined;
  const readOldest = async () => {
    const r = await db
      .selectFrom('audit_logs')
      .select((eb) => eb.fn.min('ts').as('m'))
      .executeTakeFirst();
    oldest = (r?.m as string | null | undefined) ?? null;
    return oldest;
  };
  /** Whether entries before one written after `prevTs` are gone the way retention removes them. */
  const retained = async (prevTs: string | null | undefined): Promise<boolean> => {
    if (prevTs == null) return false;
    const o = oldest === undefined ? await readOldest() : oldest;
    if (o !== null && prevTs < o) return true;
    const again = await readOldest();
    return again !== null && prevTs < again;
  };

  const chains: ChainReport[] = [];
  let total = 0;
  let name: string | null =
    (await db.selectFrom('audit_logs').select('chain').where('chain', 'is not', null).orderBy('chain').limit(1).executeTakeFirst())?.chain ?? null;
  while (name != null) {
    const report: ChainReport = { chain: name, entries: 0, start: null, first: null, last: null, head_hash: null, problems: [] };
    const problem = (p: ChainProblem) => {
      if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
      else report.problems_omitted = (report.problems_omitted ?? 0) + 1;
    };
    const pending = new Map((anchors.get(name) ?? []).map((a) => [a.seq, a]));
    anchors.delete(name);
    let prev: { seq: number; ts: string; hash: string | null } | null = null;
    // Pages are ranges of numbers on the (chain, seq) index, [lo, lo + pageSize): bounded whatever
    // plan the database picks (PostgreSQL without statistics sorts everything past a bare `seq > x`
    // before a LIMIT), and duplicates of a number always arrive together. An empty range (the start
    // removed by retention, or a long gap) jumps to the next number present; none left ends the chain.
    const chain = name;
    /** The chain's lowest number (at or above `from`), or null when there is none. */
    const lowestSeq = async (from: number | null): Promise<number | null> => {
      const r = await db
        .selectFrom('audit_logs')
        .select('seq')
        .where('chain', '=', chain)
        .where((eb) => (from === null ? eb('seq', 'is not', null) : eb('seq', '>=', from)))
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst();
      return r?.seq == null ? null : Number(r.seq);
    };
    let lo = (await lowestSeq(null)) ?? 0;
    for (;;) {
      const rows: ChainRow[] = await db
        .selectFrom('audit_logs')
        .selectAll()
        .where('chain', '=', name)
        .where('seq', '>=', lo)
        .where('seq', '<', lo + pageSize)
        .orderBy('seq')
        .orderBy('id')
        .execute();
      if (rows.length === 0) {
        const next = await lowestSeq(lo);
        if (next === null) break;
        lo = next;
        continue;
      }
      for (const r of rows) {
        const seq = Number(r.seq);
        const at = { seq, id: r.id };
        report.entries++;
        if (!report.first) report.first = { seq, id: r.id, ts: r.ts };
        report.last = { seq, id: r.id, ts: r.ts, action: r.action };
        report.head_hash = r.hash ?? null;
        if (!r.hash) problem({ kind: 'unsealed', ...at, message: `entry #${seq} (${r.id}) has no hash` });
        else if (entryHash(r) !== r.hash)
          problem({ kind: 'modified', ...at, message: `entry #${seq} (${r.id}) was changed: its fields do not match its hash` });
        if (prev === null) {
          if (seq === 0 && r.prev_hash == null) report.start = 'genesis';
          else if (seq === 0) problem({ kind: 'broken_link', ...at, message: `entry #0 (${r.id}) names a predecessor` });
          else {
            report.start = 'pruned';
            if (!(await retained(r.prev_ts)))
              problem({
                kind: 'missing_start',
                ...at,
                message: `entries #0–#${seq - 1} are missing; the one before ${r.id} was written ${r.prev_ts ?? '(unknown)'}, after the oldest entry still stored (${oldest ?? 'none'}), so retention did not remove them`,
              });
          }
        } else if (seq === prev.seq) {
          problem({ kind: 'duplicate', ...at, message: `a second entry #${seq} (${r.id})` });
        } else if (seq > prev.seq + 1) {
          if (!(await retained(r.prev_ts))) {
            const n = seq - prev.seq - 1;
            problem({
              kind: 'missing',
              ...at,
              message: `${n === 1 ? `entry #${prev.seq + 1} is` : `entries #${prev.seq + 1}–#${seq - 1} are`} missing (before ${r.id})`,
            });
          }
        } else if (r.prev_hash !== prev.hash || r.prev_ts !== prev.ts) {
          problem({ kind: 'broken_link', ...at, message: `entry #${seq} (${r.id}) does not follow entry #${prev.seq}: reordered, replaced or inserted` });
        }
        const a = pending.get(seq);
        if (a) {
          pending.delete(seq);
          if (a.hash !== r.hash)
            problem({ kind: 'anchor_mismatch', ...at, message: `entry #${seq} (${r.id}) is not the one anchored (hash ${a.hash.slice(0, 16)}…)` });
        }
        prev = { seq, ts: r.ts, hash: r.hash ?? null };
      }
      total += rows.length;
      lo += pageSize;
      // Long walks must not hold the event loop (better-sqlite3 answers synchronously).
      await yieldLoop();
    }
    // Entries of this chain without a number are outside the walk above.
    for (const r of await db.selectFrom('audit_logs').select('id').where('chain', '=', name).where('seq', 'is', null).limit(MAX_PROBLEMS).execute())
      problem({ kind: 'unsealed', id: r.id, message: `entry ${r.id} has no number in the chain` });
    for (const a of pending.values()) {
      if (report.first && a.seq < report.first.seq) continue; // before the chain's start: removed by retention (checked above)
      if (report.last && a.seq > report.last.seq)
        problem({
          kind: 'truncated',
          seq: a.seq,
          message: `the chain ends at #${report.last.seq} but entry #${a.seq} was anchored: entries were removed from its end`,
        });
      else problem({ kind: 'missing', seq: a.seq, message: `anchored entry #${a.seq} is missing` });
    }
    chains.push(report);
    const current: string = name;
    name = (await db.selectFrom('audit_logs').select('chain').where('chain', '>', current).orderBy('chain').limit(1).executeTakeFirst())?.chain ?? null;
  }
  for (const [chain, list] of anchors) {
    chains.push({
      chain,
      entries: 0,
      start: null,
      first: null,
      last: null,
      head_hash: null,
      problems: [
        {
          kind: 'chain_missing',
          seq: Math.max(...list.map((a) => a.seq)),
          message: 'anchored chain has no entries: deleted (or wholly older than the retention period; then drop its anchor)',
        },
      ],
    });
  }
  const u = await db
    .selectFrom('audit_logs')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('chain', 'is', null)
    .executeTakeFirst();
  return {
    ok: chains.every((c) => c.problems.length === 0),
    entries: total,
    unchained: Number(u?.n ?? 0),
    oldest: oldest === undefined ? await readOldest() : oldest,
    chains,
  };
}
