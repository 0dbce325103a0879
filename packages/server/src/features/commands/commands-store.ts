import type { Db } from '../../store/db.js';
import { fromJson } from '../../store/db.js';
import type { JobsTable } from '../../store/schema.js';

export interface JobView {
  id: string;
  correlation_id: string;
  satellite_id: string;
  command: string;
  params: unknown;
  state: JobsTable['state'];
  actor: { type: string; id: string };
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  result: unknown;
  error: { code: string; message: string } | null;
}

export const toJobView = (r: JobsTable): JobView => ({
  id: r.id,
  correlation_id: r.correlation_id,
  satellite_id: r.satellite_id,
  command: r.command,
  params: fromJson(r.params, {}),
  state: r.state,
  actor: { type: r.actor_type, id: r.actor_id },
  timeout_ms: r.timeout_ms,
  created_at: r.created_at,
  started_at: r.started_at,
  finished_at: r.finished_at,
  duration_ms: r.duration_ms,
  result: fromJson(r.result, null),
  error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
});

export const commandsStoreFactory = ({ db }: { db: Db }) => ({
  async insert(row: JobsTable): Promise<void> {
    await db.insertInto('jobs').values(row).execute();
  },
  async update(id: string, patch: Partial<JobsTable>): Promise<void> {
    await db.updateTable('jobs').set(patch).where('id', '=', id).execute();
  },
  async get(id: string): Promise<JobsTable | undefined> {
    return db
      .selectFrom('jobs')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', id), eb('correlation_id', '=', id)]))
      .executeTakeFirst();
  },
  async list(f: { satellite_id?: string | undefined; state?: string | undefined; page: number; per_page: number }) {
    let sel = db.selectFrom('jobs');
    if (f.satellite_id) sel = sel.where('satellite_id', '=', f.satellite_id);
    if (f.state) sel = sel.where('state', '=', f.state as JobsTable['state']);
    const [{ n } = { n: 0 }] = await sel.select((eb) => eb.fn.countAll<number>().as('n')).execute();
    const rows = await sel
      .selectAll()
      .orderBy('id', 'desc')
      .limit(f.per_page)
      .offset((f.page - 1) * f.per_page)
      .execute();
    return { items: rows.map(toJobView), total: Number(n) };
  },
  /** Ends every job still in a non-final state (after a crash or at shutdown). */
  async failUnfinished(reason: string, ids?: string[]): Promise<number> {
    let q = db
      .updateTable('jobs')
      .set({ state: 'failed', finished_at: new Date().toISOString(), error_code: 'INTERNAL_ERROR', error_message: reason })
      .where('state', 'in', ['running', 'pending_approval']);
    if (ids) {
      if (ids.length === 0) return 0;
      q = q.where('id', 'in', ids);
    }
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  },
});

export type CommandsStore = ReturnType<typeof commandsStoreFactory>;
