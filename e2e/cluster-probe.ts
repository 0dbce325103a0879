import net from 'node:net';
import pg from 'pg';

export const PG_URL = process.env.HIVE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.HIVE_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** Why scale-out tests cannot run here (PostgreSQL or Redis absent), or null. Printed, never silent. */
export async function clusterPrereqsMissing(): Promise<string | null> {
  const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  const pgErr = await probe.connect().then(
    () => null,
    (e: Error) => e.message,
  );
  await probe.end().catch(() => {});
  if (pgErr) return `PostgreSQL at ${PG_URL} unavailable: ${pgErr}`;
  const u = new URL(REDIS_URL);
  const redisErr = await new Promise<string | null>((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('connect', () => {
      s.write('PING\r\n');
    });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG') ? null : d.toString().trim());
    });
    s.once('error', (e) => resolve(e.message));
  });
  if (redisErr) return `Redis at ${REDIS_URL} unavailable: ${redisErr}`;
  return null;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}

export async function pgQuery<T = any>(sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Retries `fn` until it returns a truthy value (eventually consistent state), bounded in time. */
export async function eventually<T>(fn: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
