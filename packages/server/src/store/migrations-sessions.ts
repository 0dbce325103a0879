import type { Kysely, Migration } from 'kysely';

/**
 * Terminal sessions (`0007_*`): one row per session, so sessions and their recordings outlive a
 * hub restart. Live state (streams, timers) stays in memory; `bigint` byte counters because a
 * session can move more than 2 GiB.
 */
export const sessionsMigrations: Record<string, Migration> = {
  '0007_sessions': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('satellite_id', 'text', (c) => c.notNull())
        .addColumn('satellite_slug', 'text', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull().defaultTo('default'))
        /* interactive (hive ssh, REST/WS open) | run (one command, output collected: MCP session_run) */
        .addColumn('kind', 'text', (c) => c.notNull().defaultTo('interactive'))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('command', 'text')
        /* JSON: argv / command / timeout_ms / max_bytes as requested (what runs once approved) */
        .addColumn('request', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('cols', 'integer', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_name', 'text', (c) => c.notNull())
        .addColumn('source_ip', 'text')
        .addColumn('approval_id', 'text')
        .addColumn('hub_id', 'text')
        .addColumn('pid', 'integer')
        .addColumn('exit_code', 'integer')
        .addColumn('end_reason', 'text')
        .addColumn('recording', 'text')
        .addColumn('recording_deleted_at', 'text')
        .addColumn('bytes_in', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_out', 'bigint', (c) => c.notNull().defaultTo(0))
        /* kind run: the output as plain text, bounded by the request's max_bytes */
        .addColumn('output', 'text')
        .addColumn('output_truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('ended_at', 'text')
        .execute();
      await db.schema.createIndex('sessions_satellite').on('sessions').columns(['satellite_id', 'created_at']).execute();
      await db.schema.createIndex('sessions_status').on('sessions').column('status').execute();
      await db.schema.createIndex('sessions_recording_ended').on('sessions').columns(['recording_deleted_at', 'ended_at']).execute();
    },
  },
};
