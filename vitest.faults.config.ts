import { defineConfig } from 'vitest/config';

/**
 * Fault tests stop and restart the machine's PostgreSQL and Redis: they run in their own pass,
 * after the main suite, one file at a time, so no other test sees those outages.
 */
export default defineConfig({
  test: {
    include: ['e2e/faults/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
