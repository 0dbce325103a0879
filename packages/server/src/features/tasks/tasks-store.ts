import type { Db } from '../../store/db.js';
import { fromJson } from '../../store/db.js';
import type { TaskOutputTable, TaskStatus, TasksTable } from '../../store/schema-ai.js';

export interface TaskView {
  task_id: string;
  client_id: string;
  agent_type: string;
  description: string;
  status: TaskStatus;
  target_satellite: string | null;
  timeout_ms: number;
  keys_used: string[];
  pid: number | null;
  exit_code: number | null;
  signal: string | null;
  output_bytes: number;
  truncated: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  result: { text: string; error?: string; usage?: unknown } | null;
  error: string | null;
}

export const toTaskView = (r: TasksTable): TaskView => ({
  task_id: r.task_id,
  client_id: r.client_id,
  agent_type: r.agent_type,
  description: r.description,
  status: r.status,
  target_satellite: r.target_satellite,
  timeout_ms: r.timeout_ms,
  keys_used: fromJson<string[]>(r.keys_used, []),
  pid: r.pid,
  exit_code: r.exit_code,
  signal: r.signal,
  output_bytes: r.output_bytes,
  truncated: r.truncated === 1,
  created_at: r.created_at,
  started_at: r.started_at,
  completed_at: r.completed_at,
  result: fromJson(r.result, null),
  error: r.error,
});

export const tasksStoreFactory = ({ db }: { db: Db }) => ({
  async insert(row: TasksTable): Promise<void> {
    await db.insertInto('tasks').values(row).execute();
  },
  async update(id: string, patch: Partial<TasksTable>): Promise<void> {
    await db.updateTable('tasks').set(patch).where('task_id', '=', id).execute();
  },
  /** pending → running; a task that already ended (fast exit) keeps its final state. */
  async markRunning(id: string, pid: number, startedAt: string): Promise<void> {
    await db.updateTable('tasks').set({ status: 'running', pid, started_at: startedAt }).where('task_id', '=', id).where('status', '=', 'pending').execute();
  },
  get(id: string): Promise<TasksTable | undefined> {
    return db.selectFrom('tasks').selectAll().where('task_id', '=', id).executeTakeFirst();
  },
  async list(f: { client_id?: string | undefined; status?: TaskStatus | undefined; agent_type?: string | undefined; page: number; per_page: number }) {
    let sel = db.selectFrom('tasks');
    if (f.client_id) sel = sel.where('client_id', '=', f.client_id);
    if (f.status) sel = sel.where('status', '=', f.status);
    if (f.agent_type) sel = sel.where('agent_type', '=', f.agent_type);
    const [{ n } = { n: 0 }] = await sel.select((eb) => eb.fn.countAll<number>().as('n')).execute();
    const rows = await sel
      .selectAll()
      .orderBy('task_id', 'desc')
      .limit(f.per_page)
      .offset((f.page - 1) * f.per_page)
      .execute();
    return { items: rows.map(toTaskView), total: Number(n) };
  },
  async appendOutput(rows: TaskOutputTable[]): Promise<void> {
    if (rows.length === 0) return;
    await db.insertInto('task_output').values(rows).execute();
  },
  output(id: string, since: number, limit: number): Promise<TaskOutputTable[]> {
    return db.selectFrom('task_output').selectAll().where('task_id', '=', id).where('seq', '>', since).orderBy('seq').limit(limit).execute();
  },
  /** Tasks a previous hub process left running: their processes are gone with it. */
  async failUnfinished(reason: string): Promise<number> {
    const r = await db
      .updateTable('tasks')
      .set({ status: 'failed', completed_at: new Date().toISOString(), error: reason })
      .where('status', 'in', ['pending', 'running'])
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  },
});

export type TasksStore = ReturnType<typeof tasksStoreFactory>;
