import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openStore, type Store } from './db.js';
import type { AuditLogsTable } from './schema.js';

/** An unchained audit row as a write of `store.write` would carry it (test data). */
export function auditRow(id: string, over: Partial<AuditLogsTable> = {}): AuditLogsTable & Record<string, unknown> {
  return {
    id,
    ts: new Date().toISOString(),
    actor_type: 'system',
    actor_id: 'hub',
    actor_name: 'hub',
    action: 'test.write',
    target_type: null,
    target_id: null,
    details: '{}',
    result: 'success',
    error: null,
    source_ip: null,
    correlation_id: null,
    ...over,
  };
}

/** Test helper: the store on SQLite (a temp file) and on PostgreSQL (a schema of its own). */
export const PG_URL = process.env.HIVE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDriver {
  name: 'sqlite' | 'postgres';
  skip: boolean;
  open(): Promise<{ store: Store; cleanup: () => Promise<void> }>;
}

/** Why PostgreSQL cannot be used here, or null. Printed by the caller, never silent. */
export async function pgUnavailable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Both drivers; PostgreSQL is skipped (saying so on stderr, with `label`) when it is absent. */
export async function testDrivers(label: string): Promise<TestDriver[]> {
  const pgMissing = await pgUnavailable();
  if (pgMissing) process.stderr.write(`[${label}] PostgreSQL at ${PG_URL} unavailable, its tests are skipped: ${pgMissing}\n`);
  return [
    {
      name: 'sqlite',
      skip: false,
      async open() {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-store-'));
        const store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'hive.db') });
        return { store, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
      },
    },
    {
      name: 'postgres',
      skip: pgMissing !== null,
      async open() {
        const schema = `hive_test_${randomBytes(6).toString('hex')}`;
        const store = await openStore({ driver: 'postgres', connection: PG_URL, schema, maxConnections: 4 });
        return {
          store,
          cleanup: async () => {
            const c = new pg.Client({ connectionString: PG_URL });
            await c.connect();
            await c.query(`DROP SCHEMA ${schema} CASCADE`);
            await c.end();
          },
        };
      },
    },
  ];
}
