import type { Transaction } from 'kysely';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, reusable } from '../../store/db.js';
import type { Database, PairingRequestsTable, SatellitesTable } from '../../store/schema.js';
import type { BatchWrite } from '../../store/writer.js';

type Conn = Db | Transaction<Database>;

export interface SatelliteView {
  id: string;
  slug: string;
  name: string;
  hostname: string | null;
  os: string | null;
  os_release: string | null;
  arch: string | null;
  agent_version: string | null;
  project: string;
  status: 'online' | 'offline';
  tags: string[];
  roles: string[];
  /** Commands the node claimed at its last connect. */
  commands: string[];
  /** Claims an operator (or the pairing approval) accepted; only these are routed. */
  approved_commands: string[];
  /** Claims waiting for an operator's approval. */
  pending_claims: string[];
  /** The node's effective local policy as it reported it. */
  policy: Record<string, unknown>;
  remote_ip: string | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
}

export interface SatelliteFilter {
  /** Only these projects (a restricted principal's); undefined = all. */
  projects?: string[] | undefined;
  status?: 'online' | 'offline' | undefined;
  tag?: string | undefined;
  q?: string | undefined;
  page: number;
  per_page: number;
}

/** Runs `q` on slices of `ids` (bound parameters per statement are limited: 32,766 in SQLite, 65,535 in PostgreSQL). */
async function inChunks<T>(ids: string[], q: (part: string[]) => Promise<T[]>, size = 1000): Promise<T[]> {
  if (ids.length <= size) return q(ids);
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += size) out.push(...(await q(ids.slice(i, i + size))));
  return out;
}

