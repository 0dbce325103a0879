import { expect } from 'vitest';
import { operator, type TestHub } from './helpers.js';

/**
 * The approval race across instances: a synchronous exec through `via` to `satellite` that needs
 * approval (`system.run` touching `file`), watched by an operator on `watcher` and approved on both
 * `deciders` at once. Exactly one decision wins (the other is ALREADY_RESOLVED), and the waiter on
 * `via` gets the node's result.
 */
export async function approvalRacedAcross(o: { via: TestHub; satellite: string; file: string; watcher: TestHub; deciders: [TestHub, TestHub] }): Promise<void> {
  const op = await operator(o.watcher);
  try {
    const pending = o.via.api('POST', `/api/v1/satellites/${o.satellite}/exec`, { command: 'system.run', params: { argv: ['touch', o.file] } });
    const requested = await op.waitEvent('approval.requested', (p) => p.command === 'system.run');
    const decisions = await Promise.all(o.deciders.map((h) => h.api('POST', `/api/v1/approvals/${requested.id}/approve`, {})));
    expect(decisions.map((d) => d.status).sort()).toEqual([200, 409]);
    expect(decisions.find((d) => d.body.error)?.body.error.code).toBe('ALREADY_RESOLVED');
    const done = await pending;
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.data).toMatchObject({ state: 'succeeded', result: { stdout: `${o.file}\n` } });
  } finally {
    await op.close();
  }
}
