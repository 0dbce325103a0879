import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { SessionStatus, SessionsTable } from '../../store/schema.js';

/** One terminal session as the hub knows it (the API's view, minus live relay counters). */
export interface SessionRecord {
  id: string;
  satellite_id: string;
  satellite_slug: string;
  project: string;
  kind: 'interactive' | 'run';
  status: SessionStatus;
  cols: number;
  rows: number;
  command: string | null;
  actor: { type: string; id: string; name: string; ip?: string };
  approval_id: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  exit_code: number | null;
  pid: number | null;
  /** asciicast v2 file under <data_dir>/recordings, when recording is on. */
  recording: string | null;
  /** When the retention cleanup deleted the recording file. */
  recording_deleted_at: string | null;
  bytes_out: number;
  bytes_in: number;
}

export interface SessionView extends SessionRecord {
  /** Bytes the hub holds for this session right now (relay queue); bounded by the stream window. */
  buffered_bytes: number;
  /** Operator connections attached. */
  attached: number;
}

/** What a session was asked to run (kept so an approved run can start from it). */
export interface SessionRequest {
  argv?: string[] | undefined;
  command?: string | undefined;
  timeout_ms?: number | undefined;
  max_bytes?: number | undefined;
}

export interface SessionRow extends SessionRecord {
  request: SessionRequest;
  hub_id: string | null;
  output: string | null;
  output_truncated: boolean;
}

const LIVE: SessionStatus[] = ['pending_approval', 'opening', 'active'];

function fromRow(r: SessionsTable): SessionRow {
  return {
    id: r.id,
    satellite_id: r.satellite_id,
    satellite_slug: r.satellite_slug,
    project: r.project,
    kind: r.kind,
    status: r.status,
    cols: Number(r.cols),
    rows: Number(r.rows),
    command: r.command,
    actor: { type: r.actor_type, id: r.actor_id, name: r.actor_name, ...(r.source_ip ? { ip: r.source_ip } : {}) },
    approval_id: r.approval_id,
    created_at: r.created_at,
    started_at: r.started_at,
    ended_at: r.ended_at,
    end_reason: r.end_reason,
    exit_code: r.exit_code === null ? null : Number(r.exit_code),
    pid: r.pid === null ? null : Number(r.pid),
    recording: r.recording,
    recording_deleted_at: r.recording_deleted_at,
    bytes_out: Number(r.bytes_out),
    bytes_in: Number(r.bytes_in),
    request: fromJson<SessionRequest>(r.request, {}),
    hub_id: r.hub_id,
    output: r.output,
    output_truncated: r.output_truncated === 1,
  };
}

export function toTable(s: SessionRow): SessionsTable {
  return {
    id: s.id,
    satellite_id: s.satellite_id,
    satellite_slug: s.satellite_slug,
    project: s.project,
    kind: s.kind,
    status: s.status,
    command: s.command,
    request: toJson(s.request),
    cols: s.cols,
    rows: s.rows,
    actor_type: s.actor.type,
    actor_id: s.actor.id,
    actor_name: s.actor.name,
    source_ip: s.actor.ip ?? null,
    approval_id: s.approval_id,
    hub_id: s.hub_id,
    pid: s.pid,
    exit_code: s.exit_code,
    end_reason: s.end_reason,
    recording: s.recording,
    recording_deleted_at: s.recording_deleted_at,
    bytes_in: s.bytes_in,
    bytes_out: s.bytes_out,
    output: s.output,
    output_truncated: s.output_truncated ? 1 : 0,
    created_at: s.created_at,
    started_at: s.started_at,
    ended_at: s.ended_at,
  };
}

export type SessionPatch = Partial<Omit<SessionsTable, 'id' | 'satellite_id' | 'created_at'>>;

export interface SessionListQuery {
  satellite_id?: string | undefined;
  /** live = pending_approval, opening or active; ended; or all. */
  state?: 'live' | 'ended' | 'all' | undefined;
  /** Restricted principals: only these projects. */
  projects?: string[] | undefined;
  page: number;
  per_page: number;
}

/**
 * Sessions in the database (`sessions`, migration 0007): the durable record of who opened what,
 * how it ended and where its recording is. The relay itself (streams, timers) lives in the
 * sessions service's memory; a hub restart ends what was live (`recover`).
 */
export function sessionsStoreFactory(db: Db) {
  return {
    async insert(s: SessionRow): Promise<void> {
      await db.insertInto('sessions').values(toTable(s)).execute();
    },

    async get(id: string): Promise<SessionRow | undefined> {
      const r = await db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      return r ? fromRow(r) : undefined;
    },

    async update(id: string, patch: SessionPatch): Promise<void> {
      await db.updateTable('sessions').set(patch).where('id', '=', id).execute();
    },

    /** Conditional state change; true when this caller made it (first one wins, also across instances). */
    async transition(id: string, from: SessionStatus[], patch: SessionPatch): Promise<boolean> {
      const r = await db.updateTable('sessions').set(patch).where('id', '=', id).where('status', 'in', from).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async list(q: SessionListQuery): Promise<{ items: SessionRow[]; total: number }> {
      if (q.projects && q.projects.length === 0) return { items: [], total: 0 };
      let base = db.selectFrom('sessions');
      if (q.satellite_id) base = base.where('satellite_id', '=', q.satellite_id);
      if (q.state === 'live') base = base.where('status', 'in', LIVE);
      else if (q.state === 'ended') base = base.where('status', '=', 'ended');
      if (q.projects) base = base.where('project', 'in', q.projects);
      const [{ n } = { n: 0 }] = await base.select((eb) => eb.fn.countAll<number>().as('n')).execute();
      const rows = await base
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(q.per_page)
        .offset((q.page - 1) * q.per_page)
        .execute();
      return { items: rows.map(fromRow), total: Number(n) };
    },

    /** Sessions opening or active on a satellite, whichever instance relays them. */
    async countActive(satelliteId: string): Promise<number> {
      const [{ n } = { n: 0 }] = await db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('satellite_id', '=', satelliteId)
        .where('status', 'in', ['opening', 'active'])
        .execute();
      return Number(n);
    },

    /** Sessions left live by a previous run of the hub (a PTY does not outlive its relay). */
    async liveLeftovers(): Promise<SessionRow[]> {
      return (await db.selectFrom('sessions').selectAll().where('status', 'in', LIVE).execute()).map(fromRow);
    },

    /** Ended sessions whose recording file is still there and older than `before`. */
    async recordingsEndedBefore(before: string, limit = 500): Promise<{ id: string; recording: string }[]> {
      const rows = await db
        .selectFrom('sessions')
        .select(['id', 'recording'])
        .where('status', '=', 'ended')
        .where('recording', 'is not', null)
        .where('recording_deleted_at', 'is', null)
        .where('ended_at', '<', before)
        .orderBy('ended_at')
        .limit(limit)
        .execute();
      return rows as { id: string; recording: string }[];
    },

    async markRecordingDeleted(ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      await db.updateTable('sessions').set({ recording_deleted_at: nowIso() }).where('id', 'in', ids).execute();
    },

    /** Recording paths the table knows (live or kept), to tell orphan files from tracked ones. */
    async trackedRecording(file: string): Promise<boolean> {
      const r = await db.selectFrom('sessions').select('id').where('recording', '=', file).where('recording_deleted_at', 'is', null).executeTakeFirst();
      return !!r;
    },
  };
}

export type SessionsStore = ReturnType<typeof sessionsStoreFactory>;
