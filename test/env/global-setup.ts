import { createServer, type Server } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from './binaries.js';
import { LocalControlPlane } from './control-plane.js';
import { installCrds } from './crds.js';
import { LocalPostgres, type PostgresInfo } from './postgres.js';
import { realNodeUnsupportedReason, startRealNode, type PodPlacement, type RealNode } from './real-node.js';

/** What tests learn about the real node (test/env/real-node.ts) when the run has one. */
export interface RealNodeInfo {
  nodeName: string;
  /** Spread into a pod spec: nodeSelector and tolerations that put the pod on the real node. */
  placement: PodPlacement;
  /** Images in the node's store (imagePullPolicy: Never); see real-node.ts for what the probe prints. */
  pauseImage: string;
  probeImage: string;
  workDir: string;
  /** containerd's socket: `ctr --address <it> -n k8s.io images import <oci archive>` adds an image. */
  containerdAddress: string;
}

/** The control plane's endpoint and CA, for a test that starts a second real node on it. */
export interface ControlPlaneAccess {
  server: string;
  caCert: string;
  caKey: string;
  adminToken: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of an admin kubeconfig for the cluster under test. */
    kubeconfigPath: string;
    /** True when the tests run against the current kubeconfig (USE_EXISTING_CLUSTER=true). */
    existingCluster: boolean;
    /** Directory with kubectl, helm (and the control-plane binaries). */
    binDir: string;
    postgres: PostgresInfo;
    /** Local HTTP endpoint of the harness (POST /apiserver/restart?downMs=N); empty for existing clusters. */
    harnessUrl: string;
    /** The real node, when the run has one (NXT_REAL_NODE=1, the e2e project); else null. */
    realNode: RealNodeInfo | null;
    /** Why the run has no real node although one was asked for (the machine cannot run one); else ''. */
    realNodeSkipReason: string;
    /** The local control plane's endpoint and CA; null for an existing cluster. */
    controlPlane: ControlPlaneAccess | null;
  }
}

const log = (m: string) => console.log(`[test-env] ${m}`);

/**
 * vitest globalSetup for the integration project: one control plane and one PostgreSQL for the whole run.
 * Tests isolate themselves by namespace and database name. `NXT_REAL_NODE=1` adds a real node
 * (test/env/real-node.ts) beside the kwok nodes.
 */
export default async function setup(project: TestProject) {
  return setupEnvironment(project, { realNode: process.env.NXT_REAL_NODE === '1' });
}

/**
 * Starts the environment and provides it to the project's tests; returns the teardown. With `realNode`, a real
 * node joins the control plane; on a machine that cannot run one (not root, not Linux) the run goes on
 * without it and tests see `realNodeSkipReason`, except under CI=true, where that is an error.
 */
export async function setupEnvironment(project: TestProject, opts: { realNode: boolean }) {
  const t0 = Date.now();
  const existingCluster = process.env.USE_EXISTING_CLUSTER === 'true';
  const bins = await ensureBinaries(log);
  const [cp, pgsql] = await Promise.all([
    existingCluster ? Promise.resolve(undefined) : LocalControlPlane.start({ log }),
    LocalPostgres.start(log),
  ]);
  let realNode: RealNode | undefined;
  let realNodeSkipReason = '';
  if (opts.realNode) {
    realNodeSkipReason =
      realNodeUnsupportedReason() ??
      (cp ? '' : 'a real node joins only the local control plane (USE_EXISTING_CLUSTER=true)');
    if (realNodeSkipReason && process.env.CI === 'true')
      throw new Error(`a real node was asked for but cannot run: ${realNodeSkipReason}`);
    if (realNodeSkipReason) log(`no real node: ${realNodeSkipReason}`);
    else {
      try {
        realNode = await startRealNode(cp!, { log });
      } catch (e) {
        await Promise.allSettled([cp?.stop(), pgsql.stop()]);
        throw e;
      }
    }
  }
  let harness: Server | undefined;
  let harnessUrl = '';
  if (cp) {
    harness = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.pathname === '/apiserver/restart') {
        cp.restartApiServer(Number(url.searchParams.get('downMs') ?? '0')).then(
          () => res.writeHead(200).end('restarted'),
          (e) => res.writeHead(500).end(String(e)),
        );
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => harness!.listen(0, '127.0.0.1', r));
    const addr = harness.address();
    harnessUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }
  const kubeconfigPath =
    cp?.kubeconfigPath ?? process.env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config');
  const crds = await installCrds(bins.path('kubectl'), kubeconfigPath);
  if (crds.length) log(`installed CRDs: ${crds.join(', ')}`);
  project.provide('kubeconfigPath', kubeconfigPath);
  project.provide('existingCluster', existingCluster);
  project.provide('binDir', bins.dir);
  project.provide('postgres', pgsql.info);
  project.provide('harnessUrl', harnessUrl);
  project.provide(
    'realNode',
    realNode
      ? {
          nodeName: realNode.nodeName,
          placement: realNode.placement,
          pauseImage: realNode.pauseImage,
          probeImage: realNode.probeImage,
          workDir: realNode.workDir,
          containerdAddress: realNode.containerdAddress,
        }
      : null,
  );
  project.provide('realNodeSkipReason', realNodeSkipReason);
  project.provide(
    'controlPlane',
    cp ? { server: cp.server, caCert: cp.pki.caCert, caKey: cp.pki.caKey, adminToken: cp.adminToken } : null,
  );
  log(
    `environment ready in ${Date.now() - t0} ms (${existingCluster ? 'existing cluster' : cp!.server}` +
      `${realNode ? `, real node ${realNode.nodeName}` : ''})`,
  );

  let stopped = false;
  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    harness?.close();
    // the node first: its stop() removes its Node object through the API server
    const node = await Promise.allSettled([realNode?.stop()]);
    if (node[0].status === 'rejected') log(`stopping the real node: ${String(node[0].reason)}`);
    await Promise.allSettled([cp?.stop(), pgsql.stop()]);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void teardown().finally(() => process.exit(130));
    });
  }
  return teardown;
}
