import { describe, expect, it } from 'vitest';
import { createLogger } from 'winston';
import { withBackupScheduleDefaults, type BackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { ScheduleRun } from './schedule-run.js';
import {
  buildProbeJob,
  decideProbe,
  PROBE_DEADLINE_SECONDS,
  PROBE_RETRY_BASE_MS,
  PROBE_RETRY_MAX_MS,
  PROBE_MAX_ATTEMPT,
  PROBE_SLOW_RETRY_BASE_MS,
  PROBE_SLOW_RETRY_MAX_MS,
  PROBE_STORAGE_ANNOTATION,
  probeSlowRetryDelayMs,
  probeSpreadMs,
  probeJobName,
  probeRetryable,
  probeRetryDelayMs,
  recordProbe,
  SECRET_RECHECK_MS,
  STORAGE_PROBE_COMPONENT,
  STORAGE_READY_CONDITION,
  StorageProbePhase,
  storageProbeHash,
  storageReadiness,
} from './storage-probe.js';

const S3 = {
  bucket: 'backups',
  prefix: 'shop',
  endpoint: 'http://127.0.0.1:9000',
  forcePathStyle: true,
  credentialsSecretRef: { name: 's3-keys' },
};
const hashInput = {
  uid: 'u-1',
  s3: S3,
  secretVersions: { 's3-keys': '100' },
};
const NOW = new Date('2026-01-01T00:00:00Z');

describe('storageProbeHash', () => {
  it('is stable for the same location, whatever the key order', () => {
    const { credentialsSecretRef, ...rest } = S3;
    const reordered = { ...hashInput, s3: { credentialsSecretRef, ...rest } };
    expect(storageProbeHash(reordered)).toBe(storageProbeHash(hashInput));
    expect(storageProbeHash(hashInput)).toMatch(/^[a-f0-9]{32}$/);
  });

  it('changes with the location, the Secrets, the runner and the schedule', () => {
    const base = storageProbeHash(hashInput);
    const variants = [
      { ...hashInput, s3: { ...S3, bucket: 'other' } },
      { ...hashInput, s3: { ...S3, prefix: 'shop2' } },
      { ...hashInput, s3: { ...S3, endpoint: 'https://s3.example' } },
      { ...hashInput, s3: { ...S3, caBundleSecretRef: { name: 'ca' } } },
      { ...hashInput, s3: { ...S3, objectLock: { mode: 'GOVERNANCE' as const, retentionDays: 1 } } },
      { ...hashInput, secretVersions: { 's3-keys': '101' } },
      { ...hashInput, pinnedImage: 'runner:2' },
      { ...hashInput, request: 'again-1' },
      { ...hashInput, serviceAccountName: 'backup-irsa' },
      { ...hashInput, uid: 'u-2' },
    ];
    const hashes = variants.map(storageProbeHash);
    expect(hashes).not.toContain(base);
    expect(new Set(hashes).size).toBe(variants.length);
  });
});

describe('decideProbe', () => {
  const hash = storageProbeHash(hashInput);

  it('starts attempt 1 for a new or changed hash', () => {
    expect(decideProbe(hash, undefined, NOW)).toEqual({ action: 'create', attempt: 1 });
    expect(decideProbe(hash, { hash: 'a'.repeat(32), attempt: 3, result: 'Succeeded' }, NOW)).toEqual({
      action: 'create',
      attempt: 1,
    });
  });

  it('reads the running probe, and never starts a second one for the same hash', () => {
    expect(decideProbe(hash, { hash, attempt: 1, jobName: 'j' }, NOW)).toEqual({
      action: 'wait',
      jobName: 'j',
    });
  });

  it('is done after a success, with nothing to recheck', () => {
    expect(decideProbe(hash, { hash, attempt: 1, result: 'Succeeded' }, NOW)).toEqual({ action: 'done' });
  });

  it('retries a retryable failure once its time has come, not before', () => {
    const failed = recordProbe(hash, 2, 'j', { success: false, reason: 'StorageUnreachable' }, NOW);
    expect(failed.nextAttemptAt).toBe('2026-01-01T00:01:00Z');
    expect(decideProbe(hash, failed, new Date(NOW.getTime() + 10_000))).toEqual({
      action: 'done',
      recheckInMs: 50_000,
    });
    expect(decideProbe(hash, failed, new Date(NOW.getTime() + 60_000))).toEqual({
      action: 'create',
      attempt: 3,
    });
  });

  it('retries a failure only a change can fix on a slow backoff (the fix may happen outside the cluster)', () => {
    for (const reason of [
      'StorageBucketNotFound',
      'StorageCredentialsInvalid',
      'StorageAccessDenied',
      'StorageOwnedByOther',
      'StorageCertificateUntrusted',
      'StorageRequestInvalid',
      'InvalidArguments',
    ]) {
      const failed = recordProbe(hash, 1, 'j', { success: false, reason }, NOW);
      expect(failed, reason).toMatchObject({
        result: 'Failed',
        reason,
        nextAttemptAt: '2026-01-01T00:05:00Z',
      });
      // Meanwhile the Secrets are re-read every minute (a changed one is a new hash).
      expect(decideProbe(hash, failed, new Date(NOW.getTime() + 1_000)), reason).toEqual({
        action: 'done',
        recheckInMs: SECRET_RECHECK_MS,
      });
      expect(decideProbe(hash, failed, new Date(NOW.getTime() + 300_000)), reason).toEqual({
        action: 'create',
        attempt: 2,
      });
    }
    expect(probeSlowRetryDelayMs(1)).toBe(PROBE_SLOW_RETRY_BASE_MS);
    expect(probeSlowRetryDelayMs(2)).toBe(2 * PROBE_SLOW_RETRY_BASE_MS);
    expect(probeSlowRetryDelayMs(50)).toBe(PROBE_SLOW_RETRY_MAX_MS);
    expect(PROBE_SLOW_RETRY_MAX_MS).toBe(3_600_000);
    // A failure recorded by an older operator (no nextAttemptAt) is probed again on the slow backoff too.
    const old = {
      hash,
      attempt: 1,
      jobName: 'j',
      result: 'Failed' as const,
      reason: 'StorageAccessDenied',
      checkedAt: '2026-01-01T00:00:00Z',
    };
    expect(decideProbe(hash, old, new Date(NOW.getTime() + 300_000))).toEqual({
      action: 'create',
      attempt: 2,
    });
    // The attempt count is bounded.
    const many = recordProbe(
      hash,
      PROBE_MAX_ATTEMPT,
      'j',
      { success: false, reason: 'StorageUnreachable' },
      NOW,
    );
    expect(decideProbe(hash, many, new Date(NOW.getTime() + 86_400_000))).toEqual({
      action: 'create',
      attempt: PROBE_MAX_ATTEMPT,
    });
  });
});

describe('retries', () => {
  it('back off from 30 s, doubling, bounded at 15 min', () => {
    expect(probeRetryDelayMs(1)).toBe(PROBE_RETRY_BASE_MS);
    expect(probeRetryDelayMs(2)).toBe(2 * PROBE_RETRY_BASE_MS);
    expect(probeRetryDelayMs(6)).toBe(PROBE_RETRY_MAX_MS);
    expect(probeRetryDelayMs(10_000)).toBe(PROBE_RETRY_MAX_MS);
  });

  it('are for network, throttling and lost Jobs only', () => {
    for (const r of [
      'StorageUnreachable',
      'StorageThrottled',
      'StorageCredentialsUnavailable',
      'StorageFailed',
      'DeadlineExceeded',
      'OutcomeUnknown',
    ])
      expect(probeRetryable(r), r).toBe(true);
    for (const r of ['StorageBucketNotFound', 'StorageCredentialsInvalid', 'StorageCheckNameConflict'])
      expect(probeRetryable(r), r).toBe(false);
  });
});

describe('storageReadiness', () => {
  const cond = (status: 'True' | 'False' | 'Unknown', reason: string) => [
    { type: STORAGE_READY_CONDITION, status, reason, message: 'm', lastTransitionTime: NOW.toISOString() },
  ];
  it('blocks Ready on a failure (stalled unless retried) and holds it while a probe runs', () => {
    expect(storageReadiness(undefined)).toEqual({ state: 'ready' });
    expect(storageReadiness(cond('True', 'StorageReachable'))).toEqual({ state: 'ready' });
    expect(storageReadiness(cond('Unknown', 'StorageCheckInProgress'))).toEqual({
      state: 'checking',
      message: 'm',
    });
    expect(storageReadiness(cond('False', 'StorageBucketNotFound'))).toMatchObject({
      state: 'failed',
      reason: 'StorageBucketNotFound',
      stalled: true,
    });
    expect(storageReadiness(cond('False', 'StorageUnreachable'))).toMatchObject({ stalled: false });
    expect(storageReadiness(cond('False', 'RunnerPodNotStarting'))).toMatchObject({ stalled: false });
  });
});

const spec = (extra: Partial<BackupScheduleSpec> = {}) =>
  withBackupScheduleDefaults({
    database: { secretRef: { name: 'db' } },
    storage: { s3: S3 },
    ...extra,
  } as BackupScheduleSpec);

const owner = (): KubeObject => ({
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'shop', namespace: 'ns', uid: 'u-1', generation: 1, resourceVersion: '1' },
  spec: { database: { secretRef: { name: 'db' } }, storage: { s3: S3 } },
});

