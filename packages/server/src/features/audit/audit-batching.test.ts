import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../store/db.js';
import type { BatchWrite } from '../../store/writer.js';
import { auditServiceFactory } from './audit-service.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-audit-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('audit batching under steady load', () => {
  it('writes at most one transaction per write delay (20 ms) while entries keep coming, and flush still stores all', async () => {
    const store = await openStore({ driver: 'sqlite', connection: path.join(dir, 'a.db') });
    const sizes: number[] = [];
    // A database that takes 5 ms per transaction: entries keep arriving while it writes.
    const slow: BatchWrite = async (ops) => {
      sizes.push(ops.length);
      await new Promise((r) => setTimeout(r, 5));
      await store.write(ops);
    };
    const audit = auditServiceFactory({ db: store.db, write: slow, logger: pino({ level: 'silent' }) });
    const t0 = performance.now();
    let logged = 0;
    // An entry every millisecond or so for 400 ms.
    await new Promise<void>((resolve) => {
      const tick = () => {
        audit.log({ actor: { type: 'system', id: 'hub', name: 'hub' }, action: 'test.batch', details: { i: logged++ }, result: 'success' });
        if (performance.now() - t0 < 400) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    const elapsed = performance.now() - t0;
    await audit.flush();
    const { total } = await audit.query({ action: 'test.batch', page: 1, per_page: 1 });
    expect(total).toBe(logged);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(logged);
    // Writing again as soon as the last transaction was done made one every ~5 ms here; batched,
    // one per 20 ms at most (+1 for the final flush, +1 for a timer running late).
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 2);
    await audit.close();
    await store.close();
  });
});
