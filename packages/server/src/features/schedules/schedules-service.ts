import { HiveError } from '@hive/protocol';
import { CronExpressionParser } from 'cron-parser';
import { newId } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope, SYSTEM } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, toJson } from '../../store/db.js';
import type { SchedulesTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { CommandsService, Target } from '../commands/commands-service.js';

export interface ScheduleInput {
  name: string;
  cron: string;
  timezone: string;
  target: Target;
  command: string;
  params: Record<string, unknown>;
  timeout_ms?: number | undefined;
}

export interface ScheduleView {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  target: Target;
  command: string;
  params: unknown;
  timeout_ms: number;
  enabled: boolean;
  next_run_at: string;
  last_run_at: string | null;
  last_batch_id: string | null;
  created_by: string;
  created_at: string;
}

const toView = (r: SchedulesTable): ScheduleView => ({ ...r, target: fromJson(r.target, {}), params: fromJson(r.params, {}), enabled: r.enabled === 1 });

/** Next fire time strictly after `after`, in the schedule's time zone. Throws INVALID_PARAMETERS. */
export function nextRun(cron: string, timezone: string, after: Date): Date {
  try {
    Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new HiveError('INVALID_PARAMETERS', `Unknown time zone ${timezone} (use an IANA name like Europe/Berlin or UTC)`);
  }
  try {
    return CronExpressionParser.parse(cron, { currentDate: after, tz: timezone }).next().toDate();
  } catch (err) {
    throw new HiveError('INVALID_PARAMETERS', `Invalid cron expression "${cron}": ${(err as Error).message}`);
  }
}

/**
 * Scheduled commands: a cron expression with an explicit time zone runs a command on a target
 * set. Each due run is claimed by advancing next_run_at with a conditional UPDATE, so a run never
 * happens twice (also with several hub instances, or after a restart).
 */
export const schedulesServiceFactory = ({
  db,
  audit,
  commands,
  now = () => new Date(),
}: {
  db: Db;
  audit: Pick<AuditService, 'log'>;
  commands: Pick<CommandsService, 'execMany'>;
  now?: () => Date;
}) => {
  async function find(ref: string): Promise<SchedulesTable> {
    const row = await db
      .selectFrom('schedules')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
      .executeTakeFirst();
    if (!row) throw new HiveError('NOT_FOUND', `Schedule ${ref} not found`);
    return row;
  }

  return {
    async create(p: Principal, input: ScheduleInput): Promise<ScheduleView> {
      requireScope(p, 'operator.write');
      const next = nextRun(input.cron, input.timezone, now());
      const row: SchedulesTable = {
        id: newId('sch'),
        name: input.name,
        cron: input.cron,
        timezone: input.timezone,
        target: toJson(input.target),
        command: input.command,
        params: toJson(input.params),
        timeout_ms: input.timeout_ms ?? 30_000,
        enabled: 1,
        next_run_at: next.toISOString(),
        last_run_at: null,
        last_batch_id: null,
        created_by: `${p.type}:${p.name}`,
        created_at: now().toISOString(),
      };
      await db.insertInto('schedules').values(row).execute();
      audit.log({
        actor: p,
        action: 'schedule.created',
        target: { type: 'schedule', id: row.id },
        details: { name: row.name, cron: row.cron, timezone: row.timezone, command: row.command, target: input.target },
        result: 'success',
      });
      return toView(row);
    },
    async list(p: Principal): Promise<ScheduleView[]> {
      requireScope(p, 'operator.read');
      return (await db.selectFrom('schedules').selectAll().orderBy('name').execute()).map(toView);
    },
    async remove(p: Principal, ref: string): Promise<{ id: string; deleted: true }> {
      requireScope(p, 'operator.write');
      const row = await find(ref);
      await db.deleteFrom('schedules').where('id', '=', row.id).execute();
      audit.log({ actor: p, action: 'schedule.deleted', target: { type: 'schedule', id: row.id }, details: { name: row.name }, result: 'success' });
      return { id: row.id, deleted: true };
    },
    /** Runs every due schedule once. Called periodically; `at` makes it testable without waiting. */
    async tick(at: Date = now()): Promise<string[]> {
      const due = await db.selectFrom('schedules').selectAll().where('enabled', '=', 1).where('next_run_at', '<=', at.toISOString()).execute();
      const fired: string[] = [];
      for (const s of due) {
        const next = nextRun(s.cron, s.timezone, at).toISOString();
        const claimed = await db
          .updateTable('schedules')
          .set({ next_run_at: next, last_run_at: at.toISOString() })
          .where('id', '=', s.id)
          .where('next_run_at', '=', s.next_run_at)
          .executeTakeFirst();
        if (Number(claimed.numUpdatedRows) !== 1) continue; // another instance took this run
        fired.push(s.id);
        const actor: Principal = { ...SYSTEM, type: 'system', id: `schedule:${s.id}`, name: `schedule ${s.name}` };
        try {
          const batch = await commands.execMany(actor, {
            target: fromJson<Target>(s.target, {}),
            command: s.command,
            params: fromJson(s.params, {}),
            timeout_ms: s.timeout_ms,
            async: true,
            source: 'schedule',
          });
          await db.updateTable('schedules').set({ last_batch_id: batch.batch_id }).where('id', '=', s.id).execute();
          audit.log({
            actor,
            action: 'schedule.fired',
            target: { type: 'schedule', id: s.id },
            details: { batch_id: batch.batch_id, targets: batch.summary.total, scheduled_for: s.next_run_at },
            result: 'success',
          });
        } catch (err) {
          audit.log({
            actor,
            action: 'schedule.fired',
            target: { type: 'schedule', id: s.id },
            details: { scheduled_for: s.next_run_at },
            result: 'failure',
            error: (err as Error).message,
          });
        }
      }
      return fired;
    },
  };
};

export type SchedulesService = ReturnType<typeof schedulesServiceFactory>;