describe('buildProbeJob', () => {
  it('is a restricted one-pod runner Job without the database credentials, owned by the schedule', () => {
    const job = buildProbeJob({
      owner: owner(),
      spec: spec(),
      image: 'op:1',
      name: 'shop-probe-x-1',
      hash: 'h',
    });
    expect(job.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'BackupSchedule', name: 'shop', uid: 'u-1', controller: true }),
    ]);
    expect(job.metadata.labels).toMatchObject({
      'rollback.nxtnewday.io/backup-schedule': 'shop',
      'app.kubernetes.io/component': STORAGE_PROBE_COMPONENT,
      'app.kubernetes.io/managed-by': 'nxt-rollback-operator',
    });
    expect(job.spec).toMatchObject({
      backoffLimit: 0,
      activeDeadlineSeconds: PROBE_DEADLINE_SECONDS,
      ttlSecondsAfterFinished: 3600,
    });
    expect(job.spec).not.toHaveProperty('podFailurePolicy');
    const pod = job.spec.template.spec;
    const c = pod.containers[0]!;
    expect(c.args).toEqual(['probe-storage', '--storage-url', 's3://backups/shop']);
    const names = c.env.map((e) => String(e.name));
    expect(names).toEqual(
      expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'NXT_S3_ENDPOINT']),
    );
    expect(names).toEqual(expect.arrayContaining(['NXT_NAMESPACE', 'NXT_SCHEDULE_NAME']));
    for (const db of ['PGHOST', 'PGPASSWORD', 'DATABASE_URL', 'PGUSER']) expect(names).not.toContain(db);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
  });
});

