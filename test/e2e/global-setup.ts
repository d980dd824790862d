import type { TestProject } from 'vitest/node';
import { ensureBinaries } from '../env/binaries.js';
import { LocalControlPlane } from '../env/control-plane.js';
import { installCrds } from '../env/crds.js';
import { LocalPostgres } from '../env/postgres.js';
import { startRealNode, type RealNode } from '../env/real-node.js';

// The real node's keys of vitest's ProvidedContext (realNode, apiServer, realNodeContainerd) are declared in
// test/env/global-setup.ts. This is the real-node part of the e2e setup; the e2e suite's own setup (branch
// s6/e2e14) adds the project image built from the Dockerfile and replaces this file.

const log = (m: string) => console.log(`[e2e-env] ${m}`);

/** vitest globalSetup for the e2e project: the control plane and PostgreSQL plus a real node. */
export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const bins = await ensureBinaries(log);
  const [cp, pgsql] = await Promise.all([LocalControlPlane.start({ log }), LocalPostgres.start(log)]);
  let node: RealNode | undefined;
  let stopped = false;
  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    const t = Date.now();
    await node?.stop().catch((e) => log(`stopping the real node: ${String(e)}`));
    await Promise.allSettled([cp.stop(), pgsql.stop()]);
    log(`e2e environment removed in ${Date.now() - t} ms`);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void teardown().finally(() => process.exit(130));
    });
  }
  try {
    node = await startRealNode(cp, { log });
    await installCrds(bins.path('kubectl'), cp.kubeconfigPath);
    project.provide('kubeconfigPath', cp.kubeconfigPath);
    project.provide('existingCluster', false);
    project.provide('binDir', bins.dir);
    project.provide('postgres', pgsql.info);
    project.provide('harnessUrl', '');
    project.provide('realNode', { nodeName: node.nodeName, placement: node.placement });
    project.provide('apiServer', cp.server);
    project.provide('realNodeContainerd', node.containerdAddress);
  } catch (e) {
    await teardown();
    throw e;
  }
  log(`e2e environment ready in ${Date.now() - t0} ms`);
  return teardown;
}
