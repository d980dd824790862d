import { createServer, type Server } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from './binaries.js';
import { LocalControlPlane } from './control-plane.js';
import { installCrds } from './crds.js';
import { startBoth, tearDownOnSignals } from './exit-teardown.js';
import { LocalPostgres, type PostgresInfo } from './postgres.js';
import { startRealNode, type PodPlacement, type RealNode } from './real-node.js';

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
    // The real node (test/env/real-node.ts), provided by the e2e project's setup (test/e2e/global-setup.ts)
    // and by this one under NXT_REAL_NODE=1 (not provided otherwise). Same declarations in both files.
    /** The real node's name and the nodeSelector/tolerations that put a pod on it. */
    realNode: { nodeName: string; placement: PodPlacement };
    /** The API server's loopback URL (hostNetwork pods reach it there). */
    apiServer: string;
    /** The real node's containerd socket (`ctr --address`), to read what really ran. */
    realNodeContainerd: string;
  }
}

const log = (m: string) => console.log(`[test-env] ${m}`);

/**
 * vitest globalSetup for the integration project: one control plane and one PostgreSQL for the whole run.
 * Tests isolate themselves by namespace and database name. NXT_REAL_NODE=1 adds a real node
 * (test/env/real-node.ts) beside the kwok nodes (the e2e project always has one: test/e2e/global-setup.ts).
 */
export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const existingCluster = process.env.USE_EXISTING_CLUSTER === 'true';
  // Ctrl-C / SIGTERM: vitest exits 1 ms after its own signal listener, before an async teardown could finish;
  // this kills what the run started and removes its work dirs synchronously first (test/env/exit-teardown.ts)
  tearDownOnSignals(log);
  const bins = await ensureBinaries(log);
  const [cp, pgsql] = await startBoth(
    existingCluster ? Promise.resolve(undefined) : LocalControlPlane.start({ log }),
    LocalPostgres.start(log),
  );
  let realNode: RealNode | undefined;
  if (process.env.NXT_REAL_NODE === '1') {
    if (!cp)
      throw new Error('NXT_REAL_NODE=1 adds a node to the local control plane, not to an existing cluster');
    try {
      realNode = await startRealNode(cp, { log });
    } catch (e) {
      await Promise.allSettled([cp.stop(), pgsql.stop()]);
      throw e;
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
  if (realNode) {
    project.provide('realNode', { nodeName: realNode.nodeName, placement: realNode.placement });
    project.provide('apiServer', cp!.server);
    project.provide('realNodeContainerd', realNode.containerdAddress);
  }
  log(`environment ready in ${Date.now() - t0} ms (${existingCluster ? 'existing cluster' : cp!.server})`);

  let stopped = false;
  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    harness?.close();
    const failures: string[] = [];
    // the node first: its stop() removes its Node object through the API server
    await realNode?.stop().catch((e) => failures.push(`stopping the real node: ${(e as Error).message}`));
    for (const r of await Promise.allSettled([cp?.stop(), pgsql.stop()]))
      if (r.status === 'rejected') failures.push(String(r.reason));
    if (failures.length) {
      // a teardown that leaves something fails the run (vitest only logs a teardown error)
      process.exitCode = 1;
      throw new Error(`the test environment was not fully removed:\n${failures.join('\n')}`);
    }
  };
  return teardown;
}
