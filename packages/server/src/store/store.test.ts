import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { auditServiceFactory } from '../features/audit/audit-service.js';
import { commandsStoreFactory, laterJson } from '../features/commands/commands-store.js';
import { devicesStoreFactory } from '../features/devices/devices-store.js';
import type { Store } from './db.js';
import { auditRow, testDrivers } from './test-drivers.js';

const drivers = await testDrivers('store tests');

const now = () => new Date().toISOString();

/** A job row (`batch`: the fan-out it belongs to). */
function jobRow(id: string, state: 'running' | 'succeeded', batch: string | null = null) {
  return {
    id,
    correlation_id: `corr-${id}`,
    satellite_id: 'a'.repeat(64),
    command: 'system.info',
    params: '{}',
    payload: null,
    state,
    actor_type: 'api_key',
    actor_id: 'k',
    actor_name: 'admin',
    source_ip: null,
    timeout_ms: 1000,
    source: 'api',
    batch_id: batch,
    approval_id: null,
    queue_until: null,
    created_at: now(),
    started_at: now(),
    finished_at: null,
    duration_ms: null,
    result: null,
    error_code: null,
    error_message: null,
  };
}

/** The store's batch writer, noting the size of each transaction in `sizes`. */
const countingWrite =
  (store: Store, sizes: number[]): Store['write'] =>
  (ops) => {
    sizes.push(ops.length);
    return store.write(ops);
  };

function satRow(id: string, slug: string, name = slug) {
  return {
    id,
    slug,
    name,
    hostname: `${slug}.local`,
    os: 'linux',
    os_release: '6.1',
    arch: 'x64',
    agent_version: '0.1.0',
    project: 'default',
    status: 'offline' as const,
    commands: '["system.info"]',
    approved_commands: '["system.info"]',
    policy: '{}',
    remote_ip: null,
    last_seen: null,
    created_at: now(),
    updated_at: now(),
  };
}

