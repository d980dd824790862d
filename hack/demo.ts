// `npm run demo`: a local control plane and PostgreSQL, the operator, an emergency rollback and an emergency
// backup you can watch. `npm run demo -- --keep` leaves everything running until Ctrl-C so you can explore.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import { LocalControlPlane } from '../test/env/control-plane.js';
import { installCrds } from '../test/env/crds.js';
import { LocalPostgres } from '../test/env/postgres.js';
import { startOperatorProcess } from '../test/env/operator-process.js';
import { operatorCommandMap, RUNNER_PLACEMENT, TestKubelet } from '../test/env/test-kubelet.js';

const execFileP = promisify(execFile);
const keep = process.argv.includes('--keep');
const kubeletLog: string[] = [];
const t0 = Date.now();
const say = (m: string) =>
  console.log(`\x1b[1m[demo +${((Date.now() - t0) / 1000).toFixed(1)}s]\x1b[0m ${m}`);
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let diagnose: (() => Promise<void>) | undefined;
let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  say(
    'starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and PostgreSQL',
  );
  const cp = await LocalControlPlane.start();
  cleanups.push(() => cp.stop());
  const db = await LocalPostgres.start();
  cleanups.push(() => db.stop());
  const kubectlBin = cp.bins.path('kubectl');
  // Asynchronous on purpose: the stand-in kubelet runs in this process and must keep running while we wait.
  const kubectl = async (...args: string[]) =>
    (
      await execFileP(kubectlBin, [`--kubeconfig=${cp.kubeconfigPath}`, ...args], {
        encoding: 'utf8',
        maxBuffer: 16 << 20,
      })
    ).stdout;
  const show = async (...args: string[]) => {
    console.log(`\x1b[2m$ kubectl ${args.join(' ')}\x1b[0m`);
    console.log((await kubectl(...args)).trimEnd());
  };
  // The nxt-rollback CLI (bin/nxt-rollback, also `kubectl nxt-rollback`) as a user runs it: its own process,
  // the terminal passed through, so the emergency rollback redraws live when the demo runs on a terminal.
  const cli = (...args: string[]) =>
    new Promise<number>((resolve, reject) => {
      console.log(`\x1b[2m$ nxt-rollback ${args.join(' ')}\x1b[0m`);
      const child = spawn(join(import.meta.dirname, '..', 'bin', 'nxt-rollback'), args, {
        stdio: 'inherit',
        env: { ...process.env, KUBECONFIG: cp.kubeconfigPath },
      });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? 1));
    });
  const cliOk = async (...args: string[]) => {
    const code = await cli(...args);
    if (code !== 0) throw new Error(`nxt-rollback ${args.join(' ')} exited with ${code}`);
  };
  say(`installed CRDs: ${(await installCrds(kubectlBin, cp.kubeconfigPath)).join(', ')}`);

  // --- the operator, as its own process ---
  const work = mkdtempSync(join(tmpdir(), 'nxt-demo-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  // As installed: the shipped RBAC (manifests/base), the operator authenticated as its ServiceAccount, leader
  // election on (the Lease in nxt-rollback-system is what `health` and `readiness` read).
  const rbacKinds = new Set([
    'Namespace',
    'ServiceAccount',
    'ClusterRole',
    'ClusterRoleBinding',
    'Role',
    'RoleBinding',
  ]);
  const base = parseAllDocuments(
    await kubectl('kustomize', join(import.meta.dirname, '..', 'manifests', 'base')),
  )
    .map((d) => d.toJS() as { kind?: string })
    .filter((o) => o?.kind && rbacKinds.has(o.kind));
  execFileSync(kubectlBin, [`--kubeconfig=${cp.kubeconfigPath}`, 'apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: base }),
  });
  const token = (
    await kubectl('-n', 'nxt-rollback-system', 'create', 'token', 'nxt-rollback-operator', '--duration=24h')
  ).trim();
  const adminConfig = new KubeConfig();
  adminConfig.loadFromFile(cp.kubeconfigPath);
  const saConfig = new KubeConfig();
  saConfig.loadFromOptions({
    clusters: [adminConfig.getCurrentCluster()!],
    users: [{ name: 'nxt-rollback-operator', token }],
    contexts: [
      { name: 'operator', cluster: adminConfig.getCurrentCluster()!.name, user: 'nxt-rollback-operator' },
    ],
    currentContext: 'operator',
  });
  const operatorKubeconfig = join(work, 'operator.kubeconfig');
  writeFileSync(operatorKubeconfig, saConfig.exportConfig(), { mode: 0o600 });
  const operator = await startOperatorProcess({
    kubeconfigPath: operatorKubeconfig,
    env: {
      LOG_LEVEL: 'info',
      OPERATOR_IMAGE: 'nxt-rollback-operator:demo',
      LEADER_ELECT: 'true',
      LEADER_ELECTION_NAMESPACE: 'nxt-rollback-system',
    },
  });
  cleanups.push(() => operator.stop());
  await operator.waitReady();
  const opLog = operator.logFile;
  say(
    `operator started as ServiceAccount nxt-rollback-system/nxt-rollback-operator with the shipped RBAC (logs: ${opLog}, metrics: ${operator.metricsUrl})`,
  );
  diagnose = async () => {
    for (const args of [
      ['get', 'rbp,bks,cronjob,jobs,pods', '-n', 'shop', '-o', 'wide'],
      ['get', 'events', '-n', 'shop'],
    ]) {
      try {
        await show(...args);
      } catch {
        /* best effort */
      }
    }
    console.error('--- runner kubelet log (tail) ---');
    console.error(kubeletLog.slice(-20).join('\n'));
    console.error('--- operator log (tail) ---');
    console.error(execFileSync('tail', ['-n', '40', opLog], { encoding: 'utf8' }));
  };

  // --- an application with a bad release ---
  await kubectl('create', 'namespace', 'shop');
  await kubectl('label', 'namespace', 'shop', 'pod-security.kubernetes.io/enforce=restricted');
  const container = (image: string) => ({
    name: 'checkout',
    image,
    securityContext: {
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      runAsUser: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  });
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'checkout' } },
      template: {
        metadata: { labels: { app: 'checkout' } },
        spec: { containers: [container('shop/checkout:1.4.0')] },
      },
    },
  };
  const apply = (obj: object) => {
    execFileSync(kubectlBin, [`--kubeconfig=${cp.kubeconfigPath}`, 'apply', '-f', '-'], {
      input: JSON.stringify(obj),
    });
  };
  await apply(deployment);
  await kubectl('-n', 'shop', 'rollout', 'status', 'deployment/checkout', '--timeout=60s');
  for (const v of ['1.5.0', '1.6.0']) {
    await kubectl('-n', 'shop', 'set', 'image', 'deployment/checkout', `checkout=shop/checkout:${v}`);
    await kubectl(
      '-n',
      'shop',
      'annotate',
      '--overwrite',
      'deployment/checkout',
      `kubernetes.io/change-cause=release ${v}`,
    );
    await kubectl('-n', 'shop', 'rollout', 'status', 'deployment/checkout', '--timeout=60s');
  }
  say('deployed checkout 1.4.0 -> 1.5.0 -> 1.6.0; 1.6.0 is the bad release');
  await show('-n', 'shop', 'rollout', 'history', 'deployment/checkout');

  // --- a dry run first (npm run rollback:dry-run) ---
  say('a dry run: what the emergency rollback would change, changing nothing');
  const reason = '5xx after the 1.6.0 release';
  await cliOk(
    '-n',
    'shop',
    'emergency',
    '--scope',
    'app',
    'checkout',
    '--dry-run',
    '--name',
    'checkout-dry-run',
  );

  // --- the emergency rollback, followed live (npm run rollback:emergency-app -- checkout) ---
  say('the emergency rollback: a critical RollbackPlan, followed step by step until it is done');
  await cliOk(
    '-n',
    'shop',
    'emergency',
    '--scope',
    'app',
    'checkout',
    '--reason',
    reason,
    '--name',
    'checkout-emergency',
  );
  await show('-n', 'shop', 'get', 'rbp');
  await show('-n', 'shop', 'rollout', 'history', 'deployment/checkout');
  await show('-n', 'shop', 'events', '--for=rollbackplan/checkout-emergency');
  await cliOk('-n', 'shop', 'history');

  // --- an emergency backup of a real PostgreSQL, run by a real Job pod ---
  say('backups: a BackupSchedule for the shop database; its Job pods run on a local stand-in kubelet');
  const dbName = 'shop';
  const admin = new pg.Client({ connectionString: db.info.url });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  await admin.end();
  const shop = new pg.Client({ connectionString: db.info.url.replace(/\/postgres$/, `/${dbName}`) });
  await shop.connect();
  await shop.query(
    `create table orders (id bigint primary key, total numeric(12,2), placed timestamptz default now())`,
  );
  await shop.query(`insert into orders select g, g % 1000 from generate_series(1, 10000) g`);
  await shop.end();
  const kubelet = await TestKubelet.start({
    kubeconfigPath: cp.kubeconfigPath,
    workDir: join(work, 'kubelet'),
    log: (m: string) => kubeletLog.push(m),
    commandMap: operatorCommandMap({ env: { PATH: process.env.PATH ?? '', PG_BIN_DIR: db.info.binDir } }),
  });
  cleanups.push(() => kubelet.stop());
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'shop-db', namespace: 'shop' },
    stringData: {
      host: db.info.host,
      port: String(db.info.port),
      database: dbName,
      username: db.info.user,
      password: db.info.password,
    },
  });
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'shop-backups' },
    spec: {
      capacity: { storage: '5Gi' },
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'manual',
      hostPath: { path: join(work, 'pv') },
      claimRef: { namespace: 'shop', name: 'shop-backups' },
    },
  });
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'shop-backups', namespace: 'shop' },
    spec: {
      storageClassName: 'manual',
      volumeName: 'shop-backups',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
    },
  });
  await apply({
    apiVersion: 'rollback.nxtnewday.io/v1alpha1',
    kind: 'BackupSchedule',
    metadata: { name: 'shop-db', namespace: 'shop' },
    spec: {
      database: { secretRef: { name: 'shop-db' } },
      storage: { persistentVolumeClaim: { claimName: 'shop-backups' } },
      retention: { keepLast: 12 },
      objectives: { rpo: '1h' },
      podTemplate: RUNNER_PLACEMENT,
    },
  });
  await kubectl('-n', 'shop', 'wait', '--for=condition=Ready', 'bks/shop-db', '--timeout=60s');
  await show('-n', 'shop', 'get', 'cronjob');
  const started = Date.now();
  say('an emergency backup (npm run db:backup): the rollback.nxtnewday.io/backup-now annotation, then wait');
  await cliOk('-n', 'shop', 'backup', 'now', 'shop-db', '--wait');
  say(
    `emergency backup of 10,000 orders recorded ${((Date.now() - started) / 1000).toFixed(1)}s after the request`,
  );
  await show('-n', 'shop', 'get', 'bks');
  await show(
    '-n',
    'shop',
    'get',
    'bks',
    'shop-db',
    '-o',
    'jsonpath={range .status.conditions[*]}{.type}{"\\t"}{.status}{"\\t"}{.reason}{"\\t"}{.message}{"\\n"}{end}',
  );
  await cliOk('-n', 'shop', 'backups', 'list');
  const newest = JSON.parse(
    await kubectl('-n', 'shop', 'get', 'bks', 'shop-db', '-o', 'jsonpath={.status.lastSuccessfulBackup}'),
  );
  say('a test restore of that backup into a scratch database (rollback.nxtnewday.io/test-restore-now)');
  await cliOk('-n', 'shop', 'backups', 'verify', newest.id, '--wait');
  say(
    'the deployment readiness checklist (npm run test:rollback:readiness), then health (npm run health:check:all)',
  );
  await cliOk('-n', 'shop', 'readiness', '--deployments', 'checkout');
  await cliOk('-n', 'shop', 'health');
  say(
    'the weekly rollback drill (npm run test:rollback:drill): in a scratch namespace, cleaned up afterwards',
  );
  await cliOk('-n', 'shop', 'drill', '--deployment', 'checkout', '--schedule', 'shop-db');

  say(`done in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  if (keep) {
    console.log(
      `\nEverything is still running. In another shell:\n  export KUBECONFIG=${cp.kubeconfigPath}\n  export PATH=${cp.bins.dir}:$PATH\n  kubectl get rbp,bks,deploy,cronjob,jobs -n shop\n  bin/nxt-rollback -n shop history      # or: kubectl nxt-rollback ... with bin/ on PATH\nPress Ctrl-C to stop and clean up.`,
    );
    await new Promise(() => {});
  }
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  await diagnose?.();
  process.exitCode = 1;
} finally {
  if (!keep) await cleanup();
}