// --- the phase against a fake API server ----------------------------------------------------------------

function fakeCtx(opts: { createError?: unknown; image?: string } = {}) {
  const jobs = new Map<string, KubeObject>();
  const pods: KubeObject[] = [];
  const created: KubeObject[] = [];
  const deleted: string[] = [];
  const client = {
    async create(_ref: unknown, body: KubeObject) {
      if (opts.createError) throw opts.createError;
      if (jobs.has(body.metadata.name))
        throw new KubeApiError(409, 'AlreadyExists', 'exists', 'POST', 'jobs');
      const job = {
        ...structuredClone(body),
        metadata: { ...body.metadata, uid: `uid-${body.metadata.name}` },
      };
      jobs.set(body.metadata.name, job);
      created.push(job);
      return job;
    },
    async get(ref: { name: string }) {
      const j = jobs.get(ref.name);
      if (!j) throw new KubeApiError(404, 'NotFound', 'not found', 'GET', 'jobs');
      return j;
    },
    async delete(ref: { name: string }) {
      deleted.push(ref.name);
      jobs.delete(ref.name);
    },
  };
  const informer = (list: () => KubeObject[]) => ({
    get: (key: string) => list().find((o) => `${o.metadata.namespace}/${o.metadata.name}` === key),
    list: () => list(),
  });
  const ctx = {
    client,
    events: { record: async () => {} },
    config: { OPERATOR_IMAGE: opts.image ?? 'op:1' },
  } as unknown as ManagerContext;
  const phase = new StorageProbePhase(
    ctx,
    informer(() => [...jobs.values()]) as any,
    informer(() => pods) as any,
  );
  return { ctx, phase, jobs, pods, created, deleted };
}

const log = createLogger({ silent: true });

