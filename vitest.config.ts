import { defineConfig } from 'vitest/config';
import LongestFirst from './test/helpers/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most test time is spent waiting on real services (git, registry, dockerd, gitlab-ci-local jobs), not on
    // the CPU: three files at a time on a 2-core machine (vitest's default there is one).
    maxWorkers: 3,
    reporters: ['default'],
    // longest files first, also in a fresh clone (test/helpers/sequencer.ts)
    sequence: { sequencer: LongestFirst },
  },
});
