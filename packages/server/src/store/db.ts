import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { type Compilable, Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { startCheckpointer } from './checkpointer.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import { type BatchWrite, batchWriter, type SqliteBusyOptions } from './writer.js';

export type Db = Kysely<Database>;

export interface DbConfig {
  driver: 'sqlite' | 'postgres';
  /** SQLite file path, or PostgreSQL connection string. */
  connection: string;
  maxConnections?: number;
  /** PostgreSQL only: schema to use (created if missing); lets tests isolate themselves. */
  schema?: string;
  /** SQLite only: waiting for another connection's write lock (see writer.ts). */
  busy?: SqliteBusyOptions;
}

export interface Store {
  db: Db;
  driver: DbConfig['driver'];
  close(): Promise<void>;
  ping(): Promise<void>;
  /** Hot-path row writes (job rows, audit entries), one transaction per call; see writer.ts. */
  write: BatchWrite & { /** SQLite on a file: the thread that runs them. */ worker?: Worker };
}

/** Opens the database and runs pending migrations. */
export async function openStore(cfg: DbConfig): Promise<Store> {
  let db: Db;
  let sqlite: SQLite.Database | undefined;
  let checkpointer: ReturnType<typeof startCheckpointer> | undefined;
  let takeCheckpoint: (() => boolean) | undefined;
  /** The SQLite database file (none in memory): its checkpointer and batch-write worker open it too. */
  let file: string | undefined;
  if (cfg.driver === 'sqlite') {
    if (cfg.connection !== ':memory:') mkdirSync(path.dirname(path.resolve(cfg.connection)), { recursive: true });
    sqlite = new SQLite(cfg.connection);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(cfg.busy?.timeoutMs ?? 5000))}`);
    sqlite.pragma('foreign_keys = ON');
    // 16 MB of page cache instead of SQLite's 2 MB: inserts into indexes keyed by satellite (jobs,
    // audit entries) touch pages all over them; re-reading those through the OS cost time.
    sqlite.pragma('cache_size = -16384');
    cachePreparedStatements(sqlite);
    if (cfg.connection !== ':memory:') {
      file = path.resolve(cfg.connection);
      // Past the WAL's limit, the write worker (once it runs) checkpoints, not this connection.
      checkpointer = startCheckpointer(sqlite, file, undefined, { overLimit: () => takeCheckpoint?.() ?? false });
    }
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  } else {
    const pool = new pg.Pool({
      connectionString: cfg.connection,
      max: cfg.maxConnections ?? 20,
      ...(cfg.schema ? { options: `-c search_path=${cfg.schema}` } : {}),
    });
    // An idle client losing its server must not crash the hub; the next query reports it.
    pool.on('error', () => {});
    if (cfg.schema) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(cfg.schema)) throw new Error(`invalid schema name ${cfg.schema}`);
      const c = await pool.connect();
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${cfg.schema}`);
      } finally {
        c.release();
      }
    }
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  // With a dedicated schema the migration bookkeeping lives there too (Kysely otherwise finds
  // another schema's kysely_migration table and skips creating its own).
  const migrator = new Migrator({ db, provider: migrationProvider, ...(cfg.driver === 'postgres' && cfg.schema ? { migrationTableSchema: cfg.schema } : {}) });
  let { error } = await migrator.migrateToLatest();
  // Kysely's PostgreSQL introspection reads every schema of the database; one dropped meanwhile by
  // someone else (tests sharing a database drop theirs) fails it with "schema … does not exist".
  for (let i = 0; i < 5 && (error as { code?: string } | undefined)?.code === '3F000'; i++) ({ error } = await migrator.migrateToLatest());
  if (error) {
    await checkpointer?.close();
    await db.destroy();
    throw error instanceof Error ? error : new Error(String(error));
  }
  const write = batchWriter(db, sqlite, file, cfg.busy);
  takeCheckpoint = write.checkpoint;
  return {
    db,
    driver: cfg.driver,
    write,
    async close() {
      await write.close();
      await checkpointer?.close();
      await db.destroy();
    },
    async ping() {
      await db.selectFrom('api_keys').select('id').limit(1).execute();
    },
  };
}

/**
 * Kysely prepares every query afresh; with better-sqlite3 that is a large part of each query's
 * cost. Reusing prepared statements per SQL text is safe (calls are synchronous, nothing iterates
 * a statement across awaits). Bounded, oldest evicted first.
 */
function cachePreparedStatements(sqlite: SQLite.Database, max = 1000): void {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(sql, stmt);
    }
    return stmt;
  }) as typeof sqlite.prepare;
  if (process.env.HIVE_DEBUG_SQL) {
    const counted = sqlite.prepare;
    sqlite.prepare = ((sql: string) => {
      process.stderr.write(`SQL ${sql}\n`);
      return counted(sql);
    }) as typeof sqlite.prepare;
  }
}

/**
 * A query built and compiled once, then run with other values for its `n` bound parameters (in
 * the order the compiled SQL binds them). For hot lookups, where building and compiling the query
 * with Kysely costs more than the database's work.
 */
export function reusable<R>(db: Db, q: Compilable<R>, n: number): (params: readonly unknown[]) => Promise<R[]> {
  const compiled = q.compile();
  if (compiled.parameters.length !== n) throw new Error(`reusable query binds ${compiled.parameters.length} parameters, not ${n}: ${compiled.sql}`);
  return async (params) => {
    if (params.length !== n) throw new Error(`reusable query takes ${n} parameters, got ${params.length}`);
    return (await db.executeQuery<R>({ ...compiled, parameters: params })).rows;
  };
}

export const nowIso = (): string => new Date().toISOString();

export const toJson = (v: unknown): string => JSON.stringify(v ?? null);

export function fromJson<T>(s: string | null | undefined, fallback: T): T {
  if (s == null) return fallback;
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

/** Escapes LIKE wildcards; use with `escape '\\'`. */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (m) => `\\${m}`);
}
