import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readProcFile } from './system-metrics.js';

describe('readProcFile', () => {
  it('reads what readFile reads, through one growing buffer', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hive-proc-'));
    try {
      for (const size of [0, 1, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 200_000]) {
        const file = path.join(dir, `f${size}`);
        const text = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
        writeFileSync(file, text);
        expect(readProcFile(file)).toBe(text);
      }
      const utf8 = path.join(dir, 'utf8');
      writeFileSync(utf8, 'é'.repeat(20_000));
      expect(readProcFile(utf8)).toBe('é'.repeat(20_000));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (process.platform === 'linux') expect(readProcFile('/proc/version')).toBe(readFileSync('/proc/version', 'utf8'));
    expect(() => readProcFile(path.join(os.tmpdir(), 'hive-no-such-file'))).toThrow(/ENOENT/);
  });
});
