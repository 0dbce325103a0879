import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { aiMigrations } from './migrations-ai.js';
import { auditChainMigrations } from './migrations-audit-chain.js';
import { clusterMigrations } from './migrations-cluster.js';
import { sessionsMigrations } from './migrations-sessions.js';

/**
 * Migrations are code, in order, and run on both drivers. Types: text for ids, JSON and ISO
 * timestamps; integer for small numbers. Never edit a shipped migration: add a new one.
 */
const migrations: Record<string, Migration> = {
  '0001_init': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('satellites')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('slug', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('hostname', 'text')
        .addColumn('os', 'text')
        .addColumn('os_release', 'text')
        .addColumn('arch', 'text')
        .addColumn('agent_version', 'text')
        .addColumn('project', 'text', (c) => c.notNull().defaultTo('default'))
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('offline'))
        .addColumn('commands', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('approved_commands', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('policy', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('remote_ip', 'text')
        .addColumn('last_seen', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('satellites_status').on('satellites').column('status').execute();
      await db.schema.createIndex('satellites_name').on('satellites').column('name').execute();

      await db.schema
        .createTable('satellite_tags')
        .addColumn('satellite_id', 'text', (c) => c.notNull().references('satellites.id').onDelete('cascade'))
        .addColumn('tag', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('satellite_tags_pk', ['satellite_id', 'tag'])
        .execute();
      await db.schema.createIndex('satellite_tags_tag').on('satellite_tags').column('tag').execute();

      await db.schema
        .createTable('devices')
        .addColumn('device_id', 'text', (c) => c.primaryKey())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('device_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('device_tokens_device').on('device_tokens').columns(['device_id', 'role']).execute();

      await db.schema
        .createTable('pairing_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('client', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('remote_ip', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('auto', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('token_issued', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('resolved_at', 'text')
        .addColumn('resolved_by', 'text')
        .execute();
      await db.schema.createIndex('pairing_requests_status').on('pairing_requests').columns(['status', 'created_at']).execute();
      await db.schema.createIndex('pairing_requests_device').on('pairing_requests').columns(['device_id', 'role']).execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('last_used_ip', 'text')
        .execute();

      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('correlation_id', 'text', (c) => c.notNull().unique())
        .addColumn('satellite_id', 'text', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull().defaultTo('{}'))
        /* the exact params to send, kept only while the job waits (queued / pending approval) */
        .addColumn('payload', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('source_ip', 'text')
        .addColumn('timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
        .addColumn('batch_id', 'text')
        .addColumn('approval_id', 'text')
        .addColumn('queue_until', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('duration_ms', 'integer')
        .addColumn('result', 'text')
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .execute();
      await db.schema.createIndex('jobs_satellite').on('jobs').columns(['satellite_id', 'created_at']).execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
      await db.schema.createIndex('jobs_batch').on('jobs').column('batch_id').execute();

      await db.schema
        .createTable('approvals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('job_id', 'text', (c) => c.notNull())
        .addColumn('satellite_id', 'text', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        /* the params to run on approval; shown to approvers redacted */
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('resolved_at', 'text')
        .addColumn('resolved_by', 'text')
        .addColumn('resolution', 'text')
        .execute();
      await db.schema.createIndex('approvals_status').on('approvals').columns(['status', 'expires_at']).execute();

      await db.schema
        .createTable('groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        /* JSON array of satellite ids */
        .addColumn('members', 'text', (c) => c.notNull().defaultTo('[]'))
        /* JSON array of tags: satellites with any of them are members too */
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('schedules')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('cron', 'text', (c) => c.notNull())
        .addColumn('timezone', 'text', (c) => c.notNull())
        /* JSON target: {satellites?, tag?, group?} */
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('next_run_at', 'text', (c) => c.notNull())
        .addColumn('last_run_at', 'text')
        .addColumn('last_batch_id', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('schedules_due').on('schedules').columns(['enabled', 'next_run_at']).execute();

      await db.schema
        .createTable('hub_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('satellite_status')
        .addColumn('satellite_id', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('report', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('satellite_status_sat_ts').on('satellite_status').columns(['satellite_id', 'ts']).execute();

      await db.schema
        .createTable('audit_logs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_name', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text')
        .addColumn('target_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('source_ip', 'text')
        .addColumn('correlation_id', 'text')
        .execute();
      await db.schema.createIndex('audit_logs_ts').on('audit_logs').column('ts').execute();
      await db.schema.createIndex('audit_logs_action').on('audit_logs').columns(['action', 'ts']).execute();
      await db.schema.createIndex('audit_logs_target').on('audit_logs').columns(['target_id', 'ts']).execute();
      await db.schema.createIndex('audit_logs_corr').on('audit_logs').column('correlation_id').execute();
    },
  },
};

migrations['0003_users'] = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('last_login_at', 'text')
      .execute();
    await db.schema
      .createTable('refresh_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('family_id', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
  },
};

migrations['0004_clients'] = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('clients')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('secret_hash', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('allowed_tools', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .addColumn('last_used_at', 'text')
      .execute();
  },
};

migrations['0005_projects'] = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('projects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.insertInto('projects').values({ id: 'default', description: 'Satellites not assigned elsewhere', created_at: new Date().toISOString() }).execute();
    await db.schema
      .createTable('memberships')
      .addColumn('principal_type', 'text', (c) => c.notNull())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('project', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('memberships_pk', ['principal_type', 'principal_id', 'project'])
      .execute();
    await db.schema.createIndex('satellites_project').on('satellites').column('project').execute();
  },
};

migrations['0006_ai_identities'] = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ai_identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('nickname', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('expertise', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('version', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('ai_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('identity_id', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text')
      .addColumn('revoked_at', 'text')
      .addColumn('last_used_at', 'text')
      .execute();
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return { ...migrations, ...aiMigrations, ...clusterMigrations, ...sessionsMigrations, ...auditChainMigrations };
  },
};
