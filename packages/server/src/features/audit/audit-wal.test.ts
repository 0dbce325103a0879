import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../store/db.js';
import { rowFromWalLine } from './audit-chain.js';
import { auditServiceFactory } from './audit-service.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-audit-wal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const entry = (i: number) => ({ actor: { type: 'system', id: 'hub', name: 'hub' }, action: 'test.wal', details: { i }, result: 'success' as const });

describe('audit write-ahead log', () => {
  it('entries a process logged but never stored are recovered exactly once by the next one', async () => {
    const store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'a.db') });
    const walDir = path.join(dir, 'wal');
    const logger = pino({ level: 'silent' });
    // The "dying" process: logs 3,000 entries (a fan-out's worth: more than one insert statement
    // may bind); its batch timer never got to run before the crash.
    const dying = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    for (let i = 0; i < 3000; i++) dying.log(entry(i));
    const next = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    expect(await next.recover()).toBe(3000);
    // The first one flushing late (or a retry after a lost commit answer) adds nothing twice.
    await dying.flush();
    const { total } = await next.query({ action: 'test.wal', page: 1, per_page: 1 });
    expect(total).toBe(3000);
    // Stored segments are deleted; only the live (empty) ones remain.
    await dying.close();
    await next.close();
    expect(readdirSync(walDir)).toEqual([]);
    await store.close();
  });

  it('replayed entries keep their hashes: the chain of the dead process verifies, the new process writes its own', async () => {
    const store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'b.db') });
    const walDir = path.join(dir, 'wal-b');
    const logger = pino({ level: 'silent' });
    // 30 entries stored, then 50 more logged that only reached the write-ahead log before the kill.
    const dying = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    for (let i = 0; i < 30; i++) dying.log(entry(i));
    await dying.flush();
    for (let i = 30; i < 80; i++) dying.log(entry(i));
    const next = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    next.log(entry(1000));
    expect(await next.recover()).toBe(50);
    const report = await next.verify();
    expect(report.ok).toBe(true);
    expect(report.chains.map((c) => [c.chain, c.entries, c.start, c.last?.seq]).sort()).toEqual(
      [
        [dying.chain, 80, 'genesis', 79],
        [next.chain, 1, 'genesis', 0],
      ].sort(),
    );
    // The dying process's late flush (ids already stored) changes nothing.
    await dying.close();
    expect((await next.verify()).ok).toBe(true);
    await next.close();
    await store.close();
  });

  it('batched entries reach the write-ahead log at the end of the turn or on settleWal(), always in chain order', async () => {
    const store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'c.db') });
    const walDir = path.join(dir, 'wal-c');
    const logger = pino({ level: 'silent' });
    const a = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    const lines = () => readdirSync(walDir).flatMap((f) => readFileSync(path.join(walDir, f), 'utf8').split('\n').filter(Boolean));
    for (let i = 0; i < 5; i++) a.log(entry(i), { batched: true });
    expect(lines()).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(lines()).toHaveLength(5);
    // An entry that is not batched writes the held ones first.
    a.log(entry(5), { batched: true });
    a.log(entry(6));
    expect(lines()).toHaveLength(7);
    a.log(entry(7), { batched: true });
    a.settleWal();
    expect(lines().map((l) => rowFromWalLine(l)?.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // A long turn (a fan-out's thousands of results) does not hold them all: once 64 K characters
    // wait, they are written, in the same turn.
    const big = { actor: { type: 'system', id: 'hub', name: 'hub' }, action: 'test.wal', details: { pad: 'x'.repeat(1000) }, result: 'success' as const };
    for (let i = 0; i < 90; i++) a.log(big, { batched: true });
    const inTurn = lines().length;
    expect(inTurn).toBeGreaterThan(8);
    expect(inTurn).toBeLessThan(8 + 90);
    a.settleWal();
    expect(lines().map((l) => rowFromWalLine(l)?.seq)).toEqual(Array.from({ length: 98 }, (_, i) => i));
    // A process that died now: all of them come back and the chain verifies.
    const next = auditServiceFactory({ db: store.db, write: store.write, logger, walDir });
    expect(await next.recover()).toBe(98);
    expect((await next.verify()).ok).toBe(true);
    await a.close();
    await next.close();
    await store.close();
  });
});

describe('audit write-ahead log lines', () => {
  it('a line of this version and a JSON row of an older one both come back as the row that was logged', async () => {
    const { chainWriter, rowFromWalLine } = await import('./audit-chain.js');
    const row = {
      id: 'aud_1',
      ts: '2026-11-27T10:00:00.000Z',
      actor_type: 'user',
      actor_id: 'u1',
      actor_name: 'Ann "the admin"',
      action: 'command.exec',
      target_type: 'satellite',
      target_id: 'sat_1',
      details: JSON.stringify({ command: 'system.run', params: { argv: ['echo', 'a\nb'] } }),
      result: 'success' as const,
      error: null,
      source_ip: '127.0.0.1',
      correlation_id: 'c-1',
    };
    const sealed = { ...row };
    const line = chainWriter('chain_t').seal(sealed);
    // One line: the newline ends it, the entry's own newlines are escaped.
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(rowFromWalLine(line)).toEqual(sealed);
    expect(rowFromWalLine(JSON.stringify(sealed))).toEqual(sealed);
    expect(rowFromWalLine('["v2",1]')).toBeNull();
    expect(() => rowFromWalLine('["v1","cut')).toThrow();
  });
});
