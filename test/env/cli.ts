// `npm run cluster`: start the local control plane and PostgreSQL, print how to reach them, stop on Ctrl-C.
import { LocalControlPlane } from './control-plane.js';
import { LocalPostgres } from './postgres.js';

const log = (m: string) => console.log(`[cluster] ${m}`);
const cp = await LocalControlPlane.start({ log });
const pgsql = await LocalPostgres.start(log);
const kubectl = cp.bins.path('kubectl');
console.log(`
Local control plane is up (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok).

  export KUBECONFIG=${cp.kubeconfigPath}
  export PATH=${cp.bins.dir}:$PATH
  ${kubectl} get nodes
  kubectl create deployment web --image=nginx --replicas=2 && kubectl get pods -w

PostgreSQL ${pgsql.info.version}: psql '${pgsql.info.url}'

Press Ctrl-C to stop; everything is removed on exit.`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await Promise.allSettled([cp.stop(), pgsql.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
await new Promise(() => {});
