import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

const PG_URL = process.env.HIVE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
const missing = await probe.connect().then(
  () => null,
  (e: Error) => e.message,
);
await probe.end().catch(() => {});
if (missing) console.warn(`[postgres e2e] PostgreSQL at ${PG_URL} unavailable, skipped: ${missing}`);

describe.skipIf(missing !== null)('hub on PostgreSQL (database.driver: postgres)', () => {
  const schema = `hive_e2e_${randomBytes(5).toString('hex')}`;
  const dir = tempDir();
  let t: TestHub | undefined;
  let agent: AgentProc | undefined;
  afterAll(async () => {
    await agent?.kill();
    await t?.close();
    cleanup(dir);
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('pairs an agent, runs a command and audits it with state in PostgreSQL; survives a restart', async () => {
    const database = { driver: 'postgres' as const, connection: PG_URL, schema };
    t = await startHub({ dataDir: dir, overrides: { database } });
    const op = await operator(t);
    agent = spawnAgent(t.wsUrl, path.join(dir, 'agent'), ['--name', 'pg-sat']);
    const sat = await op.waitEvent('satellite:online');
    const res = await t.api('POST', '/api/v1/satellites/pg-sat/exec', { command: 'system.run', params: { argv: ['echo', 'on-postgres'] } });
    expect(res.status).toBe(200);
    expect(res.body.data.result.stdout).toBe('on-postgres\n');
    await op.close();
    const port = t.port;
    const key = t.adminKey;
    await t.close();
    t = await startHub({ dataDir: dir, port, adminKey: key, overrides: { database } });
    const op2 = await operator(t);
    expect((await op2.waitEvent('satellite:online')).id).toBe(sat.id);
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    const rows = await c.query(`SELECT count(*)::int AS n FROM ${schema}.satellites`);
    const jobs = await c.query(`SELECT state FROM ${schema}.jobs`);
    await c.end();
    expect(rows.rows[0].n).toBe(1);
    expect(jobs.rows.map((r) => r.state)).toEqual(['succeeded']);
    const audit = await t.api('GET', '/api/v1/audit/logs?action=command.exec');
    expect(audit.body.data).toHaveLength(1);
    await op2.close();
  });
});
