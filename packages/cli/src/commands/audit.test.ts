import { describe, expect, it } from 'vitest';
import { buildCli } from '../main.js';
import { formatVerify, type VerifyReport } from './audit.js';

const chain = (over: Partial<VerifyReport['chains'][number]> = {}): VerifyReport['chains'][number] => ({
  chain: 'chain_0mwyykm2v000ts6b-7IB',
  entries: 12,
  start: 'genesis',
  first: { seq: 0, id: 'aud_a', ts: '2030-01-01T00:00:00.000Z' },
  last: { seq: 11, id: 'aud_b', ts: '2030-01-02T00:00:00.000Z', action: 'hub.stopped' },
  head_hash: 'ab'.repeat(32),
  problems: [],
  ...over,
});

describe('hive audit verify', () => {
  it('is a subcommand of audit', () => {
    const audit = buildCli().commands.find((c) => c.name() === 'audit');
    expect(audit?.commands.map((c) => c.name())).toContain('verify');
  });

  it('prints each chain, the heads to note, and the verdict', () => {
    const ok = formatVerify({ ok: true, entries: 12, unchained: 3, oldest: '2030-01-01T00:00:00.000Z', chains: [chain()] });
    expect(ok).toContain('1 chain, 12 entries checked, 3 older entries without a hash');
    expect(ok).toContain(`chain_0mwyykm2v000ts6b-7IB:11:${'ab'.repeat(32)}`);
    expect(ok.trim().split('\n').at(-1)).toBe('OK: every chain is intact.');
    const bad = formatVerify({
      ok: false,
      entries: 12,
      unchained: 0,
      oldest: null,
      chains: [
        chain({ problems: [{ kind: 'modified', seq: 4, id: 'aud_x', message: 'entry #4 (aud_x) was changed' }], problems_omitted: 2 }),
        chain({ chain: 'chain_b' }),
      ],
    });
    expect(bad).toContain('  modified: entry #4 (aud_x) was changed');
    expect(bad).toContain('… and 2 more');
    expect(bad.trim().split('\n').at(-1)).toBe('TAMPERING DETECTED: 3 problems in 1 chain.');
  });
});
