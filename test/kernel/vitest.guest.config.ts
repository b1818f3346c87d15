import { defineConfig } from 'vitest/config';

// Runs INSIDE the kernel tier's guest (scripts/kernel-vm/guest/run-vitest.sh), never on the host:
// the host's `npm test` only collects test/**/*.test.ts, and these files are *.guest.ts. One file
// per group of checks; tests in a file run in order on 2 vCPUs under TCG, hence generous timeouts.
export default defineConfig({
  test: {
    include: ['test/kernel/guest/**/*.guest.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
