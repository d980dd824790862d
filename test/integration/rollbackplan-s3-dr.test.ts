import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { RunnerResultSchema } from '../../operator/backup/runner/result.js';
import { RUNNER_PLACEMENT, type TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  createDbSecret,
  dbSecretData,
  getSchedule,
  patchSchedule,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import { createBucket, s3RunnerEnv, useS3Server } from '../support/s3.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';

// Disaster recovery with a RollbackPlan: cluster A is gone, its backups are in its S3 prefix, and a fresh
// cluster B has a BackupSchedule of the same namespace/name that has recorded no backup of its own. A plan
// naming cluster A's backup by id restores it when the schedule has spec.storage.s3.foreignCluster (Restore),
// and fails BackupNotFound, with a hint at foreignCluster, when it has not. "Cluster A" is the runner run
// in-process with NXT_CLUSTER_ID=cluster-a (what cluster A's operator gives its Jobs); "cluster B" is this
// cluster: a real operator whose Jobs the test kubelet runs. Real SeaweedFS, real PostgreSQL.

const s3 = useS3Server();

describe.skipIf(inject('existingCluster'))(
  "a RollbackPlan restores another cluster's backup from its prefix",
  () => {
    const { core, batch } = testClients();
    const CLUSTER_A = 'cluster-a';
    const BACKUP = 'orders-backup-100';
    const prefix = 'dr/orders';
    let bucket = '';
    let ns = '';
    let root = '';
    let kubelet: TestKubelet;
    let op: OperatorProcess;
    const kubeletLog: string[] = [];
    let dbA: { name: string; url: string };
    let dbB: { name: string; url: string };

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
    });
    const planSpec = (scheduleName: string) => ({
      scope: 'database',
      reason: 'cluster A is lost: restore its last backup',
      targets: {
        database: {
          backupScheduleRef: { name: scheduleName },
          backup: { id: BACKUP },
          // A Restore-only prefix takes no writes from this cluster, so no safety backup (and the database
          // of a fresh cluster holds nothing to keep).
          safetyBackup: false,
        },
      },
    });
    const restoreJobs = async (plan: string) =>
      (await batch.listNamespacedJob({ namespace: ns })).items
        .map((j) => j.metadata!.name!)
        .filter((n) => n.startsWith(`${plan}-restore`));

    beforeAll(async () => {
      bucket = await createBucket(s3());
      root = mkdtempSync(join(tmpdir(), 'nxt-s3dr-'));
      ns = await createTestNamespace('s3dr');
      kubelet = await startRunnerKubelet(root, (m) => kubeletLog.push(m));
      op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
      await op.waitReady();
      dbA = await createTestDatabase('s3dra');
      dbB = await createTestDatabase('s3drb');
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
      // Cluster A's schedule "orders" of this namespace backs up into the prefix (and owns it).
      const terminationLog = join(root, 'termination-a');
      const lines: string[] = [];
      const code = await runnerMain(
        [
          'backup',
          '--storage-url',
          `s3://${bucket}/${prefix}`,
          '--id',
          BACKUP,
          '--termination-log',
          terminationLog,
        ],
        s3RunnerEnv(s3(), dbA.name, {
          extra: {
            NXT_NAMESPACE: ns,
            NXT_SCHEDULE_NAME: 'orders',
            NXT_SCHEDULE_UID: 'uid-cluster-a',
            NXT_BACKUP_PURPOSE: 'scheduled',
            NXT_CLUSTER_ID: CLUSTER_A,
          },
        }),
        { writeLog: (l) => lines.push(l) },
      );
      const result = RunnerResultSchema.parse(JSON.parse(readFileSync(terminationLog, 'utf8')));
      expect(result, lines.join('\n')).toMatchObject({ success: true, id: BACKUP });
      expect(code).toBe(0);
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
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it(
      'without foreignCluster the plan fails BackupNotFound with a hint; with foreignCluster Restore it restores the named backup once',
      { timeout: 600_000 },
      async () => {
        const beforeB = await tableChecksum(dbB.url, 'orders');

        // The same overlay applied to cluster B without foreignCluster: the plan cannot use cluster A's backup.
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
        await applyPlan(ns, 'no-opt-in', planSpec('orders'));
        const refused = await waitPlanPhase(ns, 'no-opt-in', ['Succeeded', 'Failed'], 120_000);
        expect(refused.status.phase, JSON.stringify(refused.status.conditions)).toBe('Failed');
        const failed = JSON.stringify(refused.status);
        expect(failed).toContain('BackupNotFound');
        expect(failed).toContain(`s3://${bucket}/${prefix}`);
        expect(failed).toContain('spec.storage.s3.foreignCluster');
        expect(await restoreJobs('no-opt-in')).toEqual([]);
        expect(await tableChecksum(dbB.url, 'orders')).toEqual(beforeB);

        // Disaster recovery: the schedule may read cluster A's prefix. It has recorded nothing (the backup is
        // not in its status.backups).
        await patchSchedule(ns, 'orders', {
          spec: { storage: { s3: { foreignCluster: { clusterId: CLUSTER_A, allow: 'Restore' } } } },
        });
        const observed = await eventually('BackupSchedule orders observed', async () => {
          const cur = await getSchedule(ns, 'orders');
          return cur.status?.observedGeneration === cur.metadata.generation ? cur : undefined;
        });
        expect(observed.status?.backups ?? []).toEqual([]);

        // A dry run says where the backup comes from.
        await applyPlan(ns, 'dr-dry', { ...planSpec('orders'), dryRun: true });
        const dry = await waitPlanPhase(ns, 'dr-dry', ['DryRunComplete', 'Failed'], 120_000);
        expect(dry.status.dryRunReport?.database, JSON.stringify(dry.status)).toMatchObject({
          backupId: BACKUP,
          source: 'prefix',
          location: `s3://${bucket}/${prefix}`,
        });
        expect(dry.status.dryRunReport.wouldSucceed).toBe(true);

        await applyPlan(ns, 'dr', planSpec('orders'));
        const plan = await waitPlanPhase(ns, 'dr', ['Succeeded', 'Failed'], 300_000);
        expect(plan.status.phase, JSON.stringify(plan.status)).toBe('Succeeded');
        expect(plan.status.database).toMatchObject({ backupScheduleRef: 'orders', backupId: BACKUP });
        const selected = (plan.status.steps as { name: string; message?: string }[]).find(
          (s) => s.name === 'CheckBackupSelected',
        );
        expect(selected?.message).toContain(`taken from the prefix s3://${bucket}/${prefix}`);
        expect(await tableChecksum(dbB.url, 'orders')).toEqual(await tableChecksum(dbA.url, 'orders'));
        expect(await restoreJobs('dr')).toEqual(['dr-restore']);
        // The plan stays settled: no second restore Job appears.
        await eventually(
          'plan dr still Succeeded with one restore Job',
          async () => ((await restoreJobs('dr')).length === 1 ? true : undefined),
          10_000,
        );
      },
    );
  },
);
