import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Store } from '../../store/db.js';
import { auditRow, testDrivers } from '../../store/test-drivers.js';
import { type ChainReport, entryHash, verifyChains } from './audit-chain.js';
import { type AuditService, auditServiceFactory } from './audit-service.js';

const drivers = await testDrivers('audit chain tests');
const logger = pino({ level: 'silent' });
const DAY = 86_400_000;

const entry = (i: number, action = 'test.chain') => ({
  actor: { type: 'api_key', id: 'k1', name: 'admin' },
  action,
  target: { type: 'satellite', id: `s${i % 3}` },
  details: { i, command: 'system.run', params: { cmd: `echo ${i}` } },
  result: 'success' as const,
  sourceIp: '127.0.0.1',
  correlationId: `c${i}`,
});

const kinds = (c: ChainReport | undefined) => (c?.problems ?? []).map((p) => p.kind);

for (const d of drivers) {
  describe.skipIf(d.skip)(`audit hash chain on ${d.name}`, () => {
    const opened: { store: Store; cleanup: () => Promise<void> }[] = [];
    const services: AuditService[] = [];
    const open = async () => {
      const o = await d.open();
      opened.push(o);
      return o.store;
    };
    const service = (store: Store) => {
      const s = auditServiceFactory({ db: store.db, write: store.write, logger });
      services.push(s);
      return s;
    };
    /** Entries of one chain in order. */
    const rowsOf = (store: Store, chain: string) => store.db.selectFrom('audit_logs').selectAll().where('chain', '=', chain).orderBy('seq').execute();
    afterEach(() => {
      vi.useRealTimers();
    });
    afterAll(async () => {
      for (const s of services) await s.close();
      for (const o of opened) {
        await o.store.close();
        await o.cleanup();
      }
    });

    it('entries are sealed in the order logged: seq from 0, each linked to the one before, hash over the stored fields', async () => {
      const store = await open();
      const audit = service(store);
      for (let i = 0; i < 5; i++) audit.log(entry(i));
      await audit.flush();
      const rows = await rowsOf(store, audit.chain);
      expect(rows.map((r) => Number(r.seq))).toEqual([0, 1, 2, 3, 4]);
      expect(rows[0]?.prev_hash).toBeNull();
      expect(rows[0]?.prev_ts).toBeNull();
      for (let i = 1; i < rows.length; i++) {
        expect(rows[i]?.prev_hash).toBe(rows[i - 1]?.hash);
        expect(rows[i]?.prev_ts).toBe(rows[i - 1]?.ts);
      }
      // What comes back from the database hashes to what was stored.
      for (const r of rows) expect(entryHash(r)).toBe(r.hash);
      expect(rows[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
    });

    it('a clean log verifies across pages and chains; each chain is reported with its head', async () => {
      const store = await open();
      const a = service(store);
      const b = service(store); // a second writer on the same database (another hub instance)
      for (let i = 0; i < 250; i++) (i % 3 ? a : b).log(entry(i));
      await a.flush();
      await b.flush();
      const report = await verifyChains(store.db, { pageSize: 40 });
      expect(report.ok).toBe(true);
      expect(report.entries).toBe(250);
      expect(report.unchained).toBe(0);
      const ca = report.chains.find((c) => c.chain === a.chain);
      expect(ca).toMatchObject({ entries: 166, start: 'genesis', first: { seq: 0 }, last: { seq: 165, action: 'test.chain' }, problems: [] });
      const last = (await rowsOf(store, a.chain)).at(-1);
      expect(ca?.head_hash).toBe(last?.hash);
      expect(report.chains.find((c) => c.chain === b.chain)?.entries).toBe(84);
      // The service's verify covers what it still had queued.
      a.log(entry(999));
      expect((await a.verify()).entries).toBe(251);
    });

    it('a modified entry (UPDATE details) is reported as modified; recomputing its hash breaks the next link', async () => {
      const store = await open();
      const audit = service(store);
      for (let i = 0; i < 10; i++) audit.log(entry(i));
      await audit.flush();
      const rows = await rowsOf(store, audit.chain);
      const victim = rows[4];
      if (!victim) throw new Error('no row');
      await store.db.updateTable('audit_logs').set({ details: '{"i":4,"command":"system.info"}' }).where('id', '=', victim.id).execute();
      let report = await audit.verify();
      expect(report.ok).toBe(false);
      let c = report.chains.find((x) => x.chain === audit.chain);
      expect(c?.problems).toEqual([expect.objectContaining({ kind: 'modified', seq: 4, id: victim.id })]);
      // A forger who also recomputes the entry's hash is caught by the next entry's link.
      const forged = await store.db.selectFrom('audit_logs').selectAll().where('id', '=', victim.id).executeTakeFirstOrThrow();
      await store.db
        .updateTable('audit_logs')
        .set({ hash: entryHash(forged) })
        .where('id', '=', victim.id)
        .execute();
      report = await audit.verify();
      c = report.chains.find((x) => x.chain === audit.chain);
      expect(c?.problems).toEqual([expect.objectContaining({ kind: 'broken_link', seq: 5 })]);
      // Other columns are covered too.
      await store.db
        .updateTable('audit_logs')
        .set({ result: 'failure' })
        .where('id', '=', rows[7]?.id as string)
        .execute();
      expect(kinds((await audit.verify()).chains.find((x) => x.chain === audit.chain))).toEqual(['broken_link', 'modified']);
    });

    it('a deleted entry in the middle is reported as missing', async () => {
      const store = await open();
      const audit = service(store);
      for (let i = 0; i < 10; i++) audit.log(entry(i));
      await audit.flush();
      const rows = await rowsOf(store, audit.chain);
      await store.db
        .deleteFrom('audit_logs')
        .where('id', 'in', [rows[3]?.id as string, rows[4]?.id as string])
        .execute();
      const report = await audit.verify();
      expect(report.ok).toBe(false);
      const c = report.chains.find((x) => x.chain === audit.chain);
      expect(c?.entries).toBe(8);
      expect(c?.problems).toEqual([expect.objectContaining({ kind: 'missing', seq: 5, message: expect.stringContaining('#3–#4') })]);
    });

    it('reordering (entries swapped by their numbers) and an inserted copy are reported', async () => {
      const store = await open();
      const audit = service(store);
      for (let i = 0; i < 8; i++) audit.log(entry(i));
      await audit.flush();
      const rows = await rowsOf(store, audit.chain);
      const [r2, r3] = [rows[2], rows[3]];
      if (!r2 || !r3) throw new Error('no rows');
      await store.db.updateTable('audit_logs').set({ seq: 3 }).where('id', '=', r2.id).execute();
      await store.db.updateTable('audit_logs').set({ seq: 2 }).where('id', '=', r3.id).execute();
      let c = (await audit.verify()).chains.find((x) => x.chain === audit.chain);
      expect(kinds(c)).toEqual(['modified', 'broken_link', 'modified', 'broken_link', 'broken_link']);
      // Put back, then insert a copy of entry #5 under another id.
      await store.db.updateTable('audit_logs').set({ seq: 2 }).where('id', '=', r2.id).execute();
      await store.db.updateTable('audit_logs').set({ seq: 3 }).where('id', '=', r3.id).execute();
      expect((await audit.verify()).ok).toBe(true);
      const { id: _id, ...r5 } = rows[5] as (typeof rows)[number];
      await store.db
        .insertInto('audit_logs')
        .values({ ...r5, id: 'aud_zzzzzzzzzzzzzzzzzzzzzz' })
        .execute();
      c = (await audit.verify()).chains.find((x) => x.chain === audit.chain);
      expect(kinds(c)).toEqual(['modified', 'duplicate']);
      // Also with small pages.
      c = (await verifyChains(store.db, { pageSize: 6 })).chains.find((x) => x.chain === audit.chain);
      expect(kinds(c)).toEqual(['modified', 'duplicate']);
      expect(c?.entries).toBe(9);
    });

    it('entries moved out of the numbering (no number, a negative one) are still reported', async () => {
      const store = await open();
      const audit = service(store);
      for (let i = 0; i < 6; i++) audit.log(entry(i));
      await audit.flush();
      const rows = await rowsOf(store, audit.chain);
      await store.db
        .updateTable('audit_logs')
        .set({ seq: null })
        .where('id', '=', rows[2]?.id as string)
        .execute();
      await store.db
        .updateTable('audit_logs')
        .set({ seq: -1 })
        .where('id', '=', rows[4]?.id as string)
        .execute();
      const c = (await audit.verify()).chains.find((x) => x.chain === audit.chain);
      // The walk starts at -1: changed (its number is hashed), not a start retention leaves, #0 does not follow it.
      expect(c?.problems.map((p) => [p.kind, p.id])).toEqual([
        ['modified', rows[4]?.id],
        ['missing_start', rows[4]?.id],
        ['broken_link', rows[0]?.id],
        ['missing', rows[3]?.id],
        ['missing', rows[5]?.id],
        ['unsealed', rows[2]?.id],
      ]);
    });

    it('retention pruning keeps every chain verifiable; deleting a start retention would not have removed is reported', async () => {
      const store = await open();
      vi.useFakeTimers({ toFake: ['Date'] });
      const t0 = Date.parse('2030-01-01T00:00:00.000Z');
      vi.setSystemTime(t0);
      const old = service(store); // an instance that stopped long ago: its whole chain goes
      const a = service(store);
      const b = service(store);
      for (let i = 0; i < 30; i++) [old, a, b][i % 3]?.log(entry(i));
      await Promise.all([old.flush(), a.flush(), b.flush()]);
      vi.setSystemTime(t0 + 10 * DAY);
      for (let i = 0; i < 20; i++) (i % 2 ? a : b).log(entry(100 + i));
      await Promise.all([a.flush(), b.flush()]);
      expect(await a.prune(5, new Date(t0 + 10 * DAY))).toBe(30);
      const report = await a.verify();
      expect(report.ok).toBe(true);
      expect(report.chains.map((c) => c.chain).sort()).toEqual([a.chain, b.chain].sort());
      for (const c of report.chains) expect(c).toMatchObject({ entries: 10, start: 'pruned', first: { seq: 10 }, problems: [] });
      // Small pages: the empty ranges before the first remaining entry are skipped over.
      expect(await verifyChains(store.db, { pageSize: 4 })).toMatchObject({ ok: true, entries: 20 });
      expect(report.oldest).toBe(new Date(t0 + 10 * DAY).toISOString());
      // Now someone deletes the (recent) first remaining entries of chain a.
      const rows = await rowsOf(store, a.chain);
      await store.db
        .deleteFrom('audit_logs')
        .where('id', 'in', [rows[0]?.id as string, rows[1]?.id as string])
        .execute();
      const after = await a.verify();
      expect(after.ok).toBe(false);
      expect(after.chains.find((c) => c.chain === a.chain)?.problems).toEqual([expect.objectContaining({ kind: 'missing_start', seq: 12 })]);
      expect(after.chains.find((c) => c.chain === b.chain)?.problems).toEqual([]);
    });

    it('anchors: a noted head catches a cut tail, a recomputed chain and a deleted chain', async () => {
      const store = await open();
      const a = service(store);
      const b = service(store);
      for (let i = 0; i < 12; i++) (i % 2 ? a : b).log(entry(i));
      await b.flush();
      const first = await a.verify();
      expect(first.ok).toBe(true);
      expect(first.chains).toHaveLength(2);
      const anchors = first.chains.map((c) => ({ chain: c.chain, seq: c.last?.seq ?? 0, hash: c.head_hash ?? '' }));
      expect((await a.verify({ anchors })).ok).toBe(true);
      // More entries later are fine.
      a.log(entry(50));
      expect((await a.verify({ anchors })).ok).toBe(true);
      // The end of chain a cut off: invisible without anchors, reported with them.
      const rows = await rowsOf(store, a.chain);
      await store.db
        .deleteFrom('audit_logs')
        .where(
          'id',
          'in',
          rows.slice(-3).map((r) => r.id),
        )
        .execute();
      expect((await a.verify()).ok).toBe(true);
      const cut = await a.verify({ anchors });
      expect(cut.ok).toBe(false);
      expect(kinds(cut.chains.find((c) => c.chain === a.chain))).toEqual(['truncated']);
      // Chain b rewritten with recomputed hashes: consistent in itself, not the anchored one.
      const rb = await rowsOf(store, b.chain);
      let prevHash: string | null = null;
      for (const r of rb) {
        const forged: typeof r = { ...r, details: Number(r.seq) === 2 ? '{"i":4,"forged":true}' : r.details, prev_hash: prevHash };
        forged.hash = entryHash(forged);
        prevHash = forged.hash;
        await store.db
          .updateTable('audit_logs')
          .set({ details: forged.details, prev_hash: forged.prev_hash, hash: forged.hash })
          .where('id', '=', r.id)
          .execute();
      }
      expect((await a.verify()).chains.find((c) => c.chain === b.chain)?.problems).toEqual([]);
      expect(kinds((await a.verify({ anchors })).chains.find((c) => c.chain === b.chain))).toEqual(['anchor_mismatch']);
      // Chain b deleted whole.
      await store.db.deleteFrom('audit_logs').where('chain', '=', b.chain).execute();
      const gone = await a.verify({ anchors });
      expect(gone.chains.find((c) => c.chain === b.chain)).toMatchObject({ entries: 0, problems: [{ kind: 'chain_missing' }] });
    });

    it('a restarted process starts a new chain; entries written before chaining are counted as unchained', async () => {
      const store = await open();
      await store.write([
        {
          table: 'audit_logs',
          kind: 'insert',
          row: auditRow('aud_legacy', { action: 'hub.started' }),
        },
      ]);
      const first = service(store);
      first.log(entry(1));
      await first.close();
      const second = service(store);
      second.log(entry(2));
      const report = await second.verify();
      expect(report).toMatchObject({ ok: true, unchained: 1, entries: 2 });
      expect(second.chain).not.toBe(first.chain);
      expect(report.chains.map((c) => [c.chain, c.start, c.entries])).toEqual(
        [
          [first.chain, 'genesis', 1],
          [second.chain, 'genesis', 1],
        ].sort(),
      );
    });

    it('text the database cannot store as is (lone surrogates) is sealed the way it is stored', async () => {
      const store = await open();
      const audit = service(store);
      audit.log({
        actor: { type: 'user', id: 'u\uD800', name: 'x\uDC00y' },
        action: 'test.odd',
        error: 'bad \uD83D',
        details: { s: '\uD800' },
        result: 'failure',
      });
      audit.log(entry(1));
      const report = await audit.verify();
      expect(report.ok).toBe(true);
      const [row] = await rowsOf(store, audit.chain);
      expect(row?.actor_name).toBe('x\uFFFDy');
    });
  });
}
