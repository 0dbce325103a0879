import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'e2e/**/*.test.ts'],
    // Fault tests restart PostgreSQL/Redis: their own pass (vitest.faults.config.ts).
    exclude: ['**/node_modules/**', 'e2e/faults/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Whole-system tests spawn hubs and agents; two files at a time suit a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
