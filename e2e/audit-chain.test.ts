import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, runCli, startHub, type TestHub } from './helpers.js';

/** `hive audit verify` and GET /api/v1/audit/verify against a real hub and its SQLite file. */
describe('audit hash chain: REST and CLI verify, tampering in the database file, restart', () => {
  let t: TestHub;
  let db: Database.Database;
  const env = () => ({ HIVE_URL: t.url, HIVE_API_KEY: t.adminKey });
  /** The hub's entries in chain order. */
  const chainRows = (chain: string) =>
    db.prepare('select id, seq, details, hash from audit_logs where chain = ? order by seq').all(chain) as {
      id: string;
      seq: number;
      details: string;
      hash: string;
    }[];

  beforeAll(async () => {
    t = await startHub();
    // Some entries: users created, denied requests.
    for (let i = 0; i < 3; i++)
      expect((await t.api('POST', '/api/v1/users', { username: `chain-${i}`, password: `password number ${i}`, role: 'viewer' })).status).toBe(201);
    for (let i = 0; i < 3; i++)
      expect((await t.api('GET', '/api/v1/satellites', undefined, 'hive_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(401);
    db = new Database(path.join(t.dataDir, 'hive.db'));
    db.pragma('busy_timeout = 5000');
  });
  afterAll(async () => {
    db?.close();
    await t.close();
    cleanup(t.dataDir);
  });

  it('REST: every chain intact, with its entries, start and head; admin only', async () => {
    const res = await t.api('GET', '/api/v1/audit/verify');
    expect(res.status).toBe(200);
    const r = res.body.data;
    expect(r.ok).toBe(true);
    expect(r.chains).toHaveLength(1);
    const [c] = r.chains;
    expect(c).toMatchObject({ start: 'genesis', first: { seq: 0 }, problems: [] });
    expect(c.entries).toBeGreaterThanOrEqual(7); // hub.started, 3 users, 3 denials
    const rows = chainRows(c.chain);
    expect(c.head_hash).toBe(rows.at(-1)?.hash);
    expect(r.entries).toBe(rows.length);
    // Each entry of the log API says where it sits in its chain; the newest one is the head.
    const [newest] = (await t.api('GET', '/api/v1/audit/logs?per_page=1')).body.data;
    const last = rows.at(-1);
    expect(newest.seal).toEqual({ chain: c.chain, seq: Number(last?.seq), hash: last?.hash, prev_hash: rows.at(-2)?.hash });
    expect((await t.api('GET', `/api/v1/audit/logs/${newest.id}`)).body.data.seal.hash).toBe(last?.hash);
    // operator.read is not enough.
    const ro = (await t.api('POST', '/api/v1/apikeys', { name: 'ro', scopes: ['operator.read'] })).body.data.key;
    const denied = await t.api('GET', '/api/v1/audit/verify', undefined, ro);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('FORBIDDEN');
    const bad = await t.api('GET', '/api/v1/audit/verify?anchors=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_PARAMETERS');
  });

  it('CLI: exit 0 and the heads when intact; exit 1 naming the entry after an UPDATE in the database file', async () => {
    const okRun = await runCli(['audit', 'verify'], env());
    expect(okRun.stderr).toBe('');
    expect(okRun.code).toBe(0);
    expect(okRun.stdout).toContain('OK: every chain is intact.');
    const head = okRun.stdout.split('\n').find((l) => /^chain_[A-Za-z0-9_-]+:\d+:[0-9a-f]{64}$/.test(l));
    expect(head).toBeDefined();
    const json = await runCli(['audit', 'verify', '--json'], env());
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(true);
    // `hive audit` itself still lists entries.
    const list = await runCli(['audit', '--action', 'user.*', '--json'], env());
    expect(list.code).toBe(0);

    const chain = report.chains[0].chain as string;
    const victim = chainRows(chain)[2];
    if (!victim) throw new Error('no entry to tamper with');
    db.prepare('update audit_logs set details = ? where id = ?').run('{"tampered":true}', victim.id);
    const res = await t.api('GET', '/api/v1/audit/verify');
    expect(res.body.data.ok).toBe(false);
    expect(res.body.data.chains[0].problems).toEqual([expect.objectContaining({ kind: 'modified', seq: 2, id: victim.id })]);
    const bad = await runCli(['audit', 'verify'], env());
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('TAMPERING DETECTED: 1 problem in 1 chain.');
    expect(bad.stdout).toContain(`modified: entry #2 (${victim.id}) was changed`);
    // Put back: intact again.
    db.prepare('update audit_logs set details = ? where id = ?').run(victim.details, victim.id);
    expect((await runCli(['audit', 'verify'], env())).code).toBe(0);

    // A deleted entry in the middle.
    const middle = chainRows(chain)[4];
    if (!middle) throw new Error('no middle entry');
    db.prepare('delete from audit_logs where id = ?').run(middle.id);
    const gap = await runCli(['audit', 'verify', '--json'], env());
    expect(gap.code).toBe(1);
    expect(JSON.parse(gap.stdout).chains[0].problems).toEqual([expect.objectContaining({ kind: 'missing', seq: 5 })]);
  });

  it('a cut-off end is invisible alone and caught with the noted head (--anchors-file); a restart starts a new chain', async () => {
    // Start from a fresh hub on a fresh database for a clean chain.
    db.close();
    await t.close();
    cleanup(t.dataDir);
    t = await startHub();
    db = new Database(path.join(t.dataDir, 'hive.db'));
    db.pragma('busy_timeout = 5000');
    for (let i = 0; i < 3; i++) await t.api('POST', '/api/v1/users', { username: `tail-${i}`, password: `password number ${i}`, role: 'viewer' });
    const first = await runCli(['audit', 'verify'], env());
    expect(first.code).toBe(0);
    const heads = first.stdout.split('\n').filter((l) => /^chain_\S+:\d+:[0-9a-f]{64}$/.test(l));
    expect(heads).toHaveLength(1);
    const file = path.join(t.dataDir, 'anchors.txt');
    writeFileSync(file, `# noted ${new Date().toISOString()}\n${heads.join('\n')}\n`);
    const chain = (heads[0] as string).split(':')[0] as string;
    const last = chainRows(chain).at(-1);
    if (!last) throw new Error('no entries');
    const saved = db.prepare('select * from audit_logs where id = ?').get(last.id) as Record<string, unknown>;
    db.prepare('delete from audit_logs where id = ?').run(last.id);
    expect((await runCli(['audit', 'verify'], env())).code).toBe(0);
    const cut = await runCli(['audit', 'verify', '--anchors-file', file], env());
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain('truncated: the chain ends at #');

    // Put back, then restart on the same database: the stopped process's chain ends with
    // hub.stopped, the new process writes a chain of its own, both verify (the anchor too).
    const cols = Object.keys(saved);
    db.prepare(`insert into audit_logs (${cols.join(', ')}) values (${cols.map((c) => `@${c}`).join(', ')})`).run(saved);
    expect((await runCli(['audit', 'verify', '--anchors-file', file], env())).code).toBe(0);
    const dataDir = t.dataDir;
    db.close();
    await t.close();
    t = await startHub({ dataDir, adminKey: t.adminKey });
    db = new Database(path.join(t.dataDir, 'hive.db'));
    const after = await t.api('GET', `/api/v1/audit/verify?anchors=${heads[0]}`);
    expect(after.body.data.ok).toBe(true);
    const chains = after.body.data.chains;
    expect(chains).toHaveLength(2);
    expect(chains.find((c: any) => c.chain === chain).last.action).toBe('hub.stopped');
    expect(chains.find((c: any) => c.chain !== chain)).toMatchObject({ start: 'genesis', first: { seq: 0 }, problems: [] });
    expect((await runCli(['audit', 'verify', '--anchors-file', file], env())).code).toBe(0);
  });
});
