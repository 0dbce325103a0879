import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from './checkpointer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-checkpointer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Commits `n` transactions of ~64 KB back to back (a turn of the event loop every 2), noting the largest WAL seen. */
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
    if (i % 2 === 1) await new Promise((r) => setTimeout(r, 1));
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
});
