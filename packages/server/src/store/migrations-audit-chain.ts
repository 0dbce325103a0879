import type { Kysely, Migration } from 'kysely';

/**
 * Hash-chained audit entries (`0009_*`): each process writes its own chain (`chain`, numbered by
 * `seq` from 0); an entry's `hash` covers its stored fields plus its predecessor's `prev_hash` and
 * `prev_ts`. Nullable: entries written before this migration stay valid and are reported as
 * unchained by `hive audit verify`. The index serves verification (one chain at a time, in order).
 */
export const auditChainMigrations: Record<string, Migration> = {
  '0009_audit_chain': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('audit_logs').addColumn('chain', 'text').execute();
      await db.schema.alterTable('audit_logs').addColumn('seq', 'bigint').execute();
      await db.schema.alterTable('audit_logs').addColumn('prev_ts', 'text').execute();
      await db.schema.alterTable('audit_logs').addColumn('prev_hash', 'text').execute();
      await db.schema.alterTable('audit_logs').addColumn('hash', 'text').execute();
      await db.schema.createIndex('audit_logs_chain_seq').on('audit_logs').columns(['chain', 'seq']).execute();
    },
  },
};
