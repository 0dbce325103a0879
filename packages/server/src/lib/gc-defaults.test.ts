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

  it('leaves a setting the operator gave node alone (either spelling)', () => {
    expect(run(['--heap_growing_percent=50'])).toEqual(['--no-allocation-site-pretenuring']);
    expect(run(['--allocation-site-pretenuring', '--heap-growing-percent=0'])).toEqual([]);
  });
});