function runFor(ctx: ManagerContext, status?: object, now = NOW, annotations?: Record<string, string>) {
  const o = owner();
  if (annotations) o.metadata.annotations = annotations;
  const obj = { ...o, ...(status ? { status } : {}) };
  const run = new ScheduleRun(ctx, obj, log);
  (run as unknown as { now: Date }).now = now;
  run.spec = spec();
  run.storageSecretVersions = { 's3-keys': '100' };
  return run;
}

/** A finished probe pod of `job` whose runner wrote `result` (exit 0 on success, 3 for good, 1 to retry). */
function finishedPod(job: KubeObject, result: object, exitCode: number): KubeObject {
  return {
    metadata: {
      name: `${job.metadata.name}-p`,
      namespace: 'ns',
      labels: { 'batch.kubernetes.io/job-name': job.metadata.name },
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          name: job.metadata.name,
          uid: job.metadata.uid!,
          controller: true,
        },
      ],
    },
    spec: { restartPolicy: 'Never' },
    status: {
      containerStatuses: [
        {
          name: 'runner',
          state: {
            terminated: { exitCode, finishedAt: '2026-01-01T00:00:05Z', message: JSON.stringify(result) },
          },
        },
      ],
    },
  };
}

const probeResult = (success: boolean, reason?: string) => ({
  resultVersion: 1,
  operation: 'probe-storage',
  success,
  ...(reason ? { reason } : {}),
  message: success
    ? 's3://backups/shop: listed, wrote and deleted .nxt-probe.json'
    : 'NoSuchBucket: The specified bucket does not exist',
  startedAt: '2026-01-01T00:00:01Z',
  finishedAt: '2026-01-01T00:00:05Z',
  durationSeconds: 4,
});

const storageCond = (run: ScheduleRun) =>
  run.status.conditions?.find((c) => c.type === STORAGE_READY_CONDITION);

