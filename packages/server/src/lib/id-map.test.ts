import { describe, expect, it } from 'vitest';
import { IdMap, InFlightCount } from './id-map.js';

describe('IdMap', () => {
  it('keeps size, get, has and delete straight through churn', () => {
    const m = new IdMap<number>();
    for (let i = 0; i < 1000; i++) {
      m.set(`job_${i}`, i);
      if (i >= 3) expect(m.delete(`job_${i - 3}`)).toBe(true);
    }
    expect(m.size).toBe(3);
    expect(m.get('job_998')).toBe(998);
    expect(m.has('job_996')).toBe(false);
    expect(m.delete('job_996')).toBe(false);
    expect(m.keys().sort()).toEqual(['job_997', 'job_998', 'job_999']);
    m.set('job_999', -1);
    expect(m.size).toBe(3);
    expect(m.values().sort()).toEqual([-1, 997, 998]);
  });

  it('takes keys an object would not (__proto__, constructor) as plain keys', () => {
    const m = new IdMap<string>();
    m.set('__proto__', 'a').set('constructor', 'b');
    expect(m.get('__proto__')).toBe('a');
    expect(m.get('constructor')).toBe('b');
    expect(m.has('toString')).toBe(false);
    expect(m.entries().sort()).toEqual([
      ['__proto__', 'a'],
      ['constructor', 'b'],
    ]);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.get('__proto__')).toBeUndefined();
  });
});

describe('InFlightCount', () => {
  it('is idle at once when nothing runs, and once the last promise settles (rejected ones too)', async () => {
    const f = new InFlightCount();
    await f.idle();
    let ok!: () => void;
    let fail!: (e: Error) => void;
    f.add(new Promise<void>((r) => (ok = r)));
    f.add(new Promise<void>((_, r) => (fail = r)));
    expect(f.size).toBe(2);
    let idle = false;
    const waiting = f.idle().then(() => (idle = true));
    ok();
    await Promise.resolve();
    await Promise.resolve();
    expect(idle).toBe(false);
    fail(new Error('boom'));
    await waiting;
    expect(f.size).toBe(0);
  });
});
