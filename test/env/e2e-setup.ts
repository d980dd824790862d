import type { TestProject } from 'vitest/node';
import { setupEnvironment } from './global-setup.js';

/**
 * vitest globalSetup for the e2e project (test/e2e): the integration environment (control plane, PostgreSQL)
 * plus a real node (test/env/real-node.ts) that really runs pods.
 */
export default async function setup(project: TestProject) {
  return setupEnvironment(project, { realNode: true });
}
