import type { Kysely, Migration } from 'kysely';

/** Migrations of the vault, tasks and chat features (names `0002_*`). */
export const aiMigrations: Record<string, Migration> = {
  '0002_ai_vault_tasks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('vault_meta')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kdf', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('vault_entries')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('ciphertext', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addPrimaryKeyConstraint('vault_entries_pk', ['provider', 'key_id'])
        .execute();
      await db.schema
        .createTable('tasks')
        .addColumn('task_id', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('client_type', 'text', (c) => c.notNull())
        .addColumn('agent_type', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('target_satellite', 'text')
        .addColumn('timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('keys_used', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('pid', 'integer')
        .addColumn('exit_code', 'integer')
        .addColumn('signal', 'text')
        .addColumn('output_bytes', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('completed_at', 'text')
        .addColumn('result', 'text')
        .addColumn('error', 'text')
        .execute();
      await db.schema.createIndex('tasks_status').on('tasks').column('status').execute();
      await db.schema.createIndex('tasks_client').on('tasks').column('client_id').execute();
      await db.schema
        .createTable('task_output')
        .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.task_id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('task_output_pk', ['task_id', 'seq'])
        .execute();
    },
  },
};
