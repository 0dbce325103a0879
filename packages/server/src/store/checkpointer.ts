import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

/**
 * SQLite in WAL mode copies the log back into the database file (a checkpoint, with an fsync)
 * inside whichever commit crosses 1,000 pages — a stall of the hub's event loop in the middle of
 * a fan-out or a burst of commands. Here the hub's connection never checkpoints; a worker thread
 * with its own connection does, every `intervalMs` (PASSIVE: it never blocks readers or the
 * writer). Should the worker die, the connection checkpoints itself again as before.
 */
/**
 * Under a steady stream of commits the worker's PASSIVE checkpoints never catch up completely (each
 * ends behind the commits made while it ran), and SQLite starts the WAL over only after a complete
 * one: the WAL grew without end (1.4 GB after a few minutes of 1,000 commands a second, and a
 * restart after SIGKILL read all of it before listening). So once the WAL is past `walLimitBytes`,
 * the hub's own connection checkpoints too, between two of its transactions (nothing is
 * committed meanwhile, so it completes: only the frames since the worker's last pass, and an
 * fsync); the next commit starts the WAL over and `journal_size_limit` cuts the file back.
 */
const WAL_LIMIT_BYTES = 64 * 1024 * 1024;

export function startCheckpointer(
  sqlite: SQLite.Database,
  file: string,
  intervalMs = 250,
  opts: { walLimitBytes?: number; checkEveryMs?: number } = {},
): { close(): Promise<void> } {
  const walLimit = opts.walLimitBytes ?? WAL_LIMIT_BYTES;
  sqlite.pragma(`journal_size_limit = ${walLimit}`);
  const walFile = `${file}-wal`;
  const bound = setInterval(() => {
    let size = 0;
    try {
      size = statSync(walFile).size;
    } catch {
      return;
    }
    if (size > walLimit && sqlite.open) {
      try {
        sqlite.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        /* busy (the worker is checkpointing): next time */
      }
    }
  }, opts.checkEveryMs ?? 1000);
  bound.unref();
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const Database = require(workerData.module);
    const db = new Database(workerData.file, { fileMustExist: true });
    const tick = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
    const timer = setInterval(tick, workerData.intervalMs);
    parentPort.on('message', () => { clearInterval(timer); tick(); db.close(); parentPort.close(); });
  `;
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(code, { eval: true, workerData: { module, file, intervalMs } });
  worker.unref();
  sqlite.pragma('wal_autocheckpoint = 0');
  let alive = true;
  const exited = new Promise<void>((resolve) => {
    const back = () => {
      if (alive && sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
      alive = false;
      resolve();
    };
    worker.once('exit', back);
    worker.once('error', back);
  });
  return {
    async close() {
      clearInterval(bound);
      if (!alive) return;
      alive = false;
      worker.ref(); // keep the process up until the worker's last checkpoint is done
      worker.postMessage('close');
      await exited;
    },
  };
}