/** Persistence of satellites, their tags, device keys, device tokens and pairing requests. */
export const devicesStoreFactory = ({
  db,
  driver = 'sqlite',
  readCacheMs = READ_CACHE_MS,
  satelliteCacheMs = readCacheMs,
  write,
}: {
  db: Db;
  driver?: 'sqlite' | 'postgres';
  /**
   * The batch writer of job rows and audit entries (store/writer.ts). With SQLite, heartbeats'
   * last_seen goes through it: an UPDATE on the hub's own connection ran on the event loop and,
   * whenever the write thread held the lock, waited there in SQLite's busy handler (sleeps of 1 to
   * 25 ms, seen with `perf trace` as the hub's main thread in clock_nanosleep: round-trip spikes).
   */
  write?: BatchWrite | undefined;
  /** How long a cached read may be served while nothing changed (see `cached`). */
  readCacheMs?: number;
  /**
   * The same for a read of one satellite by id (`getSatellite`; an exec by id resolves through
   * it). A single hub sees every change of such a view itself, last_seen included (see `patch`),
   * and may keep it until it changes.
   */
  satelliteCacheMs?: number;
}) => {
  // The lookups behind resolving one satellite (every exec does): compiled once.
  const q = {
    byIdOrSlug: reusable(
      db,
      db
        .selectFrom('satellites')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', ''), eb('slug', '=', '')])),
      2,
    ),
    byName: reusable(db, db.selectFrom('satellites').selectAll().where('name', '=', '').limit(5), 2),
    tagsOf: reusable(db, db.selectFrom('satellite_tags').selectAll().where('satellite_id', '=', ''), 1),
    rolesOf: reusable(
      db,
      db.selectFrom('device_tokens').select(['device_id', 'role']).distinct().where('device_id', '=', '').where('revoked_at', 'is', null),
      1,
    ),
  };

  /**
   * The satellites carrying `tag`, as a subquery: a fan-out's thousands of targets are hydrated
   * with one statement each for tags and roles instead of slices of bound ids.
   */
  const taggedIds = (tag: string) => db.selectFrom('satellite_tags').select('satellite_id').where('tag', '=', tag);

  async function tagsFor(ids: string[], c: Conn = db, tag?: string): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (ids.length === 0) return out;
    const rows = (
      await (tag !== undefined
        ? c.selectFrom('satellite_tags').selectAll().where('satellite_id', 'in', taggedIds(tag)).execute()
        : ids.length === 1 && c === db
          ? q.tagsOf(ids)
          : inChunks(ids, (part) => c.selectFrom('satellite_tags').selectAll().where('satellite_id', 'in', part).execute()))
    ).sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
    for (const r of rows) {
      const list = out.get(r.satellite_id) ?? [];
      list.push(r.tag);
      out.set(r.satellite_id, list);
    }
    return out;
  }

  async function rolesFor(ids: string[], c: Conn = db, tag?: string): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (ids.length === 0) return out;
    const active = c.selectFrom('device_tokens').select(['device_id', 'role']).distinct().where('revoked_at', 'is', null);
    const rows =
      tag !== undefined
        ? await active.where('device_id', 'in', taggedIds(tag)).execute()
        : ids.length === 1 && c === db
          ? await q.rolesOf(ids)
          : await inChunks(ids, (part) => active.where('device_id', 'in', part).execute());
    for (const r of rows) out.set(r.device_id, [...(out.get(r.device_id) ?? []), r.role].sort());
    return out;
  }

  // Satellites of one agent version claim the same commands and report the same policy: their
  // JSON columns are parsed once and the (frozen) values shared, as are their pending claims.
  const parsed = new Map<string, unknown>();
  const shared = <T>(json: string, fallback: T): T => {
    let v = parsed.get(json);
    if (v === undefined) {
      v = Object.freeze(fromJson<T>(json, fallback));
      if (parsed.size >= 1000) parsed.clear();
      parsed.set(json, v);
    }
    return v as T;
  };
  const pendingOf = new WeakMap<string[], WeakMap<string[], string[]>>();
  const pendingClaims = (commands: string[], approved: string[]): string[] => {
    let byApproved = pendingOf.get(commands);
    if (!byApproved) {
      byApproved = new WeakMap();
      pendingOf.set(commands, byApproved);
    }
    let v = byApproved.get(approved);
    if (!v) {
      v = Object.freeze(commands.filter((x) => !approved.includes(x))) as string[];
      byApproved.set(approved, v);
    }
    return v;
  };

  /** `tag`: the rows are exactly the satellites carrying it (their tags and roles are read by it). */
  async function hydrate(rows: SatellitesTable[], c: Conn = db, tag?: string): Promise<SatelliteView[]> {
    const ids = rows.map((r) => r.id);
    const [tags, roles] = await Promise.all([tagsFor(ids, c, tag), rolesFor(ids, c, tag)]);
    return rows.map((r) => {
      const commands = shared<string[]>(r.commands, []);
      const approved = shared<string[]>(r.approved_commands, []);
      return Object.freeze({
        id: r.id,
        slug: r.slug,
        name: r.name,
        hostname: r.hostname,
        os: r.os,
        os_release: r.os_release,
        arch: r.arch,
        agent_version: r.agent_version,
        project: r.project,
        status: r.status,
        tags: tags.get(r.id) ?? [],
        roles: roles.get(r.id) ?? [],
        commands,
        approved_commands: approved,
        pending_claims: pendingClaims(commands, approved),
        policy: shared<Record<string, unknown>>(r.policy, {}),
        remote_ip: r.remote_ip,
        last_seen: r.last_seen,
        created_at: r.created_at,
        updated_at: r.updated_at,
      });
    });
  }

  async function listNow(f: SatelliteFilter): Promise<{ items: SatelliteView[]; total: number }> {
    if (f.projects && f.projects.length === 0) return { items: [], total: 0 };
    let sel = db.selectFrom('satellites');
    if (f.projects) sel = sel.where('project', 'in', f.projects);
    if (f.status) sel = sel.where('status', '=', f.status);
    if (f.tag) {
      const tag = f.tag;
      sel = sel.where('id', 'in', (eb) => eb.selectFrom('satellite_tags').select('satellite_id').where('tag', '=', tag));
    }
    if (f.q) {
      const needle = `%${f.q.toLowerCase().replace(/[\\%_]/g, '')}%`;
      sel = sel.where((eb) =>
        eb.or([
          eb(eb.fn('lower', ['name']), 'like', needle),
          eb('slug', 'like', needle),
          eb(eb.fn('lower', ['hostname']), 'like', needle),
          eb('id', 'like', needle),
        ]),
      );
    }
    const [{ n } = { n: 0 }] = await sel.select((eb) => eb.fn.countAll<number>().as('n')).execute();
    const rows = await sel
      .selectAll()
      .orderBy('slug')
      .limit(f.per_page)
      .offset((f.page - 1) * f.per_page)
      .execute();
    return { items: await hydrate(rows), total: Number(n) };
  }

  async function byIdsOrTagNow(ids: string[], tag?: string): Promise<SatelliteView[]> {
    const rows = await db
      .selectFrom('satellites')
      .selectAll()
      .where((eb) => {
        const ors = [];
        if (ids.length) ors.push(eb('id', 'in', ids));
        if (tag) ors.push(eb('id', 'in', eb.selectFrom('satellite_tags').select('satellite_id').where('tag', '=', tag)));
        return eb.or(ors);
      })
      .orderBy('slug')
      .execute();
    return Object.freeze(await hydrate(rows, db, ids.length === 0 ? tag : undefined)) as SatelliteView[];
  }

  async function getNow(id: string, c: Conn): Promise<SatelliteView | undefined> {
    const row = await c.selectFrom('satellites').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? (await hydrate([row], c))[0] : undefined;
  }

  // Reads of satellites (fleet pages, lookups by reference: every exec resolves its satellite)
  // are served from memory for up to `readCacheMs` (`satelliteCacheMs` for one satellite by id),
  // and only while nothing they show changed. Every write below bumps `version` once it is done.
  // A write that concerns one satellite (its presence, its tokens) ends the cached reads of that
  // satellite and every read of several (pages, fan-out targets); a new, renamed, retagged or
  // deleted satellite also ends every read by reference (it may now match a name or slug); the
  // whole fleet going offline and every change another hub instance announces (`invalidate()`)
  // end them all. So one satellite connecting or pairing does not send every exec of the fleet to
  // the database. The views are frozen: callers share them.
  let version = 0;
  /** Version of the last write that ended every cached read. */
  let broadAt = 0;
  /** Version of the last write that ended every read by reference. */
  let refsAt = 0;
  /** Version of the last write concerning each satellite (since `broadAt`). */
  const changedAt = new Map<string, number>();
  interface Entry {
    /** `version` when the read started. */
    v: number;
    at: number;
    /** How long it may be served. */
    ttl: number;
    value: Promise<unknown>;
    /** The satellites a read of one (by id or reference) found, once it is done; absent: a read of several. */
    ids?: string[];
    /** The value, once the read is done (a read of one satellite by id: what `patch` updates). */
    done?: unknown;
    /** A read by reference (id, slug or name). */
    ref: boolean;
  }
  const cache = new Map<string, Entry>();
  /** `refs`: the write may change what references find (a new, renamed or deleted satellite). */
  function changed(id: string | null, refs = false): void {
    version++;
    if (id === null) {
      broadAt = version;
      cache.clear();
      changedAt.clear();
    } else {
      changedAt.set(id, version);
      if (refs) refsAt = version;
    }
  }
  /** Whether nothing the entry shows was written since its read started (while a read is on its way: nothing at all). */
  function current(e: Entry): boolean {
    if (broadAt > e.v || (e.ref && refsAt > e.v)) return false;
    if (!e.ids) return version === e.v;
    for (const id of e.ids) if ((changedAt.get(id) ?? 0) > e.v) return false;
    return true;
  }
  /** `idsOf`: for reads of single satellites, the satellites a result holds. */
  function cached<T>(key: string, load: () => Promise<T>, idsOf?: (v: T) => string[], ttl = readCacheMs): Promise<T> {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.at < hit.ttl && current(hit)) return hit.value as Promise<T>;
    const value = load();
    // Full: start afresh (evicting the oldest entry one at a time makes V8's Map skip ever more
    // deleted slots on keys().next()).
    if (cache.size >= READ_CACHE_ENTRIES) cache.clear();
    const entry: Entry = { v: version, at: now, ttl, value, ref: key.startsWith('ref:') };
    cache.set(key, entry);
    value.then(
      (v) => {
        if (idsOf) entry.ids = idsOf(v);
        entry.done = v;
      },
      () => {
        if (cache.get(key) === entry) cache.delete(key);
      },
    );
    return value;
  }
  /**
   * A write that set exactly `fields` on satellite `id` (and succeeded): its cached view by id, if
   * it showed the row as it was right before (nothing else changed it since its read), becomes
   * the view of the row as it is now, instead of being read again. So a connect or a heartbeat
   * does not send the satellite's next exec to the database. With `bump` false (last_seen only)
   * the write ends no other cached read: pages show last_seen as of their read.
   */
  function patch(id: string, fields: Partial<SatellitesTable>, bump = true): SatelliteView | undefined {
    const e = cache.get(`get:${id}`);
    const before = e?.done && current(e) ? (e.done as SatelliteView) : undefined;
    if (bump) changed(id);
    if (!e || !before) return undefined;
    const view = patchedView(before, fields);
    if (!view) {
      cache.delete(`get:${id}`);
      return undefined;
    }
    e.value = Promise.resolve(view);
    e.done = view;
    e.v = version;
    return view;
  }
  /** `view` with `fields` (columns of the row) applied; undefined when a field is not one a view shows as is. */
  function patchedView(view: SatelliteView, fields: Partial<SatellitesTable>): SatelliteView | undefined {
    const out: Record<string, unknown> = { ...view };
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined || k === 'instance_id') continue;
      if (k === 'commands' || k === 'approved_commands') out[k] = shared<string[]>(v as string, []);
      else if (k === 'policy') out[k] = shared<Record<string, unknown>>(v as string, {});
      else if (PLAIN_COLUMNS.has(k)) out[k] = v;
      else return undefined;
    }
    out.pending_claims = pendingClaims(out.commands as string[], out.approved_commands as string[]);
    return Object.freeze(out) as unknown as SatelliteView;
  }
  /** After a write (done, or failed half-way): what it concerned (see `Concern`). */
  const writes =
    <T>(concern: (args: unknown[]) => Concern) =>
    (p: Promise<T>, args: unknown[]): Promise<T> =>
      p.finally(() => {
        const c = concern(args);
        changed(c.id, c.refs);
      });

  const api = {
    listSatellites(f: SatelliteFilter): Promise<{ items: SatelliteView[]; total: number }> {
      return cached(`list:${JSON.stringify(f)}`, () => listNow(f));
    },

    getSatellite(id: string, c: Conn = db): Promise<SatelliteView | undefined> {
      if (c !== db) return getNow(id, c);
      return cached(
        `get:${id}`,
        () => getNow(id, db),
        // Found or not, the read concerns this id (a satellite paired later ends a "not found").
        () => [id],
        satelliteCacheMs,
      );
    },

    /** Candidates for a user-given reference: exact id, slug, or name (at most 5 by name). */
    async findByRef(ref: string): Promise<SatelliteView[]> {
      // An id (64 hex digits) is never a slug (at most 40 characters): the satellite, if it exists.
      if (DEVICE_ID.test(ref)) {
        const sat = await api.getSatellite(ref);
        if (sat) return [sat];
      }
      return cached(
        `ref:${ref}`,
        async () => {
          const byId = await q.byIdOrSlug([ref, ref]);
          const rows = byId.length > 0 ? byId : await q.byName([ref, 5]);
          return Object.freeze(await hydrate(rows)) as SatelliteView[];
        },
        (v) => v.map((s) => s.id),
      );
    },

    /** Forget cached reads (a change made elsewhere, e.g. by another hub instance). */
    invalidate: () => changed(null),

    async slugsLike(base: string, c: Conn = db): Promise<Set<string>> {
      const rows = await c
        .selectFrom('satellites')
        .select('slug')
        // SQLite: a range on the unique index (LIKE cannot use it; byte order is binary there).
        // PostgreSQL: LIKE, because a non-C collation does not order '-' and '.' bytewise.
        .where((eb) =>
          eb.or([
            eb('slug', '=', base),
            driver === 'sqlite' ? eb.and([eb('slug', '>=', `${base}-`), eb('slug', '<', `${base}.`)]) : eb('slug', 'like', `${base}-%`),
          ]),
        )
        .execute();
      return new Set(rows.map((r) => r.slug));
    },

    insertSatellite(row: SatellitesTable, tags: string[], c: Conn = db) {
      return (async () => {
        await c.insertInto('satellites').values(row).execute();
        if (tags.length)
          await c
            .insertInto('satellite_tags')
            .values(tags.map((tag) => ({ satellite_id: row.id, tag })))
            .execute();
      })();
    },

    async updateSatellite(id: string, patch: Partial<SatellitesTable>, tags?: string[]): Promise<void> {
      await db.transaction().execute(async (trx) => {
        if (Object.keys(patch).length)
          await trx
            .updateTable('satellites')
            .set({ ...patch, updated_at: nowIso() })
            .where('id', '=', id)
            .execute();
        if (tags) {
          await trx.deleteFrom('satellite_tags').where('satellite_id', '=', id).execute();
          if (tags.length)
            await trx
              .insertInto('satellite_tags')
              .values(tags.map((tag) => ({ satellite_id: id, tag })))
              .execute();
        }
      });
    },

    /** Returns the satellite's view as written, when its cached view could be updated (else read it). */
    async setPresence(id: string, fields: Partial<SatellitesTable>): Promise<SatelliteView | undefined> {
      try {
        await db.updateTable('satellites').set(fields).where('id', '=', id).execute();
      } catch (err) {
        changed(id);
        throw err;
      }
      return patch(id, fields);
    },

    async touchLastSeen(ids: string[], at: string): Promise<void> {
      if (write && driver === 'sqlite') {
        await write(ids.map((id) => ({ table: 'satellites', kind: 'update', id, patch: { last_seen: at } })));
        for (const id of ids) patch(id, { last_seen: at }, false);
        return;
      }
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        await db.updateTable('satellites').set({ last_seen: at }).where('id', 'in', part).execute();
        for (const id of part) patch(id, { last_seen: at }, false);
      }
    },

    /** Marks satellites offline; with `keep`, those held by one of these live instances stay. */
    async markAllOffline(keep?: Set<string>): Promise<number> {
      let q = db.updateTable('satellites').set({ status: 'offline' }).where('status', '=', 'online');
      if (keep?.size) q = q.where((eb) => eb.or([eb('instance_id', 'is', null), eb('instance_id', 'not in', [...keep])]));
      const r = await q.executeTakeFirst();
      return Number(r.numUpdatedRows);
    },

    /** Offline only while `instance` holds the satellite; false when it is held elsewhere by now. */
    async setOfflineIfHeldBy(id: string, instance: string, lastSeen: string): Promise<boolean> {
      const r = await db
        .updateTable('satellites')
        .set({ status: 'offline', last_seen: lastSeen })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('instance_id', '=', instance), eb('instance_id', 'is', null)]))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async setOfflineForInstance(instance: string): Promise<string[]> {
      const rows = await db
        .updateTable('satellites')
        .set({ status: 'offline' })
        .where('instance_id', '=', instance)
        .where('status', '=', 'online')
        .returning('id')
        .execute();
      return rows.map((r) => r.id);
    },

    async deleteSatellite(id: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('satellite_tags').where('satellite_id', '=', id).execute();
        await trx.deleteFrom('satellite_status').where('satellite_id', '=', id).execute();
        await trx.deleteFrom('satellites').where('id', '=', id).execute();
        await trx
          .updateTable('device_tokens')
          .set({ revoked_at: nowIso() })
          .where('device_id', '=', id)
          .where('role', '=', 'node')
          .where('revoked_at', 'is', null)
          .execute();
      });
    },

    /** Satellites by ids and/or tag, in slug order. */
    /** Satellites by id and/or carrying a tag (fan-out targets), ordered by slug. */
    byIdsOrTag(ids: string[], tag?: string): Promise<SatelliteView[]> {
      if (ids.length === 0 && !tag) return Promise.resolve([]);
      // Long id lists are not worth a key of their own.
      if (ids.length > 100) return byIdsOrTagNow(ids, tag);
      return cached(`targets:${JSON.stringify([tag ?? null, ...ids])}`, () => byIdsOrTagNow(ids, tag));
    },

    async recordStatus(satelliteId: string, ts: string, report: string, keep: number): Promise<void> {
      await db.insertInto('satellite_status').values({ satellite_id: satelliteId, ts, report }).execute();
      const cutoff = await db
        .selectFrom('satellite_status')
        .select('ts')
        .where('satellite_id', '=', satelliteId)
        .orderBy('ts', 'desc')
        .offset(keep)
        .limit(1)
        .executeTakeFirst();
      if (cutoff) await db.deleteFrom('satellite_status').where('satellite_id', '=', satelliteId).where('ts', '<=', cutoff.ts).execute();
    },

    async statusHistory(satelliteId: string, limit: number): Promise<{ ts: string; report: unknown }[]> {
      const rows = await db.selectFrom('satellite_status').selectAll().where('satellite_id', '=', satelliteId).orderBy('ts', 'desc').limit(limit).execute();
      return rows.map((r) => ({ ts: r.ts, report: fromJson(r.report, {}) }));
    },

    async allTags(): Promise<{ tag: string; count: number }[]> {
      const rows = await db
        .selectFrom('satellite_tags')
        .select(['tag', (eb) => eb.fn.countAll<number>().as('count')])
        .groupBy('tag')
        .orderBy('tag')
        .execute();
      return rows.map((r) => ({ tag: r.tag, count: Number(r.count) }));
    },

    // ------------------------------------------------------------- devices & tokens
    async getDevice(deviceId: string) {
      return db.selectFrom('devices').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    },

    async ensureDevice(deviceId: string, publicKey: string, c: Conn = db): Promise<void> {
      await c
        .insertInto('devices')
        .values({ device_id: deviceId, public_key: publicKey, created_at: nowIso() })
        .onConflict((oc) => oc.column('device_id').doNothing())
        .execute();
    },

    async getToken(id: string) {
      return db.selectFrom('device_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async insertToken(row: Database['device_tokens'], c: Conn = db): Promise<void> {
      await c.insertInto('device_tokens').values(row).execute();
    },

    /** Revokes every live token of device+role except `keepId` (or only `onlyId`). Returns how many. */
    async revokeTokens(deviceId: string, role: string, keepId?: string, c: Conn = db, onlyId?: string): Promise<number> {
      let q = c
        .updateTable('device_tokens')
        .set({ revoked_at: nowIso() })
        .where('device_id', '=', deviceId)
        .where('role', '=', role as 'node')
        .where('revoked_at', 'is', null);
      if (keepId) q = q.where('id', '!=', keepId);
      if (onlyId) q = q.where('id', '=', onlyId);
      const r = await q.executeTakeFirst();
      return Number(r.numUpdatedRows);
    },

    async liveTokens(deviceId: string, role: string) {
      return db
        .selectFrom('device_tokens')
        .selectAll()
        .where('device_id', '=', deviceId)
        .where('role', '=', role as 'node')
        .where('revoked_at', 'is', null)
        .execute();
    },

    async touchToken(id: string): Promise<void> {
      await db.updateTable('device_tokens').set({ last_used_at: nowIso() }).where('id', '=', id).execute();
    },

    // ------------------------------------------------------------- pairing requests
    async insertPairing(row: PairingRequestsTable): Promise<void> {
      await db.insertInto('pairing_requests').values(row).execute();
    },

    async getPairing(id: string, c: Conn = db) {
      return c.selectFrom('pairing_requests').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async findPairing(deviceId: string, role: string, status: PairingRequestsTable['status'], c: Conn = db) {
      // Filter the status here: with it in the WHERE clause SQLite picked the (status, created_at)
      // index for the ORDER BY and read every approved request — O(fleet) per pairing.
      const rows = await c
        .selectFrom('pairing_requests')
        .selectAll()
        .where('device_id', '=', deviceId)
        .where('role', '=', role as 'node')
        .orderBy('created_at', 'desc')
        .execute();
      return rows.find((r) => r.status === status);
    },

    async listPairing(status?: PairingRequestsTable['status']) {
      let q = db.selectFrom('pairing_requests').selectAll();
      if (status) q = q.where('status', '=', status);
      return q.orderBy('created_at', 'desc').limit(500).execute();
    },

    async countPending(ip?: string): Promise<number> {
      let q = db.selectFrom('pairing_requests').where('status', '=', 'pending');
      if (ip) q = q.where('remote_ip', '=', ip);
      const [{ n } = { n: 0 }] = await q.select((eb) => eb.fn.countAll<number>().as('n')).execute();
      return Number(n);
    },

    /** Atomic pending → final transition; false when someone else resolved it first. */
    async resolvePairing(id: string, status: 'approved' | 'rejected' | 'expired', by: string | null, c: Conn = db): Promise<boolean> {
      const r = await c
        .updateTable('pairing_requests')
        .set({ status, resolved_at: nowIso(), resolved_by: by })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    /** Atomically claims the right to hand out the token for an approved request. */
    async claimTokenIssue(id: string, c: Conn = db): Promise<boolean> {
      const r = await c
        .updateTable('pairing_requests')
        .set({ token_issued: 1 })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .where('token_issued', '=', 0)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async expirePairing(now: string): Promise<string[]> {
      const rows = await db.selectFrom('pairing_requests').select('id').where('status', '=', 'pending').where('expires_at', '<', now).execute();
      const ids = rows.map((r) => r.id);
      if (ids.length)
        await db.updateTable('pairing_requests').set({ status: 'expired', resolved_at: now }).where('id', 'in', ids).where('status', '=', 'pending').execute();
      return ids;
    },
  };
  // Every write of satellites, their tags or their tokens (roles) ends cached reads (see `cached`).
  for (const [m, concern] of Object.entries(WRITES) as [keyof typeof WRITES, (args: unknown[]) => Concern][]) {
    const f = api[m] as (...args: unknown[]) => Promise<unknown>;
    const after = writes(concern);
    (api as Record<string, unknown>)[m] = (...args: unknown[]) => after(f(...args), args);
  }
  return api;
};

/** What a write concerned: one satellite (`refs`: and what references find), or (`id` null) possibly any. */
type Concern = { id: string | null; refs?: boolean };
const broad = (): Concern => ({ id: null });
const firstArg = (args: unknown[]): Concern => ({ id: args[0] as string });
/** The writes that change what reads show, and what each concerns. */
const WRITES = {
  // A new satellite may match any reference; renames, retags and deletes change what references,
  // pages and tags find. Other satellites' views by id stay.
  insertSatellite: (args: unknown[]): Concern => ({ id: (args[0] as SatellitesTable).id, refs: true }),
  updateSatellite: (args: unknown[]): Concern => ({ id: args[0] as string, refs: true }),
  // Not setPresence: it updates the satellite's cached view itself (`patch`). Not touchLastSeen:
  // heartbeats store last_seen every tick, which would end cached reads all the time (each exec
  // would read its satellite afresh); it updates the cached view by id, and pages show last_seen
  // as of their read.
  markAllOffline: broad,
  setOfflineIfHeldBy: firstArg,
  setOfflineForInstance: broad,
  deleteSatellite: (args: unknown[]): Concern => ({ id: args[0] as string, refs: true }),
  insertToken: (args: unknown[]): Concern => ({ id: (args[0] as { device_id: string }).device_id }),
  revokeTokens: firstArg,
} as const;
/** A device id: the SHA-256 of its public key in hex (sdk `deviceIdFromPublicKey`). */
const DEVICE_ID = /^[0-9a-f]{64}$/;
/** Columns a satellite view shows as they are stored. */
const PLAIN_COLUMNS = new Set([
  'slug',
  'name',
  'hostname',
  'os',
  'os_release',
  'arch',
  'agent_version',
  'project',
  'status',
  'remote_ip',
  'last_seen',
  'created_at',
  'updated_at',
]);
/**
 * How long a cached read of satellites may be served (if nothing changed meanwhile) when other
 * hub instances share the database: their changes arrive as bus events, which a Redis outage can
 * lose. A single hub sees every write itself and passes a longer time (main.ts).
 */
export const READ_CACHE_MS = 1000;
/** Cached reads kept (a satellite looked up by id, slug or name, fleet pages): a fleet of tens of thousands fits. */
const READ_CACHE_ENTRIES = 50_000;

export type DevicesStore = ReturnType<typeof devicesStoreFactory>;
