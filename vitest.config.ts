import { defineConfig } from 'vitest/config';

// Three projects: `unit` (pure logic, beside the code), `integration` (real control plane + PostgreSQL,
// started once by test/env/global-setup.ts and shared by every integration file) and `e2e` (the same plus a
// real node that really runs pods, test/env/e2e-setup.ts), which runs after the integration project.
export default defineConfig({
  test: {
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
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/env/e2e-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          // after the integration project (vitest runs groups from the lowest groupOrder up)
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
