import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import { RUNNER_PLACEMENT, type TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createDbSecret,
  dbSecretData,
  getSchedule,
  patchSchedule,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { createBucket, listObjects, s3Client, s3RunnerEnv, useS3Server } from '../support/s3.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';

// Two BackupSchedules with the same name in different namespaces pointed at one bucket + prefix (one GitOps
// overlay applied twice, a DR cluster): the runner of the second is refused (StorageOwnedByOther) by every
// command, so it never prunes, selects, overwrites or restores the first one's backups. Real SeaweedFS,
// real PostgreSQL, the runner's subcommands as a Job pod runs them (argv + env, termination-log file).

const s3 = useS3Server();
const root = mkdtempSync(join(tmpdir(), 'nxt-s3-own-'));
let runs = 0;
let bucket = '';

function env(database: string, namespace: string, uid: string): NodeJS.ProcessEnv {
  return s3RunnerEnv(s3(), database, {
    extra: {
      NXT_NAMESPACE: namespace,
      NXT_SCHEDULE_NAME: 'orders',
      NXT_SCHEDULE_UID: uid,
      NXT_BACKUP_PURPOSE: 'scheduled',
    },
  });
}

async function runner(
  argv: string[],
  e: NodeJS.ProcessEnv,
): Promise<{ code: number; result: RunnerResult; output: string }> {
  const terminationLog = join(root, `termination-${runs++}`);
  const lines: string[] = [];
  const code = await runnerMain([...argv, '--termination-log', terminationLog], e, {
    writeLog: (l) => lines.push(l),
  });
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(parsed.success, `the termination message parses: ${message}`).toBe(true);
  return { code, result: parsed.data!, output: [message, ...lines].join('\n') };
}

beforeAll(async () => {
  bucket = await createBucket(s3());
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('one S3 prefix belongs to one schedule (namespace + name)', () => {
  it('refuses a same-named schedule of another namespace on every command; the owner keeps its backups', async () => {
    const dbA = await createTestDatabase('s3owna');
    const dbB = await createTestDatabase('s3ownb');
    for (const db of [dbA, dbB]) {
      await withClient(db.url, async (c) => {
        await c.query('create table orders (id int primary key, note text)');
        await c.query("insert into orders select g, 'order ' || g from generate_series(1, 200) g");
      });
    }
    const url = `s3://${bucket}/shared/orders`;
    const a = env(dbA.name, 'team-a', 'uid-a');
    const b = env(dbB.name, 'team-b', 'uid-b');
    for (const id of ['orders-backup-100', 'orders-backup-200']) {
      const r = await runner(['backup', '--storage-url', url, '--id', id], a);
      expect(r.result, r.output).toMatchObject({ success: true });
    }
    const keysOfA = (await listObjects(s3(), bucket, 'shared/orders/')).map((o) => o.key).sort();
    expect(keysOfA).toContain('shared/orders/orders-backup-100.manifest.json');

    const refused = (r: { result: RunnerResult; output: string }) => {
      expect(r.result, r.output).toMatchObject({ success: false, reason: 'StorageOwnedByOther' });
      expect(r.result.message).toContain('team-a/orders');
    };
    // The second schedule's backup (even at a minute the first one used), prune, selection and restores.
    refused(
      await runner(['backup', '--storage-url', url, '--id', 'orders-backup-300', '--keep-last', '1'], b),
    );
    refused(await runner(['backup', '--storage-url', url, '--id', 'orders-backup-200'], b));
    refused(await runner(['prune', '--storage-url', url, '--keep-last', '1'], b));
    refused(await runner(['verify', '--storage-url', url, '--id', 'latest'], b));
    refused(await runner(['test-restore', '--storage-url', url, '--id', 'latest'], b));
    const beforeB = await tableChecksum(dbB.url, 'orders');
    refused(
      await runner(['restore', '--storage-url', url, '--id', 'orders-backup-200', '--mode', 'inPlace'], b),
    );
    expect(await tableChecksum(dbB.url, 'orders'), 'the other namespace database is untouched').toEqual(
      beforeB,
    );
    expect((await listObjects(s3(), bucket, 'shared/orders/')).map((o) => o.key).sort()).toEqual(keysOfA);

    // The owner, re-created (new UID, same namespace and name: GitOps), still uses and prunes its prefix.
    const again = env(dbA.name, 'team-a', 'uid-a2');
    const v = await runner(['verify', '--storage-url', url, '--id', 'latest'], again);
    expect(v.result, v.output).toMatchObject({ success: true, id: 'orders-backup-200' });
    const p = await runner(['prune', '--storage-url', url, '--keep-last', '1'], again);
    expect(p.result, p.output).toMatchObject({ success: true, deleted: ['orders-backup-100'] });
  });
});

// The same namespace/name in two clusters on one bucket + prefix (one GitOps overlay applied to a DR cluster):
// the prefix's owner object records the cluster id, and the second cluster neither backs up, prunes nor
// restores there unless spec.storage.s3.foreignCluster says so. "Cluster A" is the runner run in-process with
// NXT_CLUSTER_ID=cluster-a (what cluster A's operator gives its Jobs); "cluster B" is this cluster: a real
// operator (without CLUSTER_ID, so its id is the kube-system Namespace's UID) whose Jobs the test kubelet runs.
describe.skipIf(inject('existingCluster'))('one S3 prefix belongs to one cluster', () => {
  const { core } = testClients();
  const CLUSTER_A = 'cluster-a';
  let clusterB = '';
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  let dbA: { name: string; url: string };
  let dbB: { name: string; url: string };
  const prefix = 'dr/orders';
  const url = () => `s3://${bucket}/${prefix}`;
  const keys = async () => (await listObjects(s3(), bucket, `${prefix}/`)).map((o) => `${o.key}:${o.size}`);
  const owner = async () => {
    const c = s3Client(s3());
    try {
      const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/.nxt-owner.json` }));
      return JSON.parse(await r.Body!.transformToString()) as Record<string, string>;
    } finally {
      c.destroy();
    }
  };
  /** The runner as cluster A's Jobs run it (or, with `cluster` B, as this cluster's restore Job would). */
  const runAs = (cluster: string, db: string, extra: NodeJS.ProcessEnv = {}) =>
    s3RunnerEnv(s3(), db, {
      extra: {
        NXT_NAMESPACE: ns,
        NXT_SCHEDULE_NAME: 'orders',
        NXT_SCHEDULE_UID: `uid-${cluster}`,
        NXT_BACKUP_PURPOSE: 'scheduled',
        NXT_CLUSTER_ID: cluster,
        ...extra,
      },
    });
  const schedule = (foreignCluster?: { clusterId: string; allow: string }) => ({
    database: { secretRef: { name: 'db' } },
    storage: {
      s3: {
        endpoint: s3().endpoint,
        bucket,
        prefix,
        region: s3().region,
        forcePathStyle: true,
        credentialsSecretRef: { name: 's3-keys' },
        ...(foreignCluster ? { foreignCluster } : {}),
      },
    },
    podTemplate: { ...RUNNER_PLACEMENT },
    verify: { testRestoreSchedule: '0 3 * * *' },
  });
  const waitObserved = (name: string) =>
    eventually(`BackupSchedule ${name} observed`, async () => {
      const cur = await getSchedule(ns, name);
      return cur.status?.observedGeneration === cur.metadata.generation ? cur : undefined;
    });

  beforeAll(async () => {
    ns = await createTestNamespace('s3clu');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-s3clu-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ALLOW_SUPERUSER_ASSERTIONS: 'true' } });
    await op.waitReady();
    clusterB = (await core.readNamespace({ name: 'kube-system' })).metadata!.uid!;
    dbA = await createTestDatabase('s3clua');
    dbB = await createTestDatabase('s3club');
    for (const [db, rows] of [
      [dbA, 300],
      [dbB, 20],
    ] as const) {
      await withClient(db.url, async (c) => {
        await c.query('create table orders (id int primary key, note text)');
        await c.query(`insert into orders select g, 'order ' || g from generate_series(1, ${rows}) g`);
      });
    }
    await createDbSecret(ns, 'db', dbSecretData(dbB.name));
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 's3-keys' },
        stringData: { AWS_ACCESS_KEY_ID: s3().accessKeyId, AWS_SECRET_ACCESS_KEY: s3().secretAccessKey },
      },
    });
  }, 300_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    if (ns) await deleteTestNamespace(ns);
    await kubelet?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it(
    "refuses another cluster's backups and restores, restores with foreignCluster Restore, and takes over with TakeOver",
    { timeout: 600_000 },
    async () => {
      // Cluster A owns the prefix and has a verified backup there.
      const first = await runner(
        ['backup', '--storage-url', url(), '--id', 'orders-backup-100'],
        runAs(CLUSTER_A, dbA.name),
      );
      expect(first.result, first.output).toMatchObject({ success: true });
      expect(await owner()).toMatchObject({ namespace: ns, name: 'orders', clusterId: CLUSTER_A });
      const before = await keys();

      // Cluster B's schedule of the same namespace/name: its backup fails at once, with the reason on status.
      await applySchedule(ns, 'orders', schedule());
      // The storage probe already says why this cluster may not back up there, before any backup runs.
      await waitScheduleCondition(
        ns,
        'orders',
        'StorageReady',
        'False',
        'StorageOwnedByOtherCluster',
        60_000,
      );
      const started = Date.now();
      await backupNow(ns, 'orders', 'one');
      const refused = await waitScheduleCondition(
        ns,
        'orders',
        'LastBackupSucceeded',
        'False',
        'StorageOwnedByOtherCluster',
        60_000,
        (cur) =>
          cur.status.lastBackupNow?.annotationValue === 'one' &&
          cur.status.lastBackupNow?.result === 'Failed',
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      const message = JSON.stringify(refused.status.conditions);
      expect(message).toContain(`cluster ${CLUSTER_A}`);
      expect(message).toContain(`cluster ${clusterB}`);
      const jobName = refused.status.lastBackupNow.jobName as string;
      const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${jobName}` }))
        .items;
      expect(pod!.spec!.containers[0]!.env!.find((e) => e.name === 'NXT_CLUSTER_ID')?.value).toBe(clusterB);
      expect(pod!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 'not retried').toBe(3);
      expect(await keys(), 'nothing written or deleted').toEqual(before);

      // A test restore (read-only: the verify CronJob's `test-restore --id latest`) is refused as well...
      await kubectl('-n', ns, 'create', 'job', '--from=cronjob/orders-verify', 'orders-verify-manual-1');
      await waitScheduleCondition(
        ns,
        'orders',
        'LastTestRestoreSucceeded',
        'False',
        'StorageOwnedByOtherCluster',
        90_000,
      );
      // ...and so is a restore of its backup into this cluster's database (what a restore Job runs).
      const restoreArgs = [
        'restore',
        '--storage-url',
        url(),
        '--id',
        'orders-backup-100',
        '--mode',
        'inPlace',
      ];
      const beforeB = await tableChecksum(dbB.url, 'orders');
      const noOptIn = await runner(restoreArgs, runAs(clusterB, dbB.name));
      expect(noOptIn.result, noOptIn.output).toMatchObject({
        success: false,
        reason: 'StorageOwnedByOtherCluster',
      });
      expect(await tableChecksum(dbB.url, 'orders')).toEqual(beforeB);

      // Disaster recovery: foreignCluster {cluster A, Restore} lets this cluster read, never write.
      const restoreFromA = { clusterId: CLUSTER_A, allow: 'Restore' };
      await patchSchedule(ns, 'orders', { spec: { storage: { s3: { foreignCluster: restoreFromA } } } });
      await waitObserved('orders');
      await kubectl('-n', ns, 'create', 'job', '--from=cronjob/orders-verify', 'orders-verify-manual-2');
      const tested = await waitScheduleCondition(
        ns,
        'orders',
        'LastTestRestoreSucceeded',
        'True',
        'RestoreVerified',
        120_000,
      );
      expect(tested.status.lastTestRestore).toMatchObject({
        backupId: 'orders-backup-100',
        jobName: 'orders-verify-manual-2',
      });
      const optIn = await runner(
        restoreArgs,
        runAs(clusterB, dbB.name, {
          NXT_S3_FOREIGN_CLUSTER_ID: CLUSTER_A,
          NXT_S3_FOREIGN_CLUSTER_ALLOW: 'Restore',
        }),
      );
      expect(optIn.result, optIn.output).toMatchObject({ success: true });
      expect(await tableChecksum(dbB.url, 'orders')).toEqual(await tableChecksum(dbA.url, 'orders'));
      await backupNow(ns, 'orders', 'two');
      await waitScheduleCondition(
        ns,
        'orders',
        'LastBackupSucceeded',
        'False',
        'StorageOwnedByOtherCluster',
        90_000,
        (cur) =>
          cur.status.lastBackupNow?.annotationValue === 'two' &&
          cur.status.lastBackupNow?.result === 'Failed',
      );
      expect(await owner()).toMatchObject({ clusterId: CLUSTER_A });
      expect((await keys()).filter((k) => !k.includes('/.pins/') && !k.includes('/.restores/'))).toEqual(
        before,
      );

      // The primary's owner object is gone (a prefix written before owner objects, or a lifecycle rule expired
      // it): the standby's verify still reads without claiming, its backup is refused, and the primary keeps
      // backing up there and claims the prefix again.
      const c = s3Client(s3());
      try {
        await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}/.nxt-owner.json` }));
      } finally {
        c.destroy();
      }
      const noOwner = async () => {
        await expect(owner(), 'still no owner object').rejects.toMatchObject({ name: 'NoSuchKey' });
      };
      await kubectl('-n', ns, 'create', 'job', '--from=cronjob/orders-verify', 'orders-verify-manual-3');
      await waitScheduleCondition(
        ns,
        'orders',
        'LastTestRestoreSucceeded',
        'True',
        'RestoreVerified',
        120_000,
        (cur) => cur.status.lastTestRestore?.jobName === 'orders-verify-manual-3',
      );
      await noOwner();
      await backupNow(ns, 'orders', 'two-b');
      const standbyRefused = await waitScheduleCondition(
        ns,
        'orders',
        'LastBackupSucceeded',
        'False',
        'StorageOwnedByOtherCluster',
        90_000,
        (cur) =>
          cur.status.lastBackupNow?.annotationValue === 'two-b' &&
          cur.status.lastBackupNow?.result === 'Failed',
      );
      expect(JSON.stringify(standbyRefused.status.conditions)).toContain(
        `foreignCluster says this prefix is cluster ${CLUSTER_A}`,
      );
      await noOwner();
      const primary = await runner(
        ['backup', '--storage-url', url(), '--id', 'orders-backup-150'],
        runAs(CLUSTER_A, dbA.name),
      );
      expect(primary.result, primary.output).toMatchObject({ success: true });
      expect(await owner()).toMatchObject({ clusterId: CLUSTER_A });

      // Cluster A is gone for good: TakeOver. This cluster's next backup takes the prefix over...
      await patchSchedule(ns, 'orders', {
        spec: { storage: { s3: { foreignCluster: { allow: 'TakeOver' } } } },
      });
      await waitObserved('orders');
      await backupNow(ns, 'orders', 'three');
      await waitScheduleCondition(ns, 'orders', 'LastBackupSucceeded', 'True', 'BackupVerified', 120_000);
      expect(await owner()).toMatchObject({ clusterId: clusterB, takenOverFrom: CLUSTER_A });
      // ...and cluster A, should it come back with the same manifests, is refused from then on.
      const back = await runner(
        ['backup', '--storage-url', url(), '--id', 'orders-backup-900'],
        runAs(CLUSTER_A, dbA.name),
      );
      expect(back.result, back.output).toMatchObject({
        success: false,
        reason: 'StorageOwnedByOtherCluster',
      });
    },
  );
});
