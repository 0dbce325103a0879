import { randomBytes } from 'node:crypto';
import { mintToken } from '@hive/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPrereqsMissing, dropSchema, PG_URL, REDIS_URL } from './cluster-probe.js';
import { approvalRacedAcross } from './cluster-steps.js';
import { simNode } from './fleet.js';
import { operator, startHub, type TestHub, tempDir } from './helpers.js';

const missing = await clusterPrereqsMissing();
if (missing) console.warn(`[cluster e2e, three instances] skipped: ${missing}`);

/** "Two or more instances": the same guarantees with a third one in play (each instance holds one satellite). */
describe.skipIf(missing !== null)('three hub instances on one PostgreSQL + Redis', () => {
  const schema = `hive_cluster3_${randomBytes(5).toString('hex')}`;
  const prefix = `hive-test-${randomBytes(4).toString('hex')}`;
  const adminKey = mintToken('hive').token;
  const hubs: TestHub[] = [];
  const nodes: Awaited<ReturnType<typeof simNode>>[] = [];
  const overrides = {
    database: { driver: 'postgres' as const, connection: PG_URL, schema },
    cluster: { redis_url: REDIS_URL, key_prefix: prefix, presence_ttl: 3000 },
  };

  beforeAll(async () => {
    for (const id of ['inst-a', 'inst-b', 'inst-c']) {
      hubs.push(await startHub({ dataDir: tempDir(), adminKey, overrides: { ...overrides, cluster: { ...overrides.cluster, instance_id: id } } }));
    }
  });
  afterAll(async () => {
    for (const n of nodes) await n.client.close();
    for (const h of hubs) await h.close();
    await dropSchema(schema);
  });

  it('satellites on A, B and C: an operator on C hears all of them come online; a fan-out from each instance reaches all three', async () => {
    const [a, b, c] = hubs as [TestHub, TestHub, TestHub];
    const opC = await operator(c);
    for (const [hub, name] of [
      [a, 'trio-a'],
      [b, 'trio-b'],
      [c, 'trio-c'],
    ] as const) {
      nodes.push(await simNode(hub.wsUrl, name, { tags: ['trio'] }));
    }
    for (const name of ['trio-a', 'trio-b', 'trio-c']) await opC.waitEvent('satellite:online', (p) => p.slug === name);
    for (const hub of hubs) {
      const r = await hub.api('POST', '/api/v1/exec', { target: { tag: 'trio' }, command: 'system.info' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data.summary).toMatchObject({ total: 3, succeeded: 3 });
      // Every job is stored once and readable through any instance.
      for (const t of r.body.data.results) {
        const job = await hubs[(hubs.indexOf(hub) + 1) % 3]?.api('GET', `/api/v1/commands/${t.job_id}`);
        expect(job?.body.data.state).toBe('succeeded');
      }
    }
    // Job events of a fan-out started on A reach the operator on C.
    const batch = await a.api('POST', '/api/v1/exec', { target: { tag: 'trio' }, command: 'system.info', async: true });
    expect(batch.status, JSON.stringify(batch.body)).toBe(200);
    const ids = new Set(batch.body.data.results.map((t: { job_id: string }) => t.job_id));
    const finals = new Set<string>();
    await opC.waitEvent('job:updated', (p) => {
      if (ids.has(p.id) && p.state === 'succeeded') finals.add(p.id);
      return finals.size === 3;
    });
    await opC.close();
  });

  it('an exec on A to the satellite on B that needs approval is approved on C (raced on B); the waiter on A gets the result', async () => {
    const [a, b, c] = hubs as [TestHub, TestHub, TestHub];
    await approvalRacedAcross({ via: a, satellite: 'trio-b', file: 'three-way', watcher: c, deciders: [c, b] });
  });
});
