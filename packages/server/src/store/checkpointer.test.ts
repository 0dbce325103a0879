import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from './checkpointer.js';
import type { Db } from './db.js';
import { batchWriter, type WriteOp } from './writer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-checkpointer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Commits `n` transactions of ~64 KB, a timer's turn of the event loop after each, noting the largest WAL seen. */
async function writeSteadily(file: string, walLimitBytes: number, n: number): Promise<number> {
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table if not exists t (id integer primary key, v blob)');
  const cp = startCheckpointer(db, file, 5, { walLimitBytes });
  const insert = db.prepare('insert into t (v) values (?)');
  const tx = db.transaction(() => {
    for (let i = 0; i < 16; i++) insert.run(Buffer.alloc(4096, i));
  });
  let largest = 0;
  for (let i = 0; i < n; i++) {
    tx();
    largest = Math.max(largest, statSync(`${file}-wal`).size);
    await new Promise((r) => setTimeout(r, 1));
  }
  await cp.close();
  db.close();
  return largest;
}

describe('checkpointer', () => {
  it('keeps the WAL near its limit under a steady stream of commits (it used to grow without end)', async () => {
    const limit = 1024 * 1024;
    const largest = await writeSteadily(path.join(dir, 'bounded.db'), limit, 1500);
    // 1,500 × ~70 KB went through it: without the bound the WAL reached ~100 MB here. With it,
    // what is committed while the worker is slow to come back adds to the limit: 1.7 MB on a
    // quiet machine, 8.4 MB seen on a loaded one; 24 MB leaves room for a worker starved ~1 s.
    expect(largest).toBeLessThan(24 * limit);
  });

  it('past the limit, the write worker checkpoints, never the hub connection (its fsyncs stalled the event loop); the WAL stays bounded', async () => {
    const file = path.join(dir, 'worker.db');
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.exec('create table t (id text primary key, v blob)');
    // Every checkpoint the hub's own connection runs goes through its pragma().
    let hubCheckpoints = 0;
    const pragma = sqlite.pragma.bind(sqlite);
    sqlite.pragma = ((source: string, options?: SQLite.PragmaOptions) => {
      if (source.startsWith('wal_checkpoint')) hubCheckpoints++;
      return pragma(source, options);
    }) as typeof sqlite.pragma;
    const limit = 1024 * 1024;
    let asked = 0;
    const write = batchWriter(new Kysely({ dialect: new SqliteDialect({ database: sqlite }) }) as unknown as Db, sqlite, file, {}, limit);
    const cp = startCheckpointer(sqlite, file, 5, {
      walLimitBytes: limit,
      overLimit: () => {
        asked++;
        return write.checkpoint?.() ?? false;
      },
    });
    let largest = 0;
    for (let i = 0; i < 600; i++) {
      const ops = Array.from({ length: 16 }, (_, k) => ({ table: 't', kind: 'insert', row: { id: `${i}-${k}`, v: Buffer.alloc(4096, k) } }));
      await write(ops as unknown as WriteOp[]);
      largest = Math.max(largest, statSync(`${file}-wal`).size);
    }
    await cp.close();
    await write.close();
    sqlite.close();
    expect(asked).toBeGreaterThan(0);
    expect(hubCheckpoints).toBe(0);
    // The worker looks at the WAL after each of its transactions and checkpoints right there, so
    // the WAL stays within the limit plus about one batch (~1.1 MB here, also with two CPU hogs and
    // a disk busy with fsyncs, where waiting for the checkpointer thread's pass to notice let it
    // reach 27 MB in a CI run).
    expect(largest).toBeLessThan(8 * limit);
  });
});
