import { HiveError } from '@hive/protocol';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { nowIso } from '../../store/db.js';
import type { ProjectRole } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';

const PRINCIPAL_TYPES = ['api_key', 'user', 'client', 'ai'] as const;
export type MemberType = (typeof PRINCIPAL_TYPES)[number];

/** Principal types whose project roles are looked up (an MCP call acts with its API key's roles). */
const memberTypeOf = (p: Principal): MemberType | undefined =>
  p.type === 'mcp' ? 'api_key' : (PRINCIPAL_TYPES as readonly string[]).includes(p.type) ? (p.type as MemberType) : undefined;

/**
 * Projects are the tenancy boundary (seed 002): every satellite belongs to one; users, API keys
 * and clients hold a role per project (admin, member, reviewer) and see and act only there. A
 * principal with no project role works in the `default` project — except administrators
 * (operator.admin) without a role, who are global (the bootstrap admin key).
 */
export const projectsServiceFactory = ({
  db,
  audit,
  onChange,
}: {
  db: Db;
  audit: Pick<AuditService, 'log'>;
  /** After a grant or revoke (caches of resolved principals must forget). */
  onChange?: () => void;
}) => {
  /** Only principals not restricted to projects administer projects and permissions. */
  const requireGlobalAdmin = (p: Principal) => {
    requireScope(p, 'operator.admin');
    if (p.projects) throw new HiveError('FORBIDDEN', 'Only an administrator not restricted to projects manages projects and permissions');
  };

  return {
    /** Loads the principal's project roles (called once per request / connection). */
    async attach(p: Principal): Promise<Principal> {
      const type = memberTypeOf(p);
      if (!type) return p;
      const id = p.id;
      const rows = await db.selectFrom('memberships').select(['project', 'role']).where('principal_type', '=', type).where('principal_id', '=', id).execute();
      if (rows.length === 0) {
        // No project role: an administrator is global; an AI identity nowhere (it joins projects
        // only by permission); anyone else works in the default project.
        if (p.type === 'ai') return { ...p, projects: new Map() };
        return p.scopes.has('operator.admin') ? p : { ...p, projects: new Map([['default', 'member' as const]]) };
      }
      return { ...p, projects: new Map(rows.map((r) => [r.project, r.role])) };
    },

    async create(p: Principal, input: { id: string; description?: string | undefined }) {
      requireGlobalAdmin(p);
      if (await db.selectFrom('projects').select('id').where('id', '=', input.id).executeTakeFirst())
        throw new HiveError('CONFLICT', `Project ${input.id} already exists`);
      const row = { id: input.id, description: input.description ?? '', created_at: nowIso() };
      await db.insertInto('projects').values(row).execute();
      audit.log({ actor: p, action: 'project.created', target: { type: 'project', id: row.id }, result: 'success' });
      return row;
    },

    async list(p: Principal) {
      requireScope(p, 'operator.read');
      let q = db.selectFrom('projects').selectAll();
      if (p.projects) q = q.where('id', 'in', [...p.projects.keys()]);
      const rows = await q.orderBy('id').execute();
      const counts = await db
        .selectFrom('satellites')
        .select(['project', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('project')
        .execute();
      const n = new Map(counts.map((c) => [c.project, Number(c.n)]));
      return rows.map((r) => ({ ...r, satellites: n.get(r.id) ?? 0, ...(p.projects ? { role: p.projects.get(r.id) } : {}) }));
    },

    async exists(id: string): Promise<boolean> {
      return !!(await db.selectFrom('projects').select('id').where('id', '=', id).executeTakeFirst());
    },

    async grant(p: Principal, g: { principal_type: MemberType; principal_id: string; project: string; role: ProjectRole }) {
      requireGlobalAdmin(p);
      if (!(await this.exists(g.project))) throw new HiveError('NOT_FOUND', `Project ${g.project} not found`);
      await db
        .insertInto('memberships')
        .values({ ...g, created_at: nowIso() })
        .onConflict((oc) => oc.columns(['principal_type', 'principal_id', 'project']).doUpdateSet({ role: g.role }))
        .execute();
      audit.log({
        actor: p,
        action: 'permission.granted',
        target: { type: g.principal_type, id: g.principal_id },
        details: { project: g.project, role: g.role },
        result: 'success',
      });
      onChange?.();
      return g;
    },

    async revoke(p: Principal, g: { principal_type: MemberType; principal_id: string; project: string }) {
      requireGlobalAdmin(p);
      const held = await db
        .selectFrom('memberships')
        .select('project')
        .where('principal_type', '=', g.principal_type)
        .where('principal_id', '=', g.principal_id)
        .execute();
      if (held.length === 1 && held[0]?.project === g.project) {
        // Without any role it would fall back to the default project (or, for an admin key, to
        // everything): removing the last role is an explicit removal of the key or user instead.
        throw new HiveError(
          'CONFLICT',
          `This is the last project role of ${g.principal_type} ${g.principal_id}; grant another first, or revoke the key / remove the user`,
        );
      }
      const r = await db
        .deleteFrom('memberships')
        .where('principal_type', '=', g.principal_type)
        .where('principal_id', '=', g.principal_id)
        .where('project', '=', g.project)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) throw new HiveError('NOT_FOUND', `${g.principal_type} ${g.principal_id} holds no role in ${g.project}`);
      audit.log({
        actor: p,
        action: 'permission.revoked',
        target: { type: g.principal_type, id: g.principal_id },
        details: { project: g.project },
        result: 'success',
      });
      onChange?.();
      return { ...g, revoked: true };
    },

    async members(p: Principal, project: string) {
      requireGlobalAdmin(p);
      return db.selectFrom('memberships').selectAll().where('project', '=', project).orderBy('principal_type').orderBy('principal_id').execute();
    },
  };
};

export type ProjectsService = ReturnType<typeof projectsServiceFactory>;
