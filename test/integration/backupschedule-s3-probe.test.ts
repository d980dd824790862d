import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { RUNNER_PLACEMENT, type TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  createDbSecret,
  getSchedule,
  patchSchedule,
  scheduleJobs,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { condition } from '../support/plans.js';
import { bucketName, createBucket, listObjects, useS3Server, type S3Credentials } from '../support/s3.js';

// The schedule-level storage probe: a BackupSchedule with an S3 location gets StorageReady (and Ready) from a
// short probe Job within a minute of being applied, before any backup runs, against a real S3 server
// (SeaweedFS) with the runner run by the test kubelet. No database is needed: the probe never connects to one.

const s3 = useS3Server();
const PROBE = 'app.kubernetes.io/component=storage-probe';

describe.skipIf(inject('existingCluster'))('BackupSchedule storage probe', () => {
  const { core, batch } = testClients();
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  let bucket = '';

  const s3Schedule = (b: string, prefix: string, secret: string, extra: Record<string, unknown> = {}) => ({
    database: { secretRef: { name: 'db' } },
    storage: {
      s3: {
        endpoint: s3().endpoint,
        bucket: b,
        prefix,
        region: s3().region,
        forcePathStyle: true,
        credentialsSecretRef: { name: secret },
        ...extra,
      },
    },
    podTemplate: { ...RUNNER_PLACEMENT },
  });
  const keys = (c: S3Credentials) => ({
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
  });
  const keysSecret = (name: string, c: S3Credentials) =>
    core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: keys(c) } });
  const probeJobs = async (schedule: string) =>
    (await scheduleJobs(ns, schedule)).filter(
      (j) => j.metadata?.labels?.['app.kubernetes.io/component'] === 'storage-probe',
    );
  const otherJobs = async (schedule: string) =>
    (await scheduleJobs(ns, schedule)).filter(
      (j) => j.metadata?.labels?.['app.kubernetes.io/component'] !== 'storage-probe',
    );

  beforeAll(async () => {
    ns = await createTestNamespace('bkprobe');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-bkprobe-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    bucket = await createBucket(s3());
    // The probe needs no database; the schedule still names a credentials Secret with the keys it checks.
    await createDbSecret(ns, 'db', {
      host: '127.0.0.1',
      port: '1',
      database: 'x',
      username: 'x',
      password: 'x',
    });
    await keysSecret('s3-keys', s3());
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
    'a working location: StorageReady=True and Ready=True from one probe Job that runs without the database credentials',
    { timeout: 180_000 },
    async () => {
      const started = Date.now();
      await applySchedule(ns, 'good', s3Schedule(bucket, 'good', 's3-keys'));
      const s = await waitScheduleCondition(ns, 'good', 'StorageReady', 'True', 'StorageReachable', 60_000);
      expect(Date.now() - started).toBeLessThan(60_000);
      await waitScheduleCondition(ns, 'good', 'Ready', 'True', 'Scheduled');
      expect(condition(s, 'StorageReady').message).toContain(`s3://${bucket}/good`);
      expect(s.status.storageCheck).toMatchObject({ attempt: 1, result: 'Succeeded' });
      const jobs = await probeJobs('good');
      expect(jobs).toHaveLength(1);
      expect(jobs[0]!.metadata!.ownerReferences![0]).toMatchObject({
        kind: 'BackupSchedule',
        name: 'good',
        uid: s.metadata.uid,
        controller: true,
      });
      expect(jobs[0]!.spec).toMatchObject({
        backoffLimit: 0,
        activeDeadlineSeconds: 120,
        ttlSecondsAfterFinished: 3600,
      });
      const env = jobs[0]!.spec!.template.spec!.containers[0]!.env!.map((e) => e.name);
      expect(env).toContain('AWS_SECRET_ACCESS_KEY');
      expect(env).not.toContain('PGPASSWORD');
      expect(await otherJobs('good'), 'no backup ran').toEqual([]);
      expect(await listObjects(s3(), bucket, 'good/'), 'the probe left nothing in the bucket').toEqual([]);

      // A spec change that is not the location (the schedule) starts no new probe.
      await patchSchedule(ns, 'good', { spec: { schedule: '15 3 * * *' } });
      await eventually('the new generation observed', async () => {
        const cur = await getSchedule(ns, 'good');
        return (
          cur.status.observedGeneration === cur.metadata.generation && cur.status.schedule === '15 3 * * *'
        );
      });
      expect(await probeJobs('good')).toHaveLength(1);
    },
  );

  it(
    'a missing bucket: StorageReady=False StorageBucketNotFound within 60 s without a backup; the bucket created and the re-probe annotation set, it turns True',
    { timeout: 240_000 },
    async () => {
      const missing = bucketName('later');
      const started = Date.now();
      await applySchedule(ns, 'nobucket', s3Schedule(missing, 'a', 's3-keys'));
      const s = await waitScheduleCondition(
        ns,
        'nobucket',
        'StorageReady',
        'False',
        'StorageBucketNotFound',
        60_000,
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(condition(s, 'StorageReady').message).toContain(`s3://${missing}/a`);
      expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'StorageBucketNotFound' });
      expect(condition(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'StorageBucketNotFound' });
      expect(await otherJobs('nobucket'), 'no backup ran').toEqual([]);
      const check = s.status.storageCheck;
      expect(
        Date.parse(check.nextAttemptAt) - Date.parse(check.checkedAt),
        'probed again on the slow backoff (the bucket may be created outside the cluster)',
      ).toBe(300_000);
      const events = await core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: 'involvedObject.name=nobucket',
      });
      expect(events.items.map((e) => e.reason)).toContain('StorageBucketNotFound');

      // No tight loop: nothing changed, no second probe.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(await probeJobs('nobucket')).toHaveLength(1);

      await createBucket(s3(), { name: missing });
      // No spec change: the re-probe annotation (its value goes into the hash) probes at once.
      await patchSchedule(ns, 'nobucket', {
        metadata: { annotations: { 'rollback.nxtnewday.io/probe-storage': 'bucket-created' } },
      });
      const fixed = await waitScheduleCondition(
        ns,
        'nobucket',
        'StorageReady',
        'True',
        'StorageReachable',
        60_000,
      );
      expect(fixed.status.storageCheck).toMatchObject({ attempt: 1, result: 'Succeeded' });
      await waitScheduleCondition(ns, 'nobucket', 'Ready', 'True', 'Scheduled');
      // The old location's probe Job is cleaned up: one Job per hash, only the current one kept.
      await eventually('the old probe Job deleted', async () => (await probeJobs('nobucket')).length === 1);
    },
  );

  it(
    'a wrong secret key: StorageCredentialsInvalid within 60 s; the Secret fixed, the probe runs again on its own',
    { timeout: 240_000 },
    async () => {
      const wrongKey = 'not-the-secret-key-0123456789';
      await keysSecret('s3-wrong', { ...s3(), secretAccessKey: wrongKey });
      const started = Date.now();
      await applySchedule(ns, 'wrongkeys', s3Schedule(bucket, 'wk', 's3-wrong'));
      const s = await waitScheduleCondition(
        ns,
        'wrongkeys',
        'StorageReady',
        'False',
        'StorageCredentialsInvalid',
        60_000,
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'StorageCredentialsInvalid' });
      expect(condition(s, 'StorageReady').message).toContain('spec.storage.s3.credentialsSecretRef');
      expect(JSON.stringify(s) + op.logs(), 'no secret key in status or operator logs').not.toContain(
        wrongKey,
      );

      // Secrets are not watched: the schedule re-reads it (every 60 s while the probe failed for good), and
      // its new resourceVersion is a new probe.
      await core.replaceNamespacedSecret({
        namespace: ns,
        name: 's3-wrong',
        body: { metadata: { name: 's3-wrong' }, stringData: keys(s3()) },
      });
      await waitScheduleCondition(ns, 'wrongkeys', 'StorageReady', 'True', 'StorageReachable', 120_000);
      await waitScheduleCondition(ns, 'wrongkeys', 'Ready', 'True', 'Scheduled');
    },
  );

  it('an unreachable endpoint is retried with a backoff, not in a loop', { timeout: 240_000 }, async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    await applySchedule(ns, 'down', {
      ...s3Schedule(bucket, 'down', 's3-keys', { endpoint: `http://127.0.0.1:${port}` }),
    });
    const s = await waitScheduleCondition(ns, 'down', 'StorageReady', 'False', 'StorageUnreachable', 60_000);
    expect(condition(s, 'Stalled')).toMatchObject({ status: 'False' });
    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'StorageUnreachable' });
    const check = s.status.storageCheck;
    expect(check).toMatchObject({ attempt: 1, result: 'Failed', reason: 'StorageUnreachable' });
    const delay = Date.parse(check.nextAttemptAt) - Date.parse(check.checkedAt);
    expect(delay).toBe(30_000);
    // The second attempt comes after the backoff, and only then.
    const second = await eventually(
      'the second probe',
      async () => {
        const cur = await getSchedule(ns, 'down');
        return cur.status.storageCheck?.attempt === 2 && cur.status.storageCheck.result ? cur : undefined;
      },
      120_000,
      500,
    );
    const created = (await batch.listNamespacedJob({ namespace: ns, labelSelector: PROBE })).items
      .filter((j) => j.metadata?.labels?.['rollback.nxtnewday.io/backup-schedule'] === 'down')
      .map((j) => j.metadata!.name!);
    expect(created.length, created.join()).toBeLessThanOrEqual(2);
    const c2 = second.status.storageCheck;
    expect(Date.parse(c2.nextAttemptAt) - Date.parse(c2.checkedAt), 'the backoff doubles').toBe(60_000);
    // The attempt-2 Job was created only after the backoff (whole seconds: creationTimestamp has no more).
    const job2 = (await batch.listNamespacedJob({ namespace: ns, labelSelector: PROBE })).items.find(
      (j) => j.metadata?.name === c2.jobName,
    );
    expect(job2, `attempt 2 Job ${c2.jobName}`).toBeDefined();
    expect(new Date(job2!.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(
      Date.parse(check.checkedAt) + 30_000,
    );
    // A retry keeps the failure (no flap through StorageCheckInProgress) and sends no new Events.
    expect(condition(second, 'StorageReady')).toMatchObject({
      status: 'False',
      reason: 'StorageUnreachable',
    });
    const events = (
      await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=down' })
    ).items;
    const count = (reason: string) =>
      events.filter((e) => e.reason === reason).reduce((n, e) => n + (e.count ?? 1), 0);
    expect(count('StorageCheckStarted'), 'one StorageCheckStarted, none per retry').toBe(1);
    expect(count('StorageUnreachable'), 'one Warning, none per retry').toBe(1);
  });

  it('a claim-backed schedule has StorageReady=True without a probe Job', { timeout: 120_000 }, async () => {
    await applySchedule(ns, 'onclaim', {
      database: { secretRef: { name: 'db' } },
      storage: { persistentVolumeClaim: { create: { size: '1Gi' } } },
      podTemplate: { ...RUNNER_PLACEMENT },
    });
    await waitScheduleCondition(ns, 'onclaim', 'StorageReady', 'True', 'ClaimCreated');
    const s = await waitScheduleCondition(ns, 'onclaim', 'Ready', 'True', 'Scheduled');
    expect(s.status.storageCheck).toBeUndefined();
    expect(await probeJobs('onclaim')).toEqual([]);
  });

  it(
    'an operator upgrade does not probe working schedules again nor flip Ready (the image is not in the hash)',
    { timeout: 180_000 },
    async () => {
      // After the first test: 'good' probed once and is Ready.
      const before = await waitScheduleCondition(ns, 'good', 'Ready', 'True', 'Scheduled');
      const jobsBefore = (await probeJobs('good')).map((j) => j.metadata!.name);
      expect(jobsBefore).toHaveLength(1);
      await op.kill();
      op = await startOperator({
        env: { WATCH_NAMESPACES: ns, OPERATOR_IMAGE: 'nxt-rollback-operator:test-next' },
      });
      await op.waitReady();
      // The new operator reconciles it (its CronJob now names the new image), and starts no probe.
      await eventually(
        'the CronJob updated to the new image',
        async () => {
          const cj = await batch.readNamespacedCronJob({ namespace: ns, name: before.status.cronJobName });
          return (
            cj.spec?.jobTemplate.spec?.template.spec?.containers[0]?.image ===
            'nxt-rollback-operator:test-next'
          );
        },
        60_000,
      );
      await new Promise((r) => setTimeout(r, 5_000));
      expect((await probeJobs('good')).map((j) => j.metadata!.name)).toEqual(jobsBefore);
      const after = await getSchedule(ns, 'good');
      expect(condition(after, 'Ready')).toMatchObject({ status: 'True' });
      expect(after.status.storageCheck.hash).toBe(before.status.storageCheck.hash);
    },
  );
});
