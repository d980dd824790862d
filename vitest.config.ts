import { defineConfig } from 'vitest/config';
import WeightedSequencer from './test/env/sequencer.js';

// Three projects: `unit` (pure logic, beside the code), `integration` (real control plane + PostgreSQL,
// started once by test/env/global-setup.ts and shared by every integration file) and `e2e` (below).
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
          // workers run their clean-ups on SIGINT/SIGTERM too (test/env/worker-signals.ts)
          setupFiles: ['test/env/worker-signals.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One shared control plane; files isolate themselves by namespace. Run files one at a time so
          // timing-sensitive checks are not starved on a 2-core machine.
          fileParallelism: false,
        },
      },
      {
        // Issue 14: the operator's image built from the Dockerfile, installed by its Helm chart / kustomize
        // base onto a real node (kubelet + containerd) of its own control plane (test/e2e/global-setup.ts).
        // `npm test` runs it after unit + integration (a second vitest run), so the two control planes and
        // the image build never load the machine at the same time; `npm run test:e2e` runs it alone.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/e2e/global-setup.ts'],
          setupFiles: ['test/env/worker-signals.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
