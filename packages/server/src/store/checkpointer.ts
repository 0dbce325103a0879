import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';
import { WAL_LIMIT_BYTES } from './writer.js';

/**
 * SQLite in WAL mode copies the log back into the database file (a checkpoint, with an fsync)
 * inside whichever commit crosses 1,000 pages — a stall of the hub's event loop in the middle of
 * a fan-out or a burst of commands. Here the hub's connection never checkpoints; a worker thread
 * with its own connection does, every `intervalMs` (PASSIVE: it never blocks readers or the
 * writer). Should the worker die, the connection checkpoints itself again as before.
 *
 * Under a steady stream of commits the worker's checkpoints never catch up completely (each ends
 * behind the commits made while it ran), and SQLite starts the WAL over only after a complete one:
 * the WAL grew without end (1.4 GB after a few minutes of 1,000 commands a second, read in full by
 * a restart after a crash). So when the WAL is past `walLimitBytes` after a pass of the worker,
 * the connection that writes the most (the write worker's, see writer.ts; else the hub's own)
 * checkpoints what was committed since (between two of its own transactions: it completes), the
 * next commit starts the WAL over, and `journal_size_limit` cuts the file back to the limit.
 * The write worker also looks at the WAL's size after each of its own transactions and does the
 * same at once (writer.ts): a pass of this worker can take a second on a busy disk, and what is
 * committed meanwhile would otherwise pile up past the limit.
 */

export function startCheckpointer(
  sqlite: SQLite.Database,
  file: string,
  intervalMs = 250,
  opts: {
    walLimitBytes?: number;
    /**
     * The WAL is past its limit: checkpoint elsewhere, on the connection that writes the most (the
     * write worker's, between two of its transactions); false when there is none, and the hub's
     * own connection does it here (two fsyncs on the event loop: ~15 ms seen).
     */
    overLimit?: () => boolean;
  } = {},
): { close(): Promise<void> } {
  const walLimit = opts.walLimitBytes ?? WAL_LIMIT_BYTES;
  sqlite.pragma(`journal_size_limit = ${walLimit}`);
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const Database = require(workerData.module);
    const db = new Database(workerData.file, { fileMustExist: true });
    const tick = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); parentPort.postMessage('pass'); } catch {} };
    const timer = setInterval(tick, workerData.intervalMs);
    parentPort.on('message', () => { clearInterval(timer); tick(); db.close(); parentPort.close(); });
  `;
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(code, { eval: true, workerData: { module, file, intervalMs } });
  worker.unref();
  sqlite.pragma('wal_autocheckpoint = 0');
  let alive = true;
  worker.on('message', () => {
    if (!alive || !sqlite.open) return;
    try {
      if (statSync(`${file}-wal`).size > walLimit && !opts.overLimit?.()) sqlite.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      /* no WAL file, or busy: after the next pass */
    }
  });
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
      if (!alive) return;
      alive = false;
      worker.ref(); // keep the process up until the worker's last checkpoint is done
      worker.postMessage('close');
      await exited;
    },
  };
}
