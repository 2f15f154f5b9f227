import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Integration files that compare latencies between phases of one run (fairness:
 * p99 under a flood within 2x of p99 without it). Beside the rest of the suite,
 * the other files' bursts land on one phase and not the other, so they run on
 * their own, last.
 */
const ALONE = ['test/int/fairness.int.test.ts'];

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module). Node, and so every
    // dependency vitest leaves to it (Pothos, yoga), loads the CJS build; vite
    // would give our sources the ESM one, and graphql refuses to mix the two.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    environment: 'node',
    // What every keyledger process does at start-up (src/cli/main.ts): pg reads json with parseJson.
    setupFiles: ['test/support/setup.ts'],
    // One project per kind: `npm run test:unit` starts no Postgres; `npm test` runs all three.
    // Each Postgres project's global setup starts its own server and template database.
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'int', include: ['test/int/**/*.test.ts'], exclude: [...ALONE], globalSetup: ['test/support/global-setup.ts'] },
      },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], globalSetup: ['test/support/global-setup.ts'] } },
      // After every other project has finished (a later group), so that no other file's load falls on one phase and not the other.
      { extends: true, test: { name: 'int-alone', include: [...ALONE], globalSetup: ['test/support/global-setup.ts'], sequence: { groupOrder: 1 } } },
    ],
    // Child processes rather than worker threads: each file owns real sockets
    // and pools, and a crash in one must not take the others down.
    pool: 'forks',
    fileParallelism: true,
    // Integration files mostly wait on Postgres, so run more of them than there
    // are CPUs (the default, CPUs - 1, is 1 on a 2-CPU CI runner).
    maxWorkers: Math.max(4, availableParallelism()),
    testTimeout: 30_000,
    // The first beforeAll of a file creates and migrates its database.
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
