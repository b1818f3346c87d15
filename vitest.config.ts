import { defineConfig } from 'vitest/config';

// Integration tests start real daemons and a TCG guest: generous fixed timeouts, files run in
// parallel on the two cores but tests inside a file run in order.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
  },
});
