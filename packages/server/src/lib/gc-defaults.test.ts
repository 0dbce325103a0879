import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../../dist/lib/gc-defaults.js');

/** What applyHubGcDefaults sets in a fresh node started with `flags`. */
const run = (flags: string[]) =>
  JSON.parse(
    execFileSync(
      process.execPath,
      [...flags, '--input-type=module', '-e', `import { applyHubGcDefaults } from ${JSON.stringify(dist)}; console.log(JSON.stringify(applyHubGcDefaults()));`],
      {
        encoding: 'utf8',
      },
    ),
  ) as string[];

describe('applyHubGcDefaults', () => {
  it('sets both V8 flags in a plain hub process', () => {
    expect(run([])).toEqual(['--no-allocation-site-pretenuring', '--heap-growing-percent=100']);
  });

  it('takes effect although set after V8 started: a site whose objects all survive stays untenured', () => {
    // V8 reads the flag when it weighs the scavenges' feedback: without it the literal below is
    // switched to "tenure" (its objects born in the old generation), with it no site is. Counted
    // from V8's own trace.
    const tenured = (apply: boolean) => {
      const script = `${apply ? `import { applyHubGcDefaults } from ${JSON.stringify(dist)}; applyHubGcDefaults();` : ''}
        const keep = []; const make = (i) => ({ a: i, b: 'x' + i });
        for (let i = 0; i < 1_500_000; i++) keep.push(make(i));
        console.log(keep.length);`;
      const out = execFileSync(process.execPath, ['--trace-pretenuring', '--trace-pretenuring-statistics', '--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
      expect(out).toContain('1500000');
      return out.split('\n').filter((l) => l.includes('=> tenure')).length;
    };
    expect(tenured(false)).toBeGreaterThan(0);
    expect(tenured(true)).toBe(0);
  });

  it('leaves a setting the operator gave node alone (either spelling)', () => {
    expect(run(['--heap_growing_percent=50'])).toEqual(['--no-allocation-site-pretenuring']);
    expect(run(['--allocation-site-pretenuring', '--heap-growing-percent=0'])).toEqual([]);
  });
});