for (const d of drivers) {
  describe.skipIf(d.skip)(`store on ${d.name}`, () => {
    const opened: { store: Store; cleanup: () => Promise<void> }[] = [];
    const open = async () => {
      const o = await d.open();
      opened.push(o);
      return o.store;
    };
    afterAll(async () => {
      for (const o of opened) {
        await o.store.close();
        await o.cleanup();
      }
    });

    it('migrates and answers ping', async () => {
      const store = await open();
      await store.ping();
      expect(store.driver).toBe(d.name);
    });

    it('satellites: insert with tags, filter by status/tag/text, paginate, update, delete', async () => {
      const store = await open();
      const s = devicesStoreFactory({ db: store.db, driver: store.driver });
      await s.insertSatellite(satRow('a'.repeat(64), 'web-1', 'Web One'), ['web', 'eu']);
      await s.insertSatellite(satRow('b'.repeat(64), 'web-2'), ['web']);
      await s.insertSatellite(satRow('c'.repeat(64), 'db-1'), ['db']);
      await s.setPresence('a'.repeat(64), { status: 'online', last_seen: now() });
      expect((await s.listSatellites({ page: 1, per_page: 50 })).total).toBe(3);
      expect((await s.listSatellites({ status: 'online', page: 1, per_page: 50 })).items.map((x) => x.slug)).toEqual(['web-1']);
      expect((await s.listSatellites({ tag: 'web', page: 1, per_page: 50 })).items.map((x) => x.slug)).toEqual(['web-1', 'web-2']);
      expect((await s.listSatellites({ q: 'ONE', page: 1, per_page: 50 })).items.map((x) => x.slug)).toEqual(['web-1']);
      // LIKE wildcards are stripped from the search text, never used as patterns
      expect((await s.listSatellites({ q: '%', page: 1, per_page: 50 })).total).toBe(3);
      const page2 = await s.listSatellites({ page: 2, per_page: 2 });
      expect(page2.total).toBe(3);
      expect(page2.items.map((x) => x.slug)).toEqual(['web-2']);
      expect(await s.slugsLike('web')).toEqual(new Set(['web-1', 'web-2']));
      expect(await s.slugsLike('web-1')).toEqual(new Set(['web-1']));
      await s.updateSatellite('b'.repeat(64), { name: 'Renamed' }, ['x', 'y']);
      const b = await s.getSatellite('b'.repeat(64));
      expect(b).toMatchObject({ name: 'Renamed', tags: ['x', 'y'] });
      expect((await s.allTags()).map((t) => `${t.tag}:${t.count}`)).toEqual(['db:1', 'eu:1', 'web:1', 'x:1', 'y:1']);
      await s.deleteSatellite('c'.repeat(64));
      expect(await s.getSatellite('c'.repeat(64))).toBeUndefined();
      expect((await s.findByRef('Web One')).map((r) => r.slug)).toEqual(['web-1']);
      expect(await s.markAllOffline()).toBe(1);
    });

    it('heartbeat last_seen goes through the batch writer on SQLite (never a write on the event loop), directly on PostgreSQL', async () => {
      const store = await open();
      const sizes: number[] = [];
      const s = devicesStoreFactory({ db: store.db, driver: store.driver, write: countingWrite(store, sizes) });
      const ids = ['1', '2', '3'].map((c) => c.repeat(64));
      for (const [i, id] of ids.entries()) await s.insertSatellite(satRow(id, `beat-${i}`), []);
      const seen = new Date(Date.now() + 7000).toISOString();
      await s.touchLastSeen(ids, seen);
      expect(sizes).toEqual(store.driver === 'sqlite' ? [3] : []);
      const rows = await store.db.selectFrom('satellites').select(['id', 'last_seen']).where('id', 'in', ids).execute();
      expect(rows.map((r) => r.last_seen)).toEqual([seen, seen, seen]);
      expect((await s.getSatellite(ids[0] as string))?.last_seen).toBe(seen);
    });

    it('cached satellite reads: every change shows at once; heartbeats and presence update the view by id without a read', async () => {
      const store = await open();
      const s = devicesStoreFactory({ db: store.db, driver: store.driver });
      const id = 'e'.repeat(64);
      await s.insertSatellite(satRow(id, 'cache-1'), ['t']);
      const first = await s.getSatellite(id);
      expect(first?.status).toBe('offline');
      // A row changed behind the store's back (nothing in the hub does that) shows whether a view was read again.
      await store.db.updateTable('satellites').set({ hostname: 'behind.local' }).where('id', '=', id).execute();
      // A heartbeat tick: stored, and the cached view by id follows it (every exec reads its satellite).
      const seen = new Date(Date.now() + 5000).toISOString();
      await s.touchLastSeen([id], seen);
      const ticked = await s.getSatellite(id);
      expect(ticked).toMatchObject({ last_seen: seen, hostname: 'cache-1.local', tags: ['t'] });
      const [row] = await store.db.selectFrom('satellites').select('last_seen').where('id', '=', id).execute();
      expect(row?.last_seen).toBe(seen);
      // A connect's presence write: the view by id takes exactly the written columns, still without a read.
      const written = await s.setPresence(id, {
        status: 'online',
        last_seen: now(),
        remote_ip: '10.1.2.3',
        commands: '["system.info","file.read"]',
        instance_id: 'hub_x',
      });
      const online = await s.getSatellite(id);
      expect(written).toBe(online);
      expect(online).toMatchObject({ status: 'online', remote_ip: '10.1.2.3', hostname: 'cache-1.local' });
      expect(online?.commands).toEqual(['system.info', 'file.read']);
      expect(online?.pending_claims).toEqual(['file.read']);
      expect(Object.isFrozen(online)).toBe(true);
      // By id, a reference resolves to that very view; by slug it is read (and shows the same presence).
      expect(await s.findByRef(id)).toEqual([online]);
      expect((await s.findByRef(id))[0]).toBe(online);
      expect((await s.findByRef('cache-1'))[0]).toMatchObject({ status: 'online', hostname: 'behind.local' });
      // A write that failed half-way updates nothing: the view is read again.
      await expect(s.setPresence(id, { status: 'online', no_such_column: 1 } as never)).rejects.toThrow();
      expect((await s.getSatellite(id))?.hostname).toBe('behind.local');
      // A change of one satellite keeps the others' cached views (one connect does not send every
      // exec of the fleet to the database), but ends reads of several (pages, tag targets).
      const other = 'f'.repeat(64);
      await s.insertSatellite(satRow(other, 'cache-2'), ['t']);
      const otherView = await s.getSatellite(other);
      const page = await s.listSatellites({ page: 1, per_page: 50 });
      expect(await s.listSatellites({ page: 1, per_page: 50 })).toBe(page);
      await s.setPresence(id, { status: 'offline' });
      expect(await s.getSatellite(other)).toBe(otherView);
      expect((await s.findByRef('cache-2'))[0]).toEqual(otherView);
      expect((await s.getSatellite(id))?.status).toBe('offline');
      const page2 = await s.listSatellites({ page: 1, per_page: 50 });
      expect(page2).not.toBe(page);
      expect(page2.items.find((x) => x.id === id)?.status).toBe('offline');
      await s.revokeTokens(other, 'node');
      expect(await s.getSatellite(other)).not.toBe(otherView);
      // Fan-out targets by tag are cached alike: a tag change shows at once.
      expect((await s.byIdsOrTag([], 't')).map((x) => x.id)).toEqual([id, other]);
      await s.updateSatellite(id, { name: 'Cache One' }, ['u']);
      expect(await s.getSatellite(id)).toMatchObject({ name: 'Cache One', tags: ['u'] });
      expect((await s.byIdsOrTag([], 't')).map((x) => x.id)).toEqual([other]);
      expect((await s.byIdsOrTag([], 'u')).map((x) => x.name)).toEqual(['Cache One']);
      // The rename read the row again: the change made behind the store's back shows now.
      expect((await s.getSatellite(id))?.hostname).toBe('behind.local');
      // A new satellite keeps the others' views by id (a fleet pairing does not send every exec
      // to the database), but ends a "not found" of its id and every read by reference.
      const third = '9'.repeat(64);
      expect(await s.getSatellite(third)).toBeUndefined();
      expect(await s.findByRef('cache-3')).toEqual([]);
      const keep = await s.getSatellite(other);
      await s.insertSatellite(satRow(third, 'cache-3'), []);
      expect(await s.getSatellite(other)).toBe(keep);
      expect((await s.getSatellite(third))?.slug).toBe('cache-3');
      expect((await s.findByRef('cache-3')).map((x) => x.id)).toEqual([third]);
      await s.deleteSatellite(third);
      expect(await s.getSatellite(third)).toBeUndefined();
      expect(await s.findByRef('cache-3')).toEqual([]);
      expect(await s.getSatellite(other)).toBe(keep);
    });

    it('pairing requests resolve exactly once; tokens revoke per device and role', async () => {
      const store = await open();
      const s = devicesStoreFactory({ db: store.db, driver: store.driver });
      const base = {
        device_id: 'd'.repeat(64),
        public_key: 'pk',
        role: 'node' as const,
        scopes: '[]',
        client: '{}',
        tags: '[]',
        remote_ip: '10.0.0.1',
        status: 'pending' as const,
        auto: 0,
        token_issued: 0,
        created_at: now(),
        expires_at: new Date(Date.now() + 60_000).toISOString(),
        resolved_at: null,
        resolved_by: null,
      };
      await s.insertPairing({ ...base, id: 'pr_1' });
      expect(await s.countPending('10.0.0.1')).toBe(1);
      const [first, second] = await Promise.all([s.resolvePairing('pr_1', 'approved', 'op:a'), s.resolvePairing('pr_1', 'rejected', 'op:b')]);
      expect([first, second].filter(Boolean)).toHaveLength(1);
      const claimed = await Promise.all([s.claimTokenIssue('pr_1'), s.claimTokenIssue('pr_1')]);
      expect(claimed.filter(Boolean).length).toBeLessThanOrEqual(1);
      await s.insertPairing({ ...base, id: 'pr_2', expires_at: new Date(Date.now() - 1000).toISOString() });
      expect(await s.expirePairing(now())).toEqual(['pr_2']);
      for (const id of ['t1', 't2']) {
        await s.insertToken({
          id,
          device_id: 'd'.repeat(64),
          role: 'node',
          token_hash: 'h',
          scopes: '[]',
          created_at: now(),
          expires_at: null,
          revoked_at: null,
          last_used_at: null,
        });
      }
      expect(await s.revokeTokens('d'.repeat(64), 'node', 't2')).toBe(1);
      expect((await s.getToken('t1'))?.revoked_at).toBeTruthy();
      expect((await s.getToken('t2'))?.revoked_at).toBeNull();
    });

    it('jobs: insert, update, list, and unfinished jobs are failed after a restart', async () => {
      const store = await open();
      const s = commandsStoreFactory({ db: store.db, write: store.write });
      await s.insert(jobRow('job_1', 'running'));
      await s.insert(jobRow('job_2', 'succeeded'));
      expect((await s.get('corr-job_1'))?.id).toBe('job_1');
      expect(await s.failRunning('hub restarted')).toHaveLength(1);
      const after = await s.get('job_1');
      expect(after).toMatchObject({ state: 'failed', error_message: 'hub restarted' });
      expect((await s.list({ state: 'failed', page: 1, per_page: 10 })).total).toBe(1);
    });

    it('jobs: a running job finished before its row was written is written once, final; reads never miss it', async () => {
      const store = await open();
      const s = commandsStoreFactory({ db: store.db, write: store.write });
      const row = jobRow('job_held', 'running', 'bat_1');
      const inserted = s.insert(row);
      // Not in the table yet (held for its result), but every read sees it.
      expect(await store.db.selectFrom('jobs').select('id').where('id', '=', 'job_held').execute()).toHaveLength(0);
      const updated = s.update('job_held', { state: 'succeeded', result: '{"ok":true}', finished_at: now(), duration_ms: 3 });
      await Promise.all([inserted, updated]);
      expect(await s.get('job_held')).toMatchObject({ state: 'succeeded', result: '{"ok":true}', batch_id: 'bat_1' });
      expect((await s.byBatch('bat_1')).map((r) => r.state)).toEqual(['succeeded']);
      // A later update of a written row is an update.
      await s.update('job_held', { error_message: 'note' }, true);
      expect((await s.get('job_held'))?.error_message).toBe('note');
      // A single command's row (no batch) is not held: it reaches the table by itself, at once.
      // (settled(false) writes everything that is not held.)
      void s.insert(jobRow('job_single', 'running'));
      void s.insert(jobRow('job_batch2', 'running', 'bat_1'));
      await s.settled(false);
      const inTable = async (id: string) => (await store.db.selectFrom('jobs').select('state').where('id', '=', id).execute()).length;
      expect([await inTable('job_single'), await inTable('job_batch2')]).toEqual([1, 0]);
      // Nor is anything held when instances share the database.
      const shared = commandsStoreFactory({ db: store.db, write: store.write, hold: false });
      void shared.insert(jobRow('job_shared', 'running', 'bat_1'));
      await shared.settled(false);
      expect(await inTable('job_shared')).toBe(1);
      await s.settled();
      expect(await inTable('job_batch2')).toBe(1);
    });

    it('jobs: a result handed over as laterJson is stored as its JSON text, in a held row and in an update of a written one', async () => {
      const store = await open();
      const s = commandsStoreFactory({ db: store.db, write: store.write });
      const stored = async (id: string) => (await store.db.selectFrom('jobs').select('result').where('id', '=', id).executeTakeFirst())?.result;
      s.answering('bat_lazy');
      const held = s.insert(jobRow('job_lazy', 'running', 'bat_lazy'));
      void s.update('job_lazy', { state: 'succeeded', result: laterJson({ os: 'linux', cpus: [1, 2] }), finished_at: now() });
      s.answered('bat_lazy');
      await held;
      expect(await stored('job_lazy')).toBe('{"os":"linux","cpus":[1,2]}');
      await s.insert(jobRow('job_lazy2', 'running'));
      await s.update('job_lazy2', { state: 'succeeded', result: laterJson(null) }, true);
      expect(await stored('job_lazy2')).toBe('null');
      expect(await s.get('job_lazy2')).toMatchObject({ state: 'succeeded', result: 'null' });
    });

    it('jobs: the finished rows of a fan-out that has not answered wait for its answer, then go out in transactions of at most 1,000 rows', async () => {
      const store = await open();
      const sizes: number[] = [];
      const s = commandsStoreFactory({ db: store.db, write: countingWrite(store, sizes) });
      const inTable = async (batch: string) => (await store.db.selectFrom('jobs').select('id').where('batch_id', '=', batch).execute()).length;
      s.answering('bat_open');
      const written: Promise<void>[] = [];
      for (let i = 0; i < 2500; i++) {
        const id = `job_open_${i}`;
        written.push(s.insert(jobRow(id, 'running', 'bat_open')));
        s.started(id);
        void s.update(id, { state: 'succeeded', result: '{}', finished_at: now(), duration_ms: 1 });
      }
      // Another fan-out that has answered, and a single command: not held once finished.
      const other = s.insert(jobRow('job_other', 'running', 'bat_done'));
      void s.update('job_other', { state: 'succeeded', finished_at: now() });
      const single = s.insert(jobRow('job_alone', 'running'));
      await Promise.all([other, single]);
      await s.settled(false);
      expect([await inTable('bat_open'), await inTable('bat_done')]).toEqual([0, 1]);
      sizes.length = 0;
      s.answered('bat_open');
      // The answer releases them by itself: every insert's promise settles once written.
      await Promise.all(written);
      expect(await inTable('bat_open')).toBe(2500);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(2500);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
      expect(await s.get('job_open_2499')).toMatchObject({ state: 'succeeded', batch_id: 'bat_open' });
      // A fan-out that never called answering() is not held, and answered() twice is harmless.
      s.answered('bat_open');
      s.answered('bat_never');
    });

    it('jobs: a late result of an instance declared lost does not overwrite the failure a survivor wrote', async () => {
      const store = await open();
      const late = commandsStoreFactory({ db: store.db, write: store.write, hold: false });
      const survivor = commandsStoreFactory({ db: store.db, write: store.write, hold: false });
      await late.insert({ ...jobRow('job_lost', 'running'), instance_id: 'inst-a' });
      expect(await survivor.failRunning('hub instance inst-a was lost', { instance: 'inst-a' })).toEqual(['job_lost']);
      expect(await late.finishIfOpen('job_lost', { state: 'succeeded', result: '{"late":true}' })).toBe(false);
      expect(await survivor.get('job_lost')).toMatchObject({ state: 'failed', error_message: 'hub instance inst-a was lost', result: null });
      // An open job is finished as usual; the same final state may be written again (details).
      await late.insert(jobRow('job_open', 'running'));
      expect(await late.finishIfOpen('job_open', { state: 'succeeded', result: '{}' })).toBe(true);
      expect(await late.finishIfOpen('job_open', { state: 'succeeded', duration_ms: 5 })).toBe(true);
      expect(await late.finishIfOpen('job_open', { state: 'failed' })).toBe(false);
    });

    it('batch writer: inserts ignoring existing ids, updates skipping undefined columns, all or nothing', async () => {
      const store = await open();
      const entry = (id: string) => auditRow(id);
      await store.write([
        { table: 'audit_logs', kind: 'insert', row: entry('aud_w1'), ignoreConflict: true },
        { table: 'audit_logs', kind: 'insert', row: entry('aud_w2'), ignoreConflict: true },
      ]);
      // A retry of the same ids is not an error and changes nothing.
      await store.write([{ table: 'audit_logs', kind: 'insert', row: { ...entry('aud_w1'), action: 'changed' }, ignoreConflict: true }]);
      await store.write([{ table: 'audit_logs', kind: 'update', id: 'aud_w2', patch: { error: 'e', result: undefined } }]);
      const rows = await store.db.selectFrom('audit_logs').selectAll().where('action', 'in', ['test.write', 'changed']).orderBy('id').execute();
      expect(rows.map((r) => [r.id, r.action, r.result, r.error])).toEqual([
        ['aud_w1', 'test.write', 'success', null],
        ['aud_w2', 'test.write', 'success', 'e'],
      ]);
      // A failing op rolls back the whole batch.
      await expect(
        store.write([
          { table: 'audit_logs', kind: 'insert', row: entry('aud_w3') },
          { table: 'audit_logs', kind: 'insert', row: entry('aud_w1') },
        ]),
      ).rejects.toThrow();
      expect(await store.db.selectFrom('audit_logs').select('id').where('id', '=', 'aud_w3').execute()).toHaveLength(0);
    });

    it('audit: while a fan-out has not answered, entries wait for it (at most 5 s); queries still see them at once', async () => {
      const store = await open();
      const writes: number[] = [];
      const audit = auditServiceFactory({ db: store.db, write: countingWrite(store, writes), logger: pino({ level: 'silent' }) });
      const entry = (i: number) => ({
        actor: { type: 'api_key', id: 'k1', name: 'admin' },
        action: 'command.exec',
        result: 'success' as const,
        correlationId: `d${i}`,
      });
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const release = audit.deferWrites();
        for (let i = 0; i < 2500; i++) audit.log(entry(i));
        vi.advanceTimersByTime(1000);
        expect(writes).toEqual([]);
        release();
        release(); // once only
        vi.advanceTimersByTime(20);
        // Written in transactions of at most 1,000 entries.
        expect(writes).toEqual([1000]);
      } finally {
        vi.useRealTimers();
      }
      await audit.flush();
      expect(writes).toEqual([1000, 1000, 500]);
      // Deferred for at most DEFERRED_DELAY_MS; a query flushes whatever waits.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        audit.deferWrites();
        audit.log(entry(9000));
        vi.advanceTimersByTime(4900);
        expect(writes).toHaveLength(3);
        vi.advanceTimersByTime(100);
        expect(writes).toEqual([1000, 1000, 500, 1]);
      } finally {
        vi.useRealTimers();
      }
      audit.log(entry(9001));
      expect((await audit.query({ correlation_id: 'd9001', page: 1, per_page: 5 })).total).toBe(1);
      expect((await audit.query({ action: 'command.exec', page: 1, per_page: 1 })).total).toBe(2502);
    });

    it('audit: batched writes, redaction, filters and pagination', async () => {
      const store = await open();
      const audit = auditServiceFactory({ db: store.db, write: store.write, logger: pino({ level: 'silent' }) });
      for (let i = 0; i < 1200; i++) {
        audit.log({
          actor: { type: 'api_key', id: 'k1', name: 'admin' },
          action: i % 2 ? 'satellite.connected' : 'command.exec',
          target: { type: 'satellite', id: `s${i % 3}` },
          result: 'success',
          correlationId: `c${i}`,
        });
      }
      audit.log({
        actor: { type: 'api_key', id: 'k1', name: 'admin' },
        action: 'secret.test',
        details: {
          password: 'hunter2',
          // Secrets that no id, hash or timestamp of the entry can contain by chance.
          nested: { api_key: 'key-value-zq' },
          argv: ['tool', '--token', 'sekrit', 'DB_PASSWORD=x'],
          note: 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        },
        result: 'failure',
        error: 'bad hdt_BBBBBBBBBBBB_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      });
      const all = await audit.query({ page: 1, per_page: 10 });
      expect(all.total).toBe(1201);
      expect(all.items[0]?.action).toBe('secret.test');
      const text = JSON.stringify(all.items[0]);
      for (const secret of ['hunter2', 'key-value-zq', 'sekrit', 'DB_PASSWORD=x', 'hive_AAAA', 'hdt_BBBB']) expect(text).not.toContain(secret);
      expect((await audit.query({ action: 'command.exec', page: 1, per_page: 1 })).total).toBe(600);
      expect((await audit.query({ action: 'satellite.*', target_id: 's1', page: 1, per_page: 500 })).total).toBe(200);
      expect((await audit.query({ correlation_id: 'c7', page: 1, per_page: 5 })).items).toHaveLength(1);
      expect((await audit.query({ result: 'failure', page: 1, per_page: 5 })).total).toBe(1);
      const p3 = await audit.query({ page: 3, per_page: 500 });
      expect(p3.items).toHaveLength(201);
      // retention: nothing is older than a day yet; a clock 10 days ahead prunes everything
      expect(await audit.prune(90)).toBe(0);
      // in chunks of 500, oldest first: three statements
      expect(await audit.prune(5, new Date(Date.now() + 10 * 86_400_000), 500)).toBe(1201);
      expect((await audit.query({ page: 1, per_page: 1 })).total).toBe(0);
      await audit.close();
    });
  });
}