describe('StorageProbePhase', () => {
  it('starts one probe Job per hash, records its failure, and does not start another for the same hash', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    expect(f.created).toHaveLength(1);
    const hash = storageProbeHash(hashInput);
    const name = probeJobName('shop', hash, 1);
    expect(f.created[0]!.metadata.name).toBe(name);
    expect(r1.status.storageCheck).toEqual({ hash, attempt: 1, jobName: name });
    expect(storageCond(r1)).toMatchObject({ status: 'Unknown', reason: 'StorageCheckInProgress' });

    // Still running: nothing new.
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(f.created).toHaveLength(1);

    f.pods.push(finishedPod(f.jobs.get(name)!, probeResult(false, 'StorageBucketNotFound'), 3));
    f.jobs.get(name)!.spec = { backoffLimit: 0 };
    const r3 = runFor(f.ctx, r2.status);
    await f.phase.reconcile(r3);
    expect(r3.status.storageCheck).toMatchObject({ hash, result: 'Failed', reason: 'StorageBucketNotFound' });
    expect(r3.status.storageCheck?.nextAttemptAt).toBe('2026-01-01T00:05:00Z');
    expect(storageCond(r3)).toMatchObject({ status: 'False', reason: 'StorageBucketNotFound' });
    expect(storageCond(r3)?.message).toContain('NoSuchBucket');

    // A minute later with nothing changed: no new Job (a change of the Secret is a new hash: one new Job).
    const r4 = runFor(f.ctx, r3.status, new Date(NOW.getTime() + 60_000));
    await f.phase.reconcile(r4);
    expect(f.created).toHaveLength(1);
    const r5 = runFor(f.ctx, r4.status);
    r5.storageSecretVersions = { 's3-keys': '101' };
    await f.phase.reconcile(r5);
    expect(f.created).toHaveLength(2);
    expect(f.deleted, 'the old hash probe Job is removed').toEqual([name]);
  });

  it('records a success as StorageReady True with the runner message', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    const name = r1.status.storageCheck!.jobName!;
    f.pods.push(finishedPod(f.jobs.get(name)!, probeResult(true), 0));
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(r2.status.storageCheck).toMatchObject({ result: 'Succeeded', attempt: 1 });
    expect(storageCond(r2)).toMatchObject({ status: 'True', reason: 'StorageReachable' });
    expect(storageCond(r2)?.message).toContain('wrote and deleted');
  });

  it('retries a retryable failure with a new Job after the backoff', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    const first = r1.status.storageCheck!.jobName!;
    f.pods.push(finishedPod(f.jobs.get(first)!, probeResult(false, 'StorageUnreachable'), 1));
    f.jobs.get(first)!.status = { conditions: [{ type: 'Failed', status: 'True' }] };
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(r2.status.storageCheck).toMatchObject({ result: 'Failed', reason: 'StorageUnreachable' });
    expect(storageCond(r2)?.message).toContain('probed again at 2026-01-01T00:00:30Z');
    const r3 = runFor(f.ctx, r2.status, new Date(NOW.getTime() + 31_000));
    await f.phase.reconcile(r3);
    expect(f.created.map((j) => j.metadata.name)).toEqual([
      first,
      probeJobName('shop', storageProbeHash(hashInput), 2),
    ]);
    expect(r3.status.storageCheck).toMatchObject({ attempt: 2 });
  });

  it('trusts only a Job this schedule owns (by UID)', async () => {
    const f = fakeCtx();
    const hash = storageProbeHash(hashInput);
    const name = probeJobName('shop', hash, 1);
    f.jobs.set(name, {
      metadata: {
        name,
        namespace: 'ns',
        uid: 'x',
        labels: {
          'rollback.nxtnewday.io/backup-schedule': 'shop',
          'app.kubernetes.io/component': STORAGE_PROBE_COMPONENT,
        },
        ownerReferences: [
          { apiVersion: 'v1', kind: 'BackupSchedule', name: 'shop', uid: 'someone-else', controller: true },
        ],
      },
    });
    f.pods.push(finishedPod(f.jobs.get(name)!, probeResult(true), 0));
    const r = runFor(f.ctx);
    await f.phase.reconcile(r);
    expect(storageCond(r)).toMatchObject({ status: 'False', reason: 'StorageCheckNameConflict' });
    expect(f.deleted, 'a Job that is not ours is never deleted').toEqual([]);
  });

  it('a Job gone before its result is a retryable failure', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    f.jobs.clear();
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(r2.status.storageCheck).toMatchObject({ result: 'Failed', reason: 'OutcomeUnknown' });
    expect(r2.status.storageCheck?.nextAttemptAt).toBeDefined();
  });

  it('a rejected probe Job is reported (a 403 is retried later)', async () => {
    const f = fakeCtx({
      createError: new KubeApiError(403, 'Forbidden', 'exceeded quota: jobs', 'POST', 'jobs'),
    });
    const r = runFor(f.ctx);
    await f.phase.reconcile(r);
    expect(storageCond(r)).toMatchObject({ status: 'False', reason: 'StorageCheckForbidden' });
    expect(storageCond(r)?.message).toContain('exceeded quota');
    expect(r.status.storageCheck?.nextAttemptAt).toBeDefined();
  });

  it('a claim-backed schedule has no probe: status and probe Jobs go', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    const r2 = runFor(f.ctx, r1.status);
    r2.spec = withBackupScheduleDefaults({
      database: { secretRef: { name: 'db' } },
      storage: { persistentVolumeClaim: { claimName: 'c' } },
    } as BackupScheduleSpec);
    await f.phase.reconcile(r2);
    expect(r2.status.storageCheck).toBeUndefined();
    expect(f.deleted).toHaveLength(1);
    expect(f.created).toHaveLength(1);
  });
});

/** The Events a run would record. */
const eventsOf = (r: ScheduleRun) => (r as unknown as { events: [string, string, string][] }).events;

/** Finishes the probe Job `name` of `f` with the runner result `result` (exit code from success). */
function finish(f: ReturnType<typeof fakeCtx>, name: string, result: object, exitCode: number) {
  f.pods.push(finishedPod(f.jobs.get(name)!, result, exitCode));
  f.jobs.get(name)!.status = exitCode ? { conditions: [{ type: 'Failed', status: 'True' }] } : {};
}

const cond = (
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  at = NOW,
  generation = 1,
) => ({
  type,
  status,
  reason,
  message: `${type} ${reason}`,
  lastTransitionTime: at.toISOString().replace(/\.\d+Z$/, 'Z'),
  observedGeneration: generation,
});

