import type { Kysely, Migration } from 'kysely';

/**
 * Scale-out (`0008_*`): which hub instance holds a satellite's connection and which instance runs
 * a job, so the survivors can end what a dead instance left behind.
 */
export const clusterMigrations: Record<string, Migration> = {
  '0008_cluster': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('satellites').addColumn('instance_id', 'text').execute();
      await db.schema.alterTable('jobs').addColumn('instance_id', 'text').execute();
      await db.schema.createIndex('jobs_instance_state').on('jobs').columns(['instance_id', 'state']).execute();
    },
  },
};
