import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/db.js';
import { testDrivers } from '../../store/test-drivers.js';
import { BoundedText, plainText } from './sessions-recorder.js';
import { type SessionRow, sessionsStoreFactory } from './sessions-store.js';

const drivers = await testDrivers('sessions store');

function row(id: string, over: Partial<SessionRow> = {}): SessionRow {
  return {
    id,
    satellite_id: 'sat_a',
    satellite_slug: 'a',
    project: 'default',
    kind: 'interactive',
    status: 'active',
    cols: 80,
    rows: 24,
    command: null,
    actor: { type: 'api_key', id: 'k1', name: 'admin', ip: '127.0.0.1' },
    approval_id: null,
    created_at: new Date().toISOString(),
    started_at: new Date().toISOString(),
    ended_at: null,
    end_reason: null,
    exit_code: null,
    pid: 42,
    recording: `/rec/${id}.cast`,
    recording_deleted_at: null,
    bytes_out: 0,
    bytes_in: 0,
    request: {},
    hub_id: 'hub_1',
    output: null,
    output_truncated: false,
    ...over,
  };
}

for (const d of drivers) {
  describe.skipIf(d.skip)(`sessions table (0007_sessions) on ${d.name}`, () => {
    const opened: { store: Store; cleanup: () => Promise<void> }[] = [];
    afterAll(async () => {
      for (const o of opened) {
        await o.store.close();
        await o.cleanup();
      }
    });

    it('round-trips rows (bigint byte counters, JSON request, actor), transitions once, lists by state/project with pagination', async () => {
      const o = await d.open();
      opened.push(o);
      const s = sessionsStoreFactory(o.store.db);
      const big = 5 * 2 ** 31 + 7; // more than a 32-bit integer holds
      await s.insert(row('sess_1', { created_at: '2026-01-01T00:00:00.000Z', command: 'top', request: { argv: ['top'], timeout_ms: 5 } }));
      await s.insert(row('sess_2', { created_at: '2026-01-02T00:00:00.000Z', project: 'blue', kind: 'run', status: 'pending_approval', approval_id: 'apr_1' }));
      await s.insert(row('sess_3', { created_at: '2026-01-03T00:00:00.000Z', satellite_id: 'sat_b', status: 'ended', ended_at: '2026-01-03T00:01:00.000Z' }));
      const one = await s.get('sess_1');
      expect(one).toMatchObject({ command: 'top', request: { argv: ['top'], timeout_ms: 5 }, actor: { ip: '127.0.0.1' }, pid: 42, output_truncated: false });
      await s.update('sess_1', { bytes_out: big, bytes_in: 3, exit_code: 0 });
      expect(await s.get('sess_1')).toMatchObject({ bytes_out: big, bytes_in: 3, exit_code: 0 });

      // First transition wins; a second from the same state does nothing.
      const [a, b] = await Promise.all([
        s.transition('sess_2', ['pending_approval'], { status: 'opening' }),
        s.transition('sess_2', ['pending_approval'], { status: 'ended', end_reason: 'approval_denied' }),
      ]);
      expect([a, b].filter(Boolean)).toHaveLength(1);

      expect((await s.list({ page: 1, per_page: 10 })).items.map((r) => r.id)).toEqual(['sess_3', 'sess_2', 'sess_1']);
      expect((await s.list({ state: 'ended', page: 1, per_page: 10 })).items.map((r) => r.id)).toEqual(
        (await s.get('sess_2'))?.status === 'ended' ? ['sess_3', 'sess_2'] : ['sess_3'],
      );
      expect((await s.list({ satellite_id: 'sat_a', state: 'live', page: 1, per_page: 10 })).total).toBeGreaterThanOrEqual(1);
      expect((await s.list({ projects: ['blue'], page: 1, per_page: 10 })).items.map((r) => r.id)).toEqual(['sess_2']);
      expect((await s.list({ projects: [], page: 1, per_page: 10 })).total).toBe(0);
      const p2 = await s.list({ page: 2, per_page: 2 });
      expect(p2).toMatchObject({ total: 3 });
      expect(p2.items.map((r) => r.id)).toEqual(['sess_1']);

      // Restart bookkeeping and retention queries.
      expect((await s.liveLeftovers()).map((r) => r.id)).toContain('sess_1');
      expect(await s.recordingsEndedBefore('2026-02-01T00:00:00.000Z')).toEqual([{ id: 'sess_3', recording: '/rec/sess_3.cast' }]);
      expect(await s.trackedRecording('/rec/sess_3.cast')).toBe(true);
      await s.markRecordingDeleted(['sess_3']);
      expect(await s.recordingsEndedBefore('2026-02-01T00:00:00.000Z')).toEqual([]);
      expect(await s.trackedRecording('/rec/sess_3.cast')).toBe(false);
      expect((await s.get('sess_3'))?.recording_deleted_at).toBeTruthy();
    });
  });
}

describe('terminal output as plain text', () => {
  it('strips escape sequences, keeps the last state of overwritten lines, applies backspace', () => {
    const raw = '\x1b[1;32mgreen\x1b[0m\r\n\x1b]0;title\x07prompt$ ls\r\n10%\r50%\r100%\r\nab\bc\r\n\x1b[?2004h\x1b(Bdone';
    expect(plainText(raw)).toBe('green\nprompt$ ls\n100%\nac\ndone');
  });

  it('BoundedText keeps the head or the tail within the byte budget (UTF-8 safe)', () => {
    const head = new BoundedText(5, 'head');
    head.push('abc');
    head.push('déf');
    expect(head.text()).toBe('abcd');
    expect(head.truncated).toBe(true);
    const tail = new BoundedText(4, 'tail');
    for (const s of ['one ', 'two ', 'three']) tail.push(s);
    expect(tail.text()).toBe('hree');
    expect(tail.truncated).toBe(true);
  });
});