describe('StorageProbePhase: the review fixes', () => {
  it('H1: a failure only a change can fix is probed again on the slow backoff, and on request (annotation)', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    finish(f, r1.status.storageCheck!.jobName!, probeResult(false, 'StorageBucketNotFound'), 3);
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(storageCond(r2)).toMatchObject({ status: 'False', reason: 'StorageBucketNotFound' });
    // Five minutes later (the bucket was created by Terraform): attempt 2 without any change.
    const r3 = runFor(f.ctx, r2.status, new Date(NOW.getTime() + 301_000));
    await f.phase.reconcile(r3);
    expect(f.created).toHaveLength(2);
    expect(r3.status.storageCheck).toMatchObject({ attempt: 2 });
    // The re-probe annotation: a new value is a new hash, probed at once.
    const r4 = runFor(f.ctx, r3.status, new Date(NOW.getTime() + 302_000), {
      [PROBE_STORAGE_ANNOTATION]: 'now',
    });
    await f.phase.reconcile(r4);
    expect(f.created).toHaveLength(3);
    expect(r4.status.storageCheck?.hash).not.toBe(r3.status.storageCheck?.hash);
  });

  it('H1: a backup that succeeded after the failed probe sets StorageReady True and clears the failure', async () => {
    const f = fakeCtx();
    const hash = storageProbeHash(hashInput);
    const check = recordProbe(hash, 1, 'j', { success: false, reason: 'StorageAccessDenied' }, NOW);
    const status = {
      storageCheck: check,
      conditions: [cond(STORAGE_READY_CONDITION, 'False', 'StorageAccessDenied')],
    };
    const run = runFor(f.ctx, status, new Date(NOW.getTime() + 120_000));
    run.status.lastSuccessfulBackup = {
      id: 'shop-20260101-0001',
      finishedAt: '2026-01-01T00:01:00Z',
    } as never;
    run.set(cond('LastBackupSucceeded', 'True', 'BackupSucceeded'));
    f.phase.afterBackups(run);
    expect(storageCond(run)).toMatchObject({ status: 'True', reason: 'BackupSucceeded' });
    expect(run.status.storageCheck).toMatchObject({
      hash,
      result: 'Succeeded',
      checkedAt: '2026-01-01T00:01:00Z',
    });
    expect(run.status.storageCheck?.reason).toBeUndefined();
    expect(storageReadiness(run.status.conditions)).toEqual({ state: 'ready' });
    // A backup older than the probe proves nothing.
    const old = runFor(f.ctx, status, new Date(NOW.getTime() + 120_000));
    old.status.lastSuccessfulBackup = { id: 'x', finishedAt: '2025-12-31T23:00:00Z' } as never;
    f.phase.afterBackups(old);
    expect(storageCond(old)).toMatchObject({ status: 'False', reason: 'StorageAccessDenied' });
  });

  it('H2: the operator image is not in the hash unless podTemplate pins one', async () => {
    const a = fakeCtx({ image: 'op:1' });
    const b = fakeCtx({ image: 'op:2' });
    const ra = runFor(a.ctx);
    const rb = runFor(b.ctx);
    expect(a.phase.hashOf(ra, S3)).toBe(b.phase.hashOf(rb, S3));
    rb.spec = spec({ podTemplate: { image: 'runner:pinned' } } as Partial<BackupScheduleSpec>);
    expect(b.phase.hashOf(rb, S3)).not.toBe(a.phase.hashOf(ra, S3));
  });

  it("M5: learning the cluster's id is a new hash (the probe made while it was pending runs again)", () => {
    const f = fakeCtx();
    const run = runFor(f.ctx);
    const none = f.phase.hashOf(run, S3);
    expect(none, 'no id and none coming: the hash of before').toBe(storageProbeHash(hashInput));
    f.ctx.config.clusterIdPending = true;
    const pending = f.phase.hashOf(run, S3);
    f.ctx.config.clusterIdPending = false;
    f.ctx.config.clusterId = 'uid-late';
    const learned = f.phase.hashOf(run, S3);
    f.ctx.config.clusterId = 'uid-other';
    const other = f.phase.hashOf(run, S3);
    expect(new Set([none, pending, learned, other]).size).toBe(4);
  });

  it('H2: a re-check of storage that worked keeps StorageReady True (Ready unchanged), spread by UID', async () => {
    const f = fakeCtx();
    const hash = storageProbeHash(hashInput);
    const passed = recordProbe(hash, 1, 'j', { success: true }, NOW);
    const status = {
      storageCheck: passed,
      conditions: [cond(STORAGE_READY_CONDITION, 'True', 'StorageReachable')],
    };
    // The Secret rotated: a new hash, same generation.
    const r1 = runFor(f.ctx, status);
    r1.storageSecretVersions = { 's3-keys': '200' };
    await f.phase.reconcile(r1);
    const spread = probeSpreadMs('u-1');
    expect(spread).toBeGreaterThan(0);
    expect(spread).toBeLessThan(30_000);
    expect(f.created, 'not before its spread').toHaveLength(0);
    expect(storageCond(r1)).toMatchObject({ status: 'True' });
    const r2 = runFor(f.ctx, r1.status, new Date(NOW.getTime() + spread + 1));
    r2.storageSecretVersions = { 's3-keys': '200' };
    await f.phase.reconcile(r2);
    expect(f.created).toHaveLength(1);
    expect(storageCond(r2)).toMatchObject({ status: 'True', reason: 'StorageRecheckInProgress' });
    expect(storageReadiness(r2.status.conditions)).toEqual({ state: 'ready' });
    expect(eventsOf(r2).map((e) => e[1])).not.toContain('StorageCheckStarted');
  });

  it('H2: a schedule Ready before this version (no StorageReady) is re-checked without flipping Ready', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx, { conditions: [cond('Ready', 'True', 'Scheduled')] });
    await f.phase.reconcile(r1);
    expect(f.created).toHaveLength(0);
    expect(storageReadiness(r1.status.conditions)).toEqual({ state: 'ready' });
    // A new schedule is probed at once and Ready waits.
    const g = fakeCtx();
    const n = runFor(g.ctx);
    await g.phase.reconcile(n);
    expect(g.created).toHaveLength(1);
    expect(storageReadiness(n.status.conditions)).toMatchObject({ state: 'checking' });
  });

  it('H2: a runner image without probe-storage is StorageReady Unknown ProbeUnsupportedByImage, not a failure', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    finish(
      f,
      r1.status.storageCheck!.jobName!,
      {
        resultVersion: 1,
        operation: 'unknown',
        success: false,
        reason: 'InvalidArguments',
        message: 'unknown command "probe-storage": use backup, verify\nusage (connection only from env',
        startedAt: '2026-01-01T00:00:01Z',
        finishedAt: '2026-01-01T00:00:02Z',
        durationSeconds: 1,
      },
      3,
    );
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(storageCond(r2)).toMatchObject({ status: 'Unknown', reason: 'ProbeUnsupportedByImage' });
    expect(storageReadiness(r2.status.conditions)).toEqual({ state: 'ready' });
  });

  it('M1: a CRD that drops status.storageCheck: the own Job is read, and CRDOutdated reported', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    const name = r1.status.storageCheck!.jobName!;
    const { storageCheck: _dropped, ...kept } = r1.status;
    finish(f, name, probeResult(true), 0);
    const r2 = runFor(f.ctx, kept);
    await f.phase.reconcile(r2);
    expect(f.created).toHaveLength(1);
    expect(storageCond(r2)).toMatchObject({ status: 'Unknown', reason: 'CRDOutdated' });
    expect(storageCond(r2)?.message).toContain('StorageReachable');
    expect(storageReadiness(r2.status.conditions)).toEqual({ state: 'ready' });
  });

  it('M3: an API error of the probe never ends the reconcile', async () => {
    const f = fakeCtx({
      createError: new KubeApiError(500, 'InternalError', 'etcd timeout', 'POST', 'jobs'),
    });
    const r = runFor(f.ctx);
    await expect(f.phase.reconcile(r)).resolves.toBeUndefined();
    expect(storageCond(r)).toMatchObject({ status: 'Unknown', reason: 'StorageCheckError' });
    expect(storageCond(r)?.message).toContain('etcd timeout');
  });

  it('M4: a backup failing for a storage reason after a passed probe sets StorageReady False', () => {
    const f = fakeCtx();
    const hash = storageProbeHash(hashInput);
    const passed = recordProbe(hash, 1, 'j', { success: true }, NOW);
    const run = runFor(
      f.ctx,
      {
        storageCheck: passed,
        conditions: [cond(STORAGE_READY_CONDITION, 'True', 'StorageReachable')],
      },
      new Date(NOW.getTime() + 3_600_000),
    );
    run.set(cond('LastBackupSucceeded', 'False', 'StorageAccessDenied'));
    f.phase.afterBackups(run);
    expect(storageCond(run)).toMatchObject({ status: 'False', reason: 'StorageAccessDenied' });
    expect(run.status.storageCheck).toMatchObject({ result: 'Failed', reason: 'StorageAccessDenied' });
    expect(eventsOf(run).map((e) => e[1])).toEqual(['StorageAccessDenied']);
    // A database failure says nothing about the storage.
    const db = runFor(f.ctx, { storageCheck: passed }, new Date(NOW.getTime() + 3_600_000));
    db.set(cond('LastBackupSucceeded', 'False', 'DatabaseUnreachable'));
    f.phase.afterBackups(db);
    expect(db.status.storageCheck).toEqual(passed);
  });

  it('M5: a retry keeps the failed condition (no flap) and sends no second pair of Events', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    finish(f, r1.status.storageCheck!.jobName!, probeResult(false, 'StorageUnreachable'), 1);
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    const r3 = runFor(f.ctx, r2.status, new Date(NOW.getTime() + 31_000));
    await f.phase.reconcile(r3);
    expect(f.created).toHaveLength(2);
    expect(storageCond(r3)).toMatchObject({ status: 'False', reason: 'StorageUnreachable' });
    expect(storageCond(r3)?.message).toContain('retrying, attempt 2');
    finish(f, r3.status.storageCheck!.jobName!, probeResult(false, 'StorageUnreachable'), 1);
    const r4 = runFor(f.ctx, r3.status, new Date(NOW.getTime() + 40_000));
    await f.phase.reconcile(r4);
    expect(storageCond(r4)?.message).not.toContain('retrying');
    expect([...eventsOf(r3), ...eventsOf(r4)]).toEqual([]);
  });

  it('M6: a stale status never deletes the probe Job of the current hash and attempt', async () => {
    const f = fakeCtx();
    const hash = storageProbeHash(hashInput);
    const r1 = runFor(f.ctx);
    await f.phase.reconcile(r1);
    const first = r1.status.storageCheck!.jobName!;
    // The cache already shows attempt 2's Job while this reconcile reads a status that names attempt 1.
    const second = probeJobName('shop', hash, 2);
    f.jobs.set(second, {
      ...structuredClone(f.jobs.get(first)!),
      metadata: {
        ...structuredClone(f.jobs.get(first)!.metadata),
        name: second,
        annotations: {
          'rollback.nxtnewday.io/storage-hash': hash,
          'rollback.nxtnewday.io/storage-probe-attempt': '2',
        },
      },
    });
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(f.deleted).toEqual([]);
    // Once status names attempt 2, attempt 1 goes.
    const r3 = runFor(f.ctx, { ...r1.status, storageCheck: { hash, attempt: 2, jobName: second } });
    await f.phase.reconcile(r3);
    expect(f.deleted).toEqual([first]);
  });

  it('L1: the probe pod has small fixed resources, not podTemplate.resources', () => {
    const job = buildProbeJob({
      owner: owner(),
      spec: spec({
        podTemplate: { resources: { requests: { cpu: '4', memory: '16Gi' } } },
      } as Partial<BackupScheduleSpec>),
      image: 'op:1',
      name: 'p',
      hash: 'h',
    });
    expect(job.spec.template.spec.containers[0]!.resources).toEqual({
      requests: { cpu: '50m', memory: '96Mi' },
      limits: { memory: '256Mi' },
    });
  });

  it('L5: a suspended schedule is not probed (StorageReady Unknown, Ready not held); it is once resumed', async () => {
    const f = fakeCtx();
    const r1 = runFor(f.ctx);
    r1.spec = spec({ suspend: true });
    await f.phase.reconcile(r1);
    expect(f.created).toHaveLength(0);
    expect(storageCond(r1)).toMatchObject({ status: 'Unknown', reason: 'StorageCheckSuspended' });
    expect(storageReadiness(r1.status.conditions)).toEqual({ state: 'ready' });
    const r2 = runFor(f.ctx, r1.status);
    await f.phase.reconcile(r2);
    expect(f.created).toHaveLength(1);
  });
});
