// Helpers for the BackupSchedule integration tests: the custom object, the database Secret, a bound PVC and
// a test kubelet that runs the operator image's runner subcommands from the TypeScript sources.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { operatorCommandMap, RUNNER_PLACEMENT, TestKubelet } from '../env/test-kubelet.js';
import { eventually, kubectl, testClients } from './kube.js';
import { condition } from './plans.js';
import { pgInfo, runPgTool, withClient } from './postgres.js';

const G = { group: 'rollback.nxtnewday.io', version: 'v1alpha1', plural: 'backupschedules' } as const;
/** The image startOperator() sets as OPERATOR_IMAGE; its Job pods have args only (the image's entrypoint). */
export const OPERATOR_TEST_IMAGE = 'nxt-rollback-operator:test';
export const BACKUP_NOW = 'rollback.nxtnewday.io/backup-now';
export const RECORDED = 'rollback.nxtnewday.io/recorded';
export { condition };

/** A spec that lands the runner pods on the test kubelet's node, with `claimName` as storage. */
export function scheduleSpec(secret: string, claimName: string, extra: Record<string, unknown> = {}) {
  return {
    database: { secretRef: { name: secret } },
    storage: { persistentVolumeClaim: { claimName } },
    podTemplate: { ...RUNNER_PLACEMENT },
    ...extra,
  };
}

export async function applySchedule(namespace: string, name: string, spec: object): Promise<any> {
  const { custom } = testClients();
  return custom.createNamespacedCustomObject({
    ...G,
    namespace,
    body: { apiVersion: 'rollback.nxtnewday.io/v1alpha1', kind: 'BackupSchedule', metadata: { name }, spec },
  });
}

export async function getSchedule(namespace: string, name: string): Promise<any> {
  const { custom } = testClients();
  return custom.getNamespacedCustomObject({ ...G, namespace, name });
}

/** A JSON merge patch of the BackupSchedule (spec or metadata), through kubectl like a user would. */
export async function patchSchedule(namespace: string, name: string, patch: object): Promise<void> {
  await kubectl('-n', namespace, 'patch', 'bks', name, '--type=merge', '-p', JSON.stringify(patch));
}

/** `kubectl annotate --overwrite bks NAME rollback.nxtnewday.io/backup-now=VALUE`. */
export async function backupNow(namespace: string, name: string, value: string): Promise<void> {
  await kubectl('-n', namespace, 'annotate', '--overwrite', 'bks', name, `${BACKUP_NOW}=${value}`);
}

/** Waits until condition `type` has `status` (and `reason`, when given) and returns the schedule. */
export async function waitScheduleCondition(
  namespace: string,
  name: string,
  type: string,
  status: 'True' | 'False',
  reason?: string,
  timeoutMs = 60_000,
  extra: (s: any) => boolean = () => true,
): Promise<any> {
  return eventually(
    `BackupSchedule ${name} condition ${type}=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const s = await getSchedule(namespace, name);
      const c = condition(s, type);
      if (c?.status === status && (!reason || c.reason === reason) && extra(s)) return s;
      throw new Error(JSON.stringify(c ?? s.status?.conditions ?? 'no conditions'));
    },
    timeoutMs,
    200,
  );
}

/** The Secret the runner reads through secretKeyRef: host, port, database, username, password. */
export async function createDbSecret(
  namespace: string,
  name: string,
  data: Partial<Record<'host' | 'port' | 'database' | 'username' | 'password', string>>,
): Promise<void> {
  const { core } = testClients();
  await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
}

/** Secret data for database `database` on the harness PostgreSQL; `port` overrides the real one. */
export function dbSecretData(database: string, port?: number) {
  const i = pgInfo();
  return {
    host: i.host,
    port: String(port ?? i.port),
    database,
    username: i.user,
    password: i.password,
  };
}

/**
 * A PV pre-bound (claimRef) to claim `claim` in `namespace`: no provisioner runs in the harness, so this is
 * what the persistentvolume-binder controller binds the claim to. Returns the PV's name.
 */
export async function createPvFor(namespace: string, claim: string, storageClassName = 'manual') {
  const { core } = testClients();
  const name = `${namespace}-${claim}`.slice(0, 253);
  await core.createPersistentVolume({
    body: {
      metadata: { name, labels: { 'nxt.test/e2e': 'true' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName,
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/nxt-unused-hostpath/${name}` },
        claimRef: { namespace, name: claim },
      },
    },
  });
  return name;
}

export async function waitClaimBound(namespace: string, claim: string, timeoutMs = 30_000) {
  const { core } = testClients();
  return eventually(
    `PVC ${claim} to be Bound`,
    async () => {
      const pvc = await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
      return pvc.status?.phase === 'Bound' ? pvc : undefined;
    },
    timeoutMs,
  );
}

/** A PV and a PVC bound to it (storageClassName manual), for `storage.persistentVolumeClaim.claimName`. */
export async function createBoundClaim(namespace: string, claim: string): Promise<string> {
  const { core } = testClients();
  const pv = await createPvFor(namespace, claim);
  await core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: {
      metadata: { name: claim },
      spec: {
        storageClassName: 'manual',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    },
  });
  await waitClaimBound(namespace, claim);
  return pv;
}

export async function deletePvs(names: string[]): Promise<void> {
  const { core } = testClients();
  await Promise.all(names.map((name) => core.deletePersistentVolume({ name }).catch(() => {})));
}

/**
 * A test kubelet for the operator's Job pods: the operator image without a command is its entrypoint, so
 * its args are runner args, run as `node --import tsx operator/main.ts ARGS` with the harness's pg tools.
 */
export function startRunnerKubelet(workDir: string, log: (m: string) => void): Promise<TestKubelet> {
  return TestKubelet.start({
    kubeconfigPath: inject('kubeconfigPath'),
    workDir,
    log,
    commandMap: operatorCommandMap({
      isOperatorImage: (image) => image === OPERATOR_TEST_IMAGE,
      env: { PG_BIN_DIR: pgInfo().binDir },
    }),
  });
}

/** `pgbench -i -s 1` (100,000 accounts) plus a 10,000-row table `notes`. */
export async function fillDatabase(url: string, database: string): Promise<void> {
  await runPgTool('pgbench', ['-i', '-s', '1', '-q', database]);
  await withClient(url, async (c) => {
    await c.query('create table notes (id int primary key, body text not null)');
    await c.query("insert into notes select g, 'note ' || g from generate_series(1, 10000) g");
  });
}

/** The Jobs of a schedule (every component), oldest first. */
export async function scheduleJobs(namespace: string, schedule: string) {
  const { batch } = testClients();
  const jobs = await batch.listNamespacedJob({
    namespace,
    labelSelector: `rollback.nxtnewday.io/backup-schedule=${schedule}`,
  });
  return jobs.items.sort((a, b) =>
    String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)),
  );
}

/** Waits for a Job to carry the operator's `recorded` annotation (its outcome is in the schedule status). */
export async function waitJobRecorded(namespace: string, job: string, timeoutMs = 90_000) {
  const { batch } = testClients();
  return eventually(
    `Job ${job} to be recorded by the operator`,
    async () => {
      const j = await batch.readNamespacedJob({ namespace, name: job });
      return j.metadata?.annotations?.[RECORDED] ? j : undefined;
    },
    timeoutMs,
    200,
  );
}

/** Committed dumps in a PVC dir (`<id>.dump`), sorted. */
export function dumpsIn(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.dump'))
        .sort()
    : [];
}

export const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

export const dumpPath = (dir: string, id: string) => join(dir, `${id}.dump`);
