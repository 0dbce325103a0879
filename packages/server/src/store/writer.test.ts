import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from './db.js';
import { auditRow } from './test-drivers.js';
import type { SqliteBusyOptions } from './writer.js';

describe('batch writes on SQLite: a worker thread with its own connection', () => {
  let dir = '';
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const open = async (busy?: SqliteBusyOptions) => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hive-writer-'));
    store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'hive.db'), ...(busy ? { busy } : {}) });
    return store;
  };
  /** Another connection to the file holding its write lock (as a backup or a sqlite3 shell might). */
  const lockFile = () => {
    const other = new Database(path.join(dir, 'hive.db'));
    other.exec('BEGIN IMMEDIATE');
    return {
      release() {
        other.exec('COMMIT');
        other.close();
      },
    };
  };
  const rows = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ table: 'audit_logs' as const, kind: 'insert' as const, row: auditRow(`${prefix}${String(i).padStart(3, '0')}`) }));
  const idsInFile = () => {
    const db = new Database(path.join(dir, 'hive.db'), { readonly: true });
    try {
      return (db.prepare('select id from audit_logs order by id').all() as { id: string }[]).map((r) => r.id);
    } finally {
      db.close();
    }
  };

  it('writes through a thread other than the event loop; an answered batch is in the file', async () => {
    const s = await open();
    expect(s.write.worker?.threadId).toBeGreaterThan(0);
    await s.write(
      Array.from({ length: 50 }, (_, i) => ({ table: 'audit_logs' as const, kind: 'insert' as const, row: auditRow(`aud_w${String(i).padStart(3, '0')}`) })),
    );
    expect(idsInFile()).toHaveLength(50);
    // The hub's own connection reads what the worker committed.
    expect((await s.db.selectFrom('audit_logs').select('id').execute()).length).toBe(50);
  });

  it('a bad batch fails as a whole with the database error and leaves nothing behind', async () => {
    const s = await open();
    await s.write([{ table: 'audit_logs', kind: 'insert', row: auditRow('aud_dup') }]);
    const err = await s
      .write([
        { table: 'audit_logs', kind: 'insert', row: auditRow('aud_new') },
        { table: 'audit_logs', kind: 'insert', row: auditRow('aud_dup') },
      ])
      .catch((e: Error & { code?: string }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toMatch(/^SQLITE_CONSTRAINT/);
    expect(idsInFile()).toEqual(['aud_dup']);
  });

  it('the WAL stays bounded under a steady stream of batches (the worker checkpoints after its commits)', async () => {
    const s = await open();
    const wal = path.join(dir, 'hive.db-wal');
    let largest = 0;
    // 400 batches of 100 entries, ~1 KB each: ~40 MB through the WAL.
    for (let b = 0; b < 400; b++) {
      await s.write(
        Array.from({ length: 100 }, (_, i) => ({
          table: 'audit_logs' as const,
          kind: 'insert' as const,
          row: auditRow(`aud_${String(b).padStart(4, '0')}_${String(i).padStart(3, '0')}`, { details: JSON.stringify({ pad: 'x'.repeat(900) }) }),
        })),
      );
      largest = Math.max(largest, statSync(wal).size);
    }
    expect(idsInFile()).toHaveLength(40_000);
    // SQLite's own checkpoint every 1,000 pages (4 MB) on the worker's connection; without any, ~50 MB.
    expect(largest).toBeLessThan(16 * 1024 * 1024);
  });

  it('a batch that meets the write lock of another connection waits, is tried again, and gets through once the lock is gone', async () => {
    let retried: () => void = () => {};
    const secondRetry = new Promise<void>((r) => {
      retried = r;
    });
    const attempts: number[] = [];
    const s = await open({
      timeoutMs: 50,
      onBusy: (n) => {
        attempts.push(n);
        if (n === 3) retried();
      },
    });
    const lock = lockFile();
    const first = s.write(rows('aud_a', 20));
    const second = s.write(rows('aud_b', 5)); // waits behind the first, in order
    await secondRetry;
    expect(idsInFile()).toHaveLength(0);
    lock.release();
    await Promise.all([first, second]);
    expect(attempts.slice(0, 2)).toEqual([2, 3]);
    expect(idsInFile()).toHaveLength(25);
  });

  it('a lock held past giveUpMs fails the batch with SQLITE_BUSY and writes nothing; later batches go through', async () => {
    const s = await open({ timeoutMs: 20, giveUpMs: 200 });
    const lock = lockFile();
    const err = await s.write(rows('aud_x', 3)).catch((e: Error & { code?: string }) => e);
    expect((err as { code?: string }).code).toBe('SQLITE_BUSY');
    lock.release();
    await s.write(rows('aud_y', 2));
    expect(idsInFile()).toEqual(['aud_y000', 'aud_y001']);
  });

  it('when the worker dies, later writes go through the hub connection; nothing is lost', async () => {
    const s = await open();
    await s.write([{ table: 'audit_logs', kind: 'insert', row: auditRow('aud_before') }]);
    const worker = s.write.worker;
    expect(worker).toBeDefined();
    const exited = new Promise((r) => worker?.once('exit', r));
    await worker?.terminate();
    await exited;
    await s.write([{ table: 'audit_logs', kind: 'insert', row: auditRow('aud_after') }]);
    expect(idsInFile()).toEqual(['aud_after', 'aud_before']);
  });
});
