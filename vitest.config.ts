import { defineConfig } from 'vitest/config';
import WeightedSequencer from './test/env/sequencer.js';

// Two projects: `unit` (pure logic, beside the code) and `integration` (real control plane + PostgreSQL,
// started once by test/env/global-setup.ts and shared by every integration file).
export default defineConfig({
  test: {
    // `--shard=i/N` (test/env/run-tests.ts runs `npm test` as N shards side by side) splits by measured weight.
    sequence: { sequencer: WeightedSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['operator/**/*.test.ts', 'test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/env/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One shared control plane; files isolate themselves by namespace. Run files one at a time so
          // timing-sensitive checks are not starved on a 2-core machine.
          fileParallelism: false,
        },
      },
    ],
  },
});
