// `npm run cluster`: start the local control plane and PostgreSQL, print how to reach them, stop on Ctrl-C.
// NXT_REAL_NODE=1 adds a real node (test/env/real-node.ts) that really runs pods.
import { LocalControlPlane } from './control-plane.js';
import { LocalPostgres } from './postgres.js';
import { startRealNode, type RealNode } from './real-node.js';

const log = (m: string) => console.log(`[cluster] ${m}`);
const cp = await LocalControlPlane.start({ log });
const pgsql = await LocalPostgres.start(log);
let node: RealNode | undefined;
if (process.env.NXT_REAL_NODE === '1') {
  try {
    node = await startRealNode(cp, { log });
  } catch (e) {
    await Promise.allSettled([cp.stop(), pgsql.stop()]);
    throw e;
  }
}
const kubectl = cp.bins.path('kubectl');
console.log(`
Local control plane is up (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok).

  export KUBECONFIG=${cp.kubeconfigPath}
  export PATH=${cp.bins.dir}:$PATH
  ${kubectl} get nodes
  kubectl create deployment web --image=nginx --replicas=2 && kubectl get pods -w

PostgreSQL ${pgsql.info.version}: psql '${pgsql.info.url}'
${
  node
    ? `
Real node ${node.nodeName} (work dir ${node.workDir}): pods run there when they select and tolerate it:
  nodeSelector: ${JSON.stringify(node.placement.nodeSelector)}
  tolerations: ${JSON.stringify(node.placement.tolerations)}
  images: ${node.probeImage} (prints uid, rootfs, capabilities, seccomp), ${node.pauseImage}
  add one: ctr --address ${node.containerdAddress} -n k8s.io images import <oci-archive.tar>
`
    : ''
}
Press Ctrl-C to stop; everything is removed on exit.`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  log('stopping');
  const n = await Promise.allSettled([node?.stop()]);
  if (n[0].status === 'rejected') log(`stopping the real node: ${String(n[0].reason)}`);
  await Promise.allSettled([cp.stop(), pgsql.stop()]);
  log('stopped');
  process.exit(n[0].status === 'rejected' ? 1 : 0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
await new Promise(() => {});
