import { defineConfig } from 'vitest/config';

// Integration tests start real daemons and a TCG guest: generous fixed timeouts, files run in
// parallel on the two cores but tests inside a file run in order.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // no test inherits the developer's session bus (see the file)
    setupFiles: ['test/harness/isolate-env.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // No retries: every flake seen so far had a cause and was fixed at it (a harness ESRCH race,
    // a pitch tolerance tighter than the drift controller's range, usocket's use-after-free, the
    // re-attach test killing QEMU before its first Init). A new one should turn CI red and be
    // understood, not be retried away.
    reporters: ['default'],
  },
});
