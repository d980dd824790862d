import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { RUNNER_PLACEMENT, type TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createDbSecret,
  dbSecretData,
  fillDatabase,
  getSchedule,
  patchSchedule,
  scheduleJobs,
  startRunnerKubelet,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitForEvents, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';
import { createBucket, listObjects, useS3Server, type S3Credentials } from '../support/s3.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// BackupSchedules whose location is a bucket on a real S3 server (SeaweedFS): the operator builds the Job
// pods with the S3 env and Secret references, the test kubelet runs them (the runner from the sources), and
// RollbackPlans restore from the bucket.

const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'notes'];
const checksums = async (url: string) =>
  Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await tableChecksum(url, t)] as const)));

const s3 = useS3Server({ https: true });

describe.skipIf(inject('existingCluster'))('BackupSchedule with an S3 location', () => {
  const { core, batch } = testClients();
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  let bucket = '';
  let db: { name: string; url: string };

  const s3Storage = (prefix: string, secret = 's3-keys', b = bucket) => ({
    s3: {
      endpoint: s3().endpoint,
      bucket: b,
      prefix,
      region: s3().region,
      forcePathStyle: true,
      credentialsSecretRef: { name: secret },
    },
  });
  const s3Schedule = (prefix: string, extra: Record<string, unknown> = {}, secret?: string, b?: string) => ({
    database: { secretRef: { name: 'db' } },
    storage: s3Storage(prefix, secret, b),
    podTemplate: { ...RUNNER_PLACEMENT },
    ...extra,
  });
  const keysSecret = async (name: string, c: S3Credentials) =>
    core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name },
        stringData: { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey },
      },
    });

  /** backup-now=value; the new Job's name (the backup id) once the operator recorded it. */
  async function takeBackup(name: string, value: string) {
    const before = new Set((await scheduleJobs(ns, name)).map((j) => j.metadata!.name));
    await backupNow(ns, name, value);
    const job = await eventually('a new Job', async () =>
      (await scheduleJobs(ns, name)).find((j) => !before.has(j.metadata!.name)),
    );
    await waitJobRecorded(ns, job.metadata!.name!, 120_000);
    return job.metadata!.name!;
  }

  beforeAll(async () => {
    ns = await createTestNamespace('bks3');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-bks3-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ALLOW_SUPERUSER_ASSERTIONS: 'true' } });
    await op.waitReady();
    bucket = await createBucket(s3());
    db = await createTestDatabase('bks3');
    await fillDatabase(db.url, db.name);
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    await keysSecret('s3-keys', s3());
    await keysSecret('s3-read-only', s3().readOnly);
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    await deleteTestNamespace(ns);
    await kubelet?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it(
    'backs up into the bucket on request, test-restores from it, and names the location',
    { timeout: 300_000 },
    async () => {
      await applySchedule(
        ns,
        'shop-db',
        s3Schedule('shop', { verify: { testRestoreSchedule: '0 3 * * *' } }),
      );
      await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
      const id = await takeBackup('shop-db', 'first');
      await waitScheduleCondition(ns, 'shop-db', 'LastBackupSucceeded', 'True', 'BackupVerified');
      const keys = (await listObjects(s3(), bucket, 'shop/')).map((o) => o.key);
      // The prefix's owner object (the schedule's namespace/name, written on first use) sorts first.
      expect(keys).toEqual([`shop/.nxt-owner.json`, `shop/${id}.dump`, `shop/${id}.manifest.json`]);
      const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${id}` })).items;
      const c = pod!.spec!.containers[0]!;
      expect(c.args).toContain(`s3://${bucket}/shop`);
      expect(pod!.spec!.volumes!.map((v) => v.name)).toEqual(['tmp']);
      expect(c.env!.find((e) => e.name === 'AWS_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef).toEqual({
        name: 's3-keys',
        key: 'AWS_SECRET_ACCESS_KEY',
      });
      await waitForEvents(
        ns,
        'shop-db',
        (events) => events.some((e) => e.message.includes(`into s3://${bucket}/shop`)),
        `an Event naming s3://${bucket}/shop`,
      );

      await kubectl(
        'annotate',
        '-n',
        ns,
        'backupschedule/shop-db',
        'rollback.nxtnewday.io/test-restore-now=latest',
      );
      await waitScheduleCondition(
        ns,
        'shop-db',
        'LastTestRestoreSucceeded',
        'True',
        'RestoreVerified',
        120_000,
      );
      const s = await getSchedule(ns, 'shop-db');
      expect(s.status.lastTestRestore).toMatchObject({ backupId: id, result: 'Succeeded' });
      expect(s.status.storageLocation).toBe(`s3://${bucket}/shop`);
      const location = { namespace: ns, schedule: 'shop-db', type: 's3', location: `s3://${bucket}/shop` };
      expect(await metricValue(op.metricsUrl, 'nxt_backup_location_info', location)).toBe(1);
      expect(JSON.stringify(s) + op.logs(), 'no secret key in status or operator logs').not.toContain(
        s3().secretAccessKey,
      );
    },
  );

  it(
    'the verify CronJob test-restores the newest backup from the bucket and the schedule records it',
    { timeout: 300_000 },
    async () => {
      const newest = await takeBackup('shop-db', 'for-scheduled-verify');
      // What the CronJob's schedule does at 03:00, now: a Job from its jobTemplate (kubectl create job --from).
      await kubectl('-n', ns, 'create', 'job', '--from=cronjob/shop-db-verify', 'shop-db-verify-manual-1');
      await waitJobRecorded(ns, 'shop-db-verify-manual-1', 120_000);
      const s = await eventually('the scheduled test restore recorded', async () => {
        const cur = await getSchedule(ns, 'shop-db');
        return cur.status.lastTestRestore?.jobName === 'shop-db-verify-manual-1' ? cur : undefined;
      });
      expect(s.status.lastTestRestore).toMatchObject({ backupId: newest, result: 'Succeeded' });
      const c = s.status.conditions.find((x: { type: string }) => x.type === 'LastTestRestoreSucceeded');
      expect(c).toMatchObject({ status: 'True', reason: 'RestoreVerified' });
      const [pod] = (
        await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=shop-db-verify-manual-1' })
      ).items;
      expect(pod!.spec!.containers[0]!.args).toContain(`s3://${bucket}/shop`);
    },
  );

  it(
    'a database-scope plan restores from the bucket, with its safety backup there too',
    { timeout: 300_000 },
    async () => {
      const good = await checksums(db.url);
      await withClient(db.url, async (c) => {
        await c.query('update pgbench_accounts set abalance = abalance - 500 where aid % 7 = 0');
        await c.query('delete from notes where id > 9000');
      });
      expect(await checksums(db.url)).not.toEqual(good);
      await applyPlan(ns, 'restore-db', {
        scope: 'database',
        reason: 'bad migration',
        targets: { database: { backupScheduleRef: { name: 'shop-db' } } },
      });
      const plan = await waitPlanPhase(ns, 'restore-db', ['Succeeded', 'Failed'], 240_000);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(await checksums(db.url)).toEqual(good);
      const keys = (await listObjects(s3(), bucket, 'shop/')).map((o) => o.key);
      expect(
        keys.some((k) => /shop\/restore-db-safety-[0-9a-f]{8}\.manifest\.json$/.test(k)),
        keys.join(),
      ).toBe(true);
      expect(
        keys.filter((k) => k.includes('/.pins/')),
        'the plan released its pin',
      ).toEqual([]);
    },
  );

  it(
    'a full-scope plan restores the data from the bucket and rolls the Deployment back',
    { timeout: 300_000 },
    async () => {
      await takeBackup('shop-db', 'before-release');
      await deploymentWithHistory(ns, 'checkout', ['shop/checkout:1.5.0', 'shop/checkout:1.6.0']);
      const good = await checksums(db.url);
      await withClient(db.url, (c) => c.query('delete from notes where id > 5000'));
      await applyPlan(ns, 'full', {
        scope: 'full',
        reason: 'bad release',
        targets: {
          deployments: [{ name: 'checkout' }],
          database: { backupScheduleRef: { name: 'shop-db' } },
        },
        validation: { timeout: '2m' },
      });
      const plan = await waitPlanPhase(ns, 'full', ['Succeeded', 'Failed'], 240_000);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(await checksums(db.url)).toEqual(good);
      expect(await imageOf(ns, 'checkout')).toBe('shop/checkout:1.5.0');
    },
  );

  it(
    'backs up over HTTPS trusting the caBundleSecretRef, and says why without it',
    { timeout: 300_000 },
    async () => {
      await core.createNamespacedSecret({
        namespace: ns,
        body: { metadata: { name: 's3-ca' }, stringData: { 'ca.crt': s3().caPem! } },
      });
      const tls = (prefix: string, withCa: boolean) => {
        const spec = s3Schedule(prefix);
        return {
          ...spec,
          storage: {
            s3: {
              ...spec.storage.s3,
              endpoint: s3().tlsEndpoint!,
              ...(withCa ? { caBundleSecretRef: { name: 's3-ca' } } : {}),
            },
          },
        };
      };
      await applySchedule(ns, 'tls', tls('tls', true));
      await waitScheduleCondition(ns, 'tls', 'Ready', 'True', 'Scheduled');
      const id = await takeBackup('tls', 'one');
      await waitScheduleCondition(ns, 'tls', 'LastBackupSucceeded', 'True', 'BackupVerified');
      expect((await listObjects(s3(), bucket, 'tls/')).map((o) => o.key)).toEqual([
        `tls/.nxt-owner.json`,
        `tls/${id}.dump`,
        `tls/${id}.manifest.json`,
      ]);
      const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${id}` })).items;
      expect(pod!.spec!.volumes!.find((v) => v.name === 's3-ca')?.secret?.secretName).toBe('s3-ca');

      await applySchedule(ns, 'tls-no-ca', tls('tls-no-ca', false));
      // The storage probe says so before any backup; the CronJob is in place all the same.
      await waitScheduleCondition(ns, 'tls-no-ca', 'StorageReady', 'False', 'StorageCertificateUntrusted');
      await takeBackup('tls-no-ca', 'one');
      const f = await waitScheduleCondition(
        ns,
        'tls-no-ca',
        'LastBackupSucceeded',
        'False',
        'StorageCertificateUntrusted',
      );
      const msg = JSON.stringify(f.status.conditions);
      expect(msg).toContain('certificate');
      expect(msg).toContain('spec.storage.s3.caBundleSecretRef');
      expect(await listObjects(s3(), bucket, 'tls-no-ca/')).toEqual([]);
    },
  );

  it('reports BackupImmutable when the schedule asks for Object Lock', { timeout: 300_000 }, async () => {
    const locked = await createBucket(s3(), { objectLock: true });
    const spec = s3Schedule('locked', {}, 's3-keys', locked);
    await applySchedule(ns, 'locked', {
      ...spec,
      storage: { s3: { ...spec.storage.s3, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 } } },
    });
    await waitScheduleCondition(ns, 'locked', 'Ready', 'True', 'Scheduled');
    const id = await takeBackup('locked', 'one');
    const s = await waitScheduleCondition(ns, 'locked', 'BackupImmutable', 'True', 'ObjectLockInForce');
    expect(JSON.stringify(s.status.conditions)).toContain(`backup ${id} is locked (GOVERNANCE) until`);

    // The spec no longer asks for Object Lock: the reading of the old spec leaves status.
    await patchSchedule(ns, 'locked', { spec: { storage: { s3: { objectLock: null } } } });
    await eventually('BackupImmutable removed', async () => {
      const cur = await getSchedule(ns, 'locked');
      const types = (cur.status.conditions ?? []).map((c: { type: string }) => c.type);
      return cur.status.observedGeneration === cur.metadata.generation && !types.includes('BackupImmutable')
        ? cur
        : undefined;
    });
  });

  it(
    'wrong credentials fail the backup Job at once (exit 3, podFailurePolicy FailJob: one pod) and the schedule says why',
    { timeout: 300_000 },
    async () => {
      await keysSecret('s3-wrong', { ...s3(), secretAccessKey: 'not-the-secret-key-0123456789' });
      await applySchedule(ns, 'wrongkeys', s3Schedule('wrongkeys', {}, 's3-wrong'));
      await waitScheduleCondition(ns, 'wrongkeys', 'StorageReady', 'False', 'StorageCredentialsInvalid');
      const started = Date.now();
      await backupNow(ns, 'wrongkeys', 'one');
      const s = await waitScheduleCondition(
        ns,
        'wrongkeys',
        'LastBackupSucceeded',
        'False',
        'StorageCredentialsInvalid',
        60_000,
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(JSON.stringify(s.status.conditions)).toContain('spec.storage.s3.credentialsSecretRef');
      const [job] = (await scheduleJobs(ns, 'wrongkeys')).filter(
        (j) => j.metadata?.labels?.['app.kubernetes.io/component'] === 'backup',
      );
      const name = job!.metadata!.name!;
      const failed = await eventually('the Job failed by its podFailurePolicy', async () => {
        const j = await batch.readNamespacedJob({ namespace: ns, name });
        const c = (j.status?.conditions ?? []).find((x) => x.type === 'Failed' && x.status === 'True');
        return c ? { j, c } : undefined;
      });
      expect(failed.c.reason).toBe('PodFailurePolicy');
      const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` })).items;
      expect(pods, 'no retry: exactly one pod').toHaveLength(1);
      const terminated = pods[0]!.status?.containerStatuses?.find((c) => c.name === 'runner')?.state
        ?.terminated;
      expect(terminated?.exitCode).toBe(3);
      expect(failed.j.status?.failed ?? 0).toBe(1);
      expect(JSON.stringify(s) + op.logs(), 'no secret key in status or operator logs').not.toContain(
        'not-the-secret-key-0123456789',
      );
    },
  );

  it('refuses bucket names S3 would refuse, at admission', async () => {
    const bad = ['my..bucket', '192.168.1.10', 'xn--bucket', 'bucket-s3alias', 'bucket--ol-s3', 'a_b'];
    for (const [i, b] of bad.entries()) {
      const err = await applySchedule(ns, `badbucket-${i}`, s3Schedule('p', {}, 's3-keys', b)).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(String(err?.message ?? 'admitted'), b).toContain('spec.storage.s3.bucket');
    }
  });

  it(
    'reports AccessDenied, a missing bucket and a missing Secret as conditions with reasons',
    { timeout: 300_000 },
    async () => {
      await applySchedule(ns, 'denied', s3Schedule('denied', {}, 's3-read-only'));
      await waitScheduleCondition(ns, 'denied', 'StorageReady', 'False', 'StorageAccessDenied');
      await takeBackup('denied', 'one');
      const d = await waitScheduleCondition(
        ns,
        'denied',
        'LastBackupSucceeded',
        'False',
        'StorageAccessDenied',
      );
      expect(JSON.stringify(d.status.conditions)).toContain('s3:PutObject');

      await applySchedule(ns, 'nobucket', s3Schedule('x', {}, 's3-keys', 'no-such-bucket-here'));
      await waitScheduleCondition(ns, 'nobucket', 'StorageReady', 'False', 'StorageBucketNotFound');
      await takeBackup('nobucket', 'one');
      await waitScheduleCondition(ns, 'nobucket', 'LastBackupSucceeded', 'False', 'StorageBucketNotFound');

      await applySchedule(ns, 'nosecret', s3Schedule('y', {}, 'missing-keys'));
      const n = await waitScheduleCondition(ns, 'nosecret', 'Ready', 'False', 'SecretNotFound');
      expect(JSON.stringify(n.status.conditions)).toContain('spec.storage.s3.credentialsSecretRef');
    },
  );
});
