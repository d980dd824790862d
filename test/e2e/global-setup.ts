import type { TestProject } from 'vitest/node';
import { ensureBinaries } from '../env/binaries.js';
import { LocalControlPlane } from '../env/control-plane.js';
import { installCrds } from '../env/crds.js';
import { buildProjectImage } from '../env/images.js';
import { LocalPostgres } from '../env/postgres.js';
import { startBoth, tearDownOnSignals } from '../env/exit-teardown.js';
import { nodeLeftovers } from '../env/node-sweep.js';
import { realNodeUnsupportedReason, startRealNode, type RealNode } from '../env/real-node.js';

declare module 'vitest' {
  export interface ProvidedContext {
    // realNode, apiServer and realNodeContainerd are declared in test/env/global-setup.ts.
    /** The project image built from the Dockerfile for this run, imported into the real node. */
    e2eImage: string;
    /** Its image ID (config digest) and manifest digest: containers are checked against these, not the name. */
    e2eImageId: string;
    e2eImageDigest: string;
    /** Why this machine cannot run the e2e suite (not root, not Linux, ...); '' when it can. */
    e2eSkipReason: string;
  }
}

const log = (m: string) => console.log(`[e2e-env] ${m}`);

/**
 * In CI (CI=true, which .ci/run sets) the e2e suite must run: a machine that cannot run it fails the run
 * loudly instead of passing with the suite skipped. Elsewhere (a laptop without root) it is skipped with the
 * reason. Returns the error message, or undefined when the setup may go on (run or skip).
 */
export function e2eSkipRefusal(
  unsupported: string | undefined,
  env: Record<string, string | undefined>,
): string | undefined {
  if (!unsupported || env.CI !== 'true') return undefined;
  return `CI=true but the e2e suite cannot run on this machine: ${unsupported}. CI must run it (the real node needs root, Linux and cgroup controllers; see docs/install.md)`;
}

/**
 * vitest globalSetup for the e2e project: the local control plane and PostgreSQL of the integration suite,
 * plus a real node (test/env/real-node.ts: containerd + kubelet) and the project image built from the
 * Dockerfile (test/env/images.ts), imported into that node. The image build runs while the control plane
 * and the node start.
 */
export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const unsupported =
    process.env.USE_EXISTING_CLUSTER === 'true'
      ? 'USE_EXISTING_CLUSTER=true: the e2e suite brings its own control plane and real node'
      : realNodeUnsupportedReason();
  const refusal = e2eSkipRefusal(unsupported, process.env);
  if (refusal) throw new Error(refusal);
  project.provide('e2eSkipReason', unsupported ?? '');
  if (unsupported) {
    log(`skipping the e2e suite: ${unsupported}`);
    return;
  }
  // Ctrl-C / SIGTERM: vitest exits 1 ms after its own signal listener, so the async teardown below would stop
  // at its first await; this tears down synchronously first (test/env/exit-teardown.ts)
  tearDownOnSignals(log);
  const bins = await ensureBinaries(log);
  const image = buildProjectImage({ log });
  image.catch(() => {}); // awaited below; a failure is reported there
  const [cp, pgsql] = await startBoth(LocalControlPlane.start({ log }), LocalPostgres.start(log));
  let node: RealNode | undefined;
  let stopped = false;
  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    const t = Date.now();
    const failures: string[] = [];
    const nodeDir = node?.workDir;
    await node?.stop().catch((e) => failures.push(`stopping the real node: ${(e as Error).message}`));
    for (const r of await Promise.allSettled([cp.stop(), pgsql.stop()]))
      if (r.status === 'rejected') failures.push(String(r.reason));
    if (nodeDir) failures.push(...nodeLeftovers(nodeDir).map((l) => `left by the real node: ${l}`));
    if (failures.length) {
      // a teardown that leaves something fails the run (vitest only logs a teardown error)
      process.exitCode = 1;
      throw new Error(`the e2e environment was not fully removed:\n${failures.join('\n')}`);
    }
    log(`e2e environment removed in ${Date.now() - t} ms`);
  };
  try {
    node = await startRealNode(cp, { log });
    const built = await image;
    log(`project image ${built.image} (${built.id}) built in ${built.seconds} s`);
    await node.importImage(built.archive);
    // the node's containerd holds the image now: the archive (~180 MB) and its work dir go at once, not at exit
    built.removeArchive();
    await installCrds(bins.path('kubectl'), cp.kubeconfigPath);
    project.provide('kubeconfigPath', cp.kubeconfigPath);
    project.provide('existingCluster', false);
    project.provide('binDir', bins.dir);
    project.provide('postgres', pgsql.info);
    project.provide('harnessUrl', '');
    project.provide('e2eImage', built.image);
    project.provide('e2eImageId', built.id);
    project.provide('e2eImageDigest', built.digest);
    project.provide('realNode', { nodeName: node.nodeName, placement: node.placement });
    project.provide('apiServer', cp.server);
    project.provide('realNodeContainerd', node.containerdAddress);
  } catch (e) {
    await teardown().catch((err) => log(String(err)));
    throw e;
  }
  log(`e2e environment ready in ${Date.now() - t0} ms`);
  return teardown;
}
