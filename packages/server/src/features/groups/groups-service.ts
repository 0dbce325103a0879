import { HiveError } from '@hive/protocol';
import { newId } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { GroupsTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { SatelliteView } from '../devices/devices-store.js';

export interface GroupView {
  id: string;
  name: string;
  description: string;
  members: string[];
  tags: string[];
  created_at: string;
}

const toView = (r: GroupsTable): GroupView => ({
  id: r.id,
  name: r.name,
  description: r.description,
  members: fromJson(r.members, []),
  tags: fromJson(r.tags, []),
  created_at: r.created_at,
});

/** Named sets of satellites (seed 003 §5.2): explicit members plus everything carrying one of its tags. */
export const groupsServiceFactory = ({
  db,
  audit,
  resolveRef,
  byIdsOrTag,
}: {
  db: Db;
  audit: Pick<AuditService, 'log'>;
  resolveRef: (ref: string) => Promise<SatelliteView>;
  byIdsOrTag: (ids: string[], tag?: string) => Promise<SatelliteView[]>;
}) => {
  async function find(ref: string): Promise<GroupsTable> {
    const row = await db
      .selectFrom('groups')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
      .executeTakeFirst();
    if (!row) throw new HiveError('NOT_FOUND', `Group ${ref} not found`);
    return row;
  }

  return {
    async create(
      p: Principal,
      g: { name: string; description?: string | undefined; members?: string[] | undefined; tags?: string[] | undefined },
    ): Promise<GroupView> {
      requireScope(p, 'operator.write');
      const members: string[] = [];
      for (const ref of g.members ?? []) members.push((await resolveRef(ref)).id);
      const exists = await db.selectFrom('groups').select('id').where('name', '=', g.name).executeTakeFirst();
      if (exists) throw new HiveError('CONFLICT', `Group ${g.name} already exists`);
      const row: GroupsTable = {
        id: newId('grp'),
        name: g.name,
        description: g.description ?? '',
        members: toJson([...new Set(members)]),
        tags: toJson([...new Set(g.tags ?? [])]),
        created_at: nowIso(),
      };
      await db.insertInto('groups').values(row).execute();
      audit.log({
        actor: p,
        action: 'group.created',
        target: { type: 'group', id: row.id },
        details: { name: g.name, members: members.length, tags: g.tags ?? [] },
        result: 'success',
      });
      return toView(row);
    },
    async list(p: Principal): Promise<GroupView[]> {
      requireScope(p, 'operator.read');
      return (await db.selectFrom('groups').selectAll().orderBy('name').execute()).map(toView);
    },
    async get(p: Principal, ref: string): Promise<GroupView> {
      requireScope(p, 'operator.read');
      return toView(await find(ref));
    },
    async remove(p: Principal, ref: string): Promise<{ id: string; deleted: true }> {
      requireScope(p, 'operator.write');
      const row = await find(ref);
      await db.deleteFrom('groups').where('id', '=', row.id).execute();
      audit.log({ actor: p, action: 'group.deleted', target: { type: 'group', id: row.id }, details: { name: row.name }, result: 'success' });
      return { id: row.id, deleted: true };
    },
    /** Current members: explicit ones plus satellites carrying any of the group's tags. */
    async satellites(ref: string): Promise<SatelliteView[]> {
      const g = toView(await find(ref));
      const out = new Map<string, SatelliteView>();
      for (const s of await byIdsOrTag(g.members)) out.set(s.id, s);
      for (const tag of g.tags) for (const s of await byIdsOrTag([], tag)) out.set(s.id, s);
      return [...out.values()].sort((a, b) => a.slug.localeCompare(b.slug));
    },
  };
};

export type GroupsService = ReturnType<typeof groupsServiceFactory>;
