import { describe, expect, it, vi } from 'vitest';
import { KubeApiError, TerminalError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { createMetrics } from '../metrics.js';
import { BackupScheduleReconciler } from './controller.js';
import { RECORDED_ANNOTATION } from './record.js';
import { testRestoreJobName } from './schedule-jobs.js';

// The reconciler against a fake API server whose informer caches can be made to lag behind the writes, as a
// real one does for a few milliseconds after every write.

const NS = 'ns';
const schedule = (): KubeObject => ({
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'app', namespace: NS, uid: 'u-1', generation: 1, resourceVersion: '1' },
  spec: { database: { secretRef: { name: 'db' } }, storage: { persistentVolumeClaim: { claimName: 'c' } } },
});

const labels = {
  'app.kubernetes.io/managed-by': 'nxt-rollback-operator',
  'rollback.nxtnewday.io/backup-schedule': 'app',
  'app.kubernetes.io/component': 'backup',
};

/** The backup CronJob the fake API server's apply returns (uid cj-1): the controller of its scheduled Jobs. */
const CRONJOB_OWNER = {
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  name: 'app-backup',
  uid: 'cj-1',
  controller: true,
};
const SCHEDULE_OWNER = {
  ...CRONJOB_OWNER,
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  name: 'app',
  uid: 'u-1',
};

function finishedJob(name: string, ok: boolean): { job: KubeObject; pod: KubeObject } {
  const t = '2026-01-01T00:00:10Z';
  const result = ok
    ? {
        resultVersion: 1,
        operation: 'backup',
        id: name,
        success: true,
        message: 'ok',
        startedAt: '2026-01-01T00:00:00Z',
        finishedAt: t,
        durationSeconds: 10,
        bytes: 10,
        sha256: 'a'.repeat(64),
        verified: true,
      }
    : {
        resultVersion: 1,
        operation: 'backup',
        success: false,
        reason: 'DatabaseUnreachable',
        message: 'connection refused',
        startedAt: '2026-01-01T00:00:00Z',
        finishedAt: t,
        durationSeconds: 1,
      };
  return {
    job: {
      metadata: {
        name,
        namespace: NS,
        uid: `uid-${name}`,
        labels,
        annotations: {},
        ownerReferences: [CRONJOB_OWNER],
      },
      status: { conditions: [{ type: ok ? 'Complete' : 'Failed', status: 'True', lastTransitionTime: t }] },
    },
    pod: {
      metadata: {
        name: `${name}-x`,
        namespace: NS,
        labels: { ...labels, 'job-name': name },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name, uid: `uid-${name}`, controller: true },
        ],
      },
      status: {
        containerStatuses: [
          { state: { terminated: { exitCode: ok ? 0 : 1, finishedAt: t, message: JSON.stringify(result) } } },
        ],
      },
    },
  };
}

/** RFC 7386, as the API server applies the status patch: objects merge, null removes, the rest replaces. */
function mergePatch(target: any, patch: any): any {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: any = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A fake API server plus informers that show whatever `cache` holds (stale until `sync()`). */
function fakeCluster(
  job: KubeObject,
  pod: KubeObject,
  status?: object,
  spec?: object,
  livePods: () => KubeObject[] = () => [pod],
) {
  const base = schedule();
  const server = {
    schedule: { ...base, spec: { ...base.spec, ...spec }, ...(status ? { status } : {}) },
    job: structuredClone(job),
  };
  const cache = { schedule: structuredClone(server.schedule), job: structuredClone(server.job) };
  let rv = 1;
  let cronJobApplies = 0;
  const appliedCronJobs: any[] = [];
  let rejectCronJobs = false;
  let rejectStatus = false;
  let forbidClaims = false;
  const created: any[] = [];
  const client = {
    async list() {
      return { metadata: {}, items: livePods() };
    },
    async get(ref: { plural: string; name: string }) {
      if (ref.plural === 'secrets')
        return { metadata: { name: 'db' }, data: { host: '', database: '', username: '', password: '' } };
      if (ref.plural === 'jobs') return structuredClone(server.job);
      if (ref.plural === 'persistentvolumeclaims' && forbidClaims)
        throw new KubeApiError(403, 'Forbidden', 'forbidden', 'GET', ref.plural);
      if (ref.plural === 'persistentvolumeclaims')
        return {
          metadata: { name: 'c' },
          spec: { accessModes: ['ReadWriteOnce'] },
          status: { phase: 'Bound' },
        };
      if (ref.plural === 'serviceaccounts') return { metadata: { name: 'default' } };
      throw new KubeApiError(404, 'NotFound', 'not found', 'GET', ref.plural);
    },
    async patch(ref: { plural: string; subresource?: string; name: string }, _type: string, body: any) {
      if (ref.plural === 'cronjobs') {
        cronJobApplies++;
        appliedCronJobs.push(body);
        if (rejectCronJobs)
          throw new KubeApiError(
            422,
            'Invalid',
            'CronJob.batch "app-backup" is invalid',
            'PATCH',
            ref.plural,
          );
        return { ...body, metadata: { ...body.metadata, uid: 'cj-1' } };
      }
      if (ref.subresource === 'status' && rejectStatus && body.status?.lastBackupNow) {
        throw new KubeApiError(
          422,
          'Invalid',
          'status.lastBackupNow.annotationValue: Too long',
          'PATCH',
          ref.plural,
        );
      }
      if (ref.subresource === 'status') {
        if (body.metadata.resourceVersion !== server.schedule.metadata.resourceVersion)
          throw new KubeApiError(409, 'Conflict', 'the object has been modified', 'PATCH', ref.plural);
        server.schedule = {
          ...server.schedule,
          metadata: { ...server.schedule.metadata, resourceVersion: String(++rv) },
          status: mergePatch((server.schedule as any).status, body.status),
        };
        return server.schedule;
      }
      if (ref.plural === 'jobs') {
        server.job.metadata.annotations = {
          ...server.job.metadata.annotations,
          ...body.metadata.annotations,
        };
        return server.job;
      }
      throw new Error(`unexpected patch of ${ref.plural}`);
    },
    async create(ref: { plural: string }, body: any) {
      created.push(body);
      if (ref.plural === 'jobs' && body.metadata?.name === server.job.metadata.name)
        throw new KubeApiError(409, 'AlreadyExists', 'jobs already exists', 'POST', ref.plural);
      if (ref.plural === 'jobs') return body;
      throw new Error('unexpected create');
    },
    async delete() {
      throw new KubeApiError(404, 'NotFound', 'not found', 'DELETE', 'cronjobs');
    },
  };
  const metrics = createMetrics({ defaultMetrics: false });
  const events: string[] = [];
  const ctx = {
    client,
    metrics,
    config: { OPERATOR_IMAGE: 'img' },
    events: { record: async (_o: unknown, _t: string, reason: string) => void events.push(reason) },
  } as unknown as ManagerContext;
  // A cache of one object: get(key) finds it by its name, as an informer would.
  const informer = (get: () => KubeObject) =>
    ({
      get: (key?: string) => {
        const o = get();
        return key === undefined || key.endsWith(`/${o.metadata.name}`) ? o : undefined;
      },
      list: () => [get()],
    }) as any;
  // The CronJob cache: empty unless a test puts the backup CronJob (uid cj-1, as the apply returns) in it.
  let cachedCronJob: KubeObject | undefined;
  const cronJobs = {
    get: (key?: string) =>
      cachedCronJob && key?.endsWith(`/${cachedCronJob.metadata.name}`) ? cachedCronJob : undefined,
    list: () => (cachedCronJob ? [cachedCronJob] : []),
  } as any;
  const reconciler = new BackupScheduleReconciler(
    ctx,
    informer(() => cache.schedule),
    informer(() => cache.job),
    informer(() => pod),
    cronJobs,
  );
  const rc = { log: { info() {}, debug() {}, warn() {}, error() {} }, reconcileId: 'r' } as any;
  return {
    server,
    events,
    created,
    config: ctx.config,
    appliedCronJobs,
    cronJobApplies: () => cronJobApplies,
    /** Puts the backup CronJob (uid cj-1, the controller of the scheduled Jobs) in the CronJob cache. */
    cacheCronJob: () =>
      (cachedCronJob = {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'app-backup', namespace: NS, uid: 'cj-1' },
      } as KubeObject),
    rejectCronJobs: (on: boolean) => (rejectCronJobs = on),
    forbidClaims: () => (forbidClaims = true),
    rejectStatus: (on: boolean) => (rejectStatus = on),
    /** Runs one reconcile like the controller does: a conflict is a requeue, not a failure. */
    reconcile: () =>
      reconciler.reconcile({ namespace: NS, name: 'app' }, rc).catch((e: unknown) => {
        if (!(e instanceof KubeApiError && e.code === 409)) throw e;
      }),
    reconcileRaw: () => reconciler.reconcile({ namespace: NS, name: 'app' }, rc),
    cache,
    syncSchedule: () => (cache.schedule = structuredClone(server.schedule)),
    syncJob: () => (cache.job = structuredClone(server.job)),
    gauge: async (name: 'backupLastSuccess' | 'rpoSeconds' | 'rpoObjectiveSeconds') =>
      (await metrics[name].get()).values[0],
    total: async (result: string) =>
      (await metrics.backupTotal.get()).values.find((v) => v.labels.result === result)?.value ?? 0,
  };
}

describe('BackupScheduleReconciler recording finished Jobs', () => {
  for (const ok of [true, false]) {
    const result = ok ? 'succeeded' : 'failed';
    it(`counts a ${result} backup Job once when the caches lag behind the writes`, async () => {
      const { job, pod } = finishedJob('app-backup-1', ok);
      const c = fakeCluster(job, pod);
      await c.reconcile(); // records the Job: status, then the marker
      expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBe(result);
      expect(await c.total(result)).toBe(1);
      // The requeued reconcile still sees the Job without its marker, first with the old schedule...
      await c.reconcile();
      // ...then with the new one.
      c.syncSchedule();
      await c.reconcile();
      expect(await c.total(result)).toBe(1);
      expect(c.events.filter((e) => e === (ok ? 'BackupSucceeded' : 'BackupFailed'))).toHaveLength(1);
      c.syncJob();
      await c.reconcile();
      expect(await c.total(result)).toBe(1);
    });
  }
});

describe('BackupScheduleReconciler metrics', () => {
  it('exposes the last success from status after a restart, before any new Job is recorded', async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const finishedAt = new Date(Date.now() - 120_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const c = fakeCluster(job, pod, {
      lastSuccessfulBackup: { id: 'app-backup-1', finishedAt, verified: true },
      backups: [{ id: 'app-backup-1', finishedAt, verified: true }],
    });
    await c.reconcile();
    expect((await c.gauge('backupLastSuccess'))?.value).toBe(Date.parse(finishedAt) / 1000);
    expect((await c.gauge('rpoSeconds'))?.value).toBeGreaterThanOrEqual(120);
    expect(await c.total('succeeded')).toBe(0);
  });

  it("exports the schedule's own RPO objective as nxt_rpo_objective_seconds, before the first backup too", async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod, undefined, { objectives: { rpo: '90m' } });
    await c.reconcile();
    expect(await c.gauge('rpoObjectiveSeconds')).toEqual({
      labels: { namespace: NS, schedule: 'app' },
      value: 5400,
    });
    expect(await c.gauge('rpoSeconds')).toBeUndefined(); // no backup yet: no age, but the objective
  });
});

const cond = (s: any, type: string) => s.status?.conditions?.find((c: any) => c.type === type);

describe('BackupScheduleReconciler reports what it cannot do', () => {
  const idle = () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    return { job, pod };
  };

  it('a time zone the API server knew but this operator does not is Stalled/UnknownTimeZone', async () => {
    const { job, pod } = idle();
    const c = fakeCluster(job, pod, undefined, { timeZone: 'Mars/Olympus_Mons' });
    await c.reconcile();
    expect(cond(c.server.schedule, 'Stalled')).toMatchObject({ status: 'True', reason: 'UnknownTimeZone' });
    expect(c.cronJobApplies()).toBe(0);
  });

  it('a CronJob rejected with 422 is Stalled/CronJobRejected and not sent again until it changes', async () => {
    const { job, pod } = idle();
    const c = fakeCluster(job, pod);
    c.rejectCronJobs(true);
    expect(await c.reconcileRaw()).toEqual({});
    expect(cond(c.server.schedule, 'Stalled')).toMatchObject({ status: 'True', reason: 'CronJobRejected' });
    expect(cond(c.server.schedule, 'Ready').message).toBe(
      'the API server rejected CronJob app-backup (422 Invalid): CronJob.batch "app-backup" is invalid; fix the BackupSchedule spec',
    );
    c.syncSchedule();
    await c.reconcile();
    expect(c.cronJobApplies()).toBe(1); // the same CronJob: not sent again
    c.cache.schedule.spec = { ...c.cache.schedule.spec, schedule: '0 * * * *' };
    c.rejectCronJobs(false);
    await c.reconcile();
    expect(c.cronJobApplies()).toBe(2);
    expect(cond(c.server.schedule, 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
  });

  it('a status the API server refuses is reported as StatusRejected, and the reconcile is not retried', async () => {
    const { job, pod } = idle();
    const c = fakeCluster(job, pod);
    c.cache.schedule.metadata.annotations = { 'rollback.nxtnewday.io/backup-now': 'now' };
    c.rejectStatus(true);
    const err = await c.reconcileRaw().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TerminalError);
    expect(cond(c.server.schedule, 'Stalled')).toMatchObject({ status: 'True', reason: 'StatusRejected' });
    expect(cond(c.server.schedule, 'Ready').message).toContain(
      'status.lastBackupNow.annotationValue: Too long',
    );
    expect(c.events).toContain('StatusRejected');
  });
});

describe('BackupScheduleReconciler emergency backups', () => {
  it('a backup-now value used before (A, B, A) whose Job has finished says so instead of "started"', async () => {
    const { createHash } = await import('node:crypto');
    const name = `app-backup-now-${createHash('sha256').update('A').digest('hex').slice(0, 8)}`;
    const { job, pod } = finishedJob(name, true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod, { lastBackupNow: { annotationValue: 'B' } });
    c.server.schedule.metadata.annotations = { 'rollback.nxtnewday.io/backup-now': 'A' };
    c.syncSchedule();
    await c.reconcile();
    expect(c.events).toContain('EmergencyBackupValueReused');
    expect(c.events).not.toContain('EmergencyBackupStarted');
    // No jobName: the finished Job's backup is not this request's (a CLI waiting on it must not say "taken").
    const handled = (c.server.schedule as any).status?.lastBackupNow;
    expect(handled).toMatchObject({ annotationValue: 'A', reason: 'EmergencyBackupValueReused' });
    expect(handled.jobName).toBeUndefined();
    expect(handled.message).toContain('value was already used');
  });
});

describe('BackupScheduleReconciler emergency backups: a Job recorded from its pod before it is Complete', () => {
  it('a backup-now value used before (A, B, A) whose Job is recorded but has no Complete condition yet is refused', async () => {
    const { createHash } = await import('node:crypto');
    const name = `app-backup-now-${createHash('sha256').update('A').digest('hex').slice(0, 8)}`;
    const { job, pod } = finishedJob(name, true);
    // Recorded from the runner's termination message; the Job controller has not set Complete yet.
    job.status = { active: 1 };
    job.metadata.ownerReferences = [SCHEDULE_OWNER];
    job.metadata.annotations = {
      'rollback.nxtnewday.io/request-value': 'A',
      [RECORDED_ANNOTATION]: 'succeeded',
    };
    const c = fakeCluster(job, pod, { lastBackupNow: { annotationValue: 'B' } });
    c.server.schedule.metadata.annotations = { 'rollback.nxtnewday.io/backup-now': 'A' };
    c.syncSchedule();
    await c.reconcile();
    expect(c.events).toContain('EmergencyBackupValueReused');
    expect(c.events).not.toContain('EmergencyBackupStarted');
    const handled = (c.server.schedule as any).status?.lastBackupNow;
    expect(handled).toMatchObject({ annotationValue: 'A', reason: 'EmergencyBackupValueReused' });
    expect(handled.jobName).toBeUndefined();
  });
});

describe('BackupScheduleReconciler backup-now gate', () => {
  it('a just-created Job the cache does not hold yet keeps the value in progress (no false BackupNowFailed)', async () => {
    const name = 'app-backup-now-abcdef12';
    const { job, pod } = finishedJob(name, false);
    job.status = { active: 1 };
    job.metadata.ownerReferences = [SCHEDULE_OWNER];
    const c = fakeCluster(job, pod, { lastBackupNow: { annotationValue: 'A', jobName: name } });
    c.server.schedule.metadata.annotations = { 'rollback.nxtnewday.io/backup-now': 'A' };
    c.syncSchedule();
    c.cache.job = { ...c.cache.job, metadata: { ...c.cache.job.metadata, name: 'some-other-job' } };
    await c.reconcile();
    const handled = (c.server.schedule as any).status.lastBackupNow;
    expect(handled.result).toBeUndefined();
    expect(c.events).not.toContain('BackupNowFailed');
  });
});

describe('BackupScheduleReconciler emergency backups after a lost status write', () => {
  it('a finished, unrecorded Job carrying the current backup-now value is ours: no EmergencyBackupValueReused', async () => {
    const { createHash } = await import('node:crypto');
    const name = `app-backup-now-${createHash('sha256').update('A').digest('hex').slice(0, 8)}`;
    const { job, pod } = finishedJob(name, true);
    job.metadata.ownerReferences = [SCHEDULE_OWNER];
    job.metadata.annotations = { 'rollback.nxtnewday.io/request-value': 'A' };
    const c = fakeCluster(job, pod, { lastBackupNow: { annotationValue: 'B' } });
    c.server.schedule.metadata.annotations = { 'rollback.nxtnewday.io/backup-now': 'A' };
    c.syncSchedule();
    await c.reconcile();
    expect(c.events).not.toContain('EmergencyBackupValueReused');
    expect((c.server.schedule as any).status.lastBackupNow).toMatchObject({
      annotationValue: 'A',
      jobName: name,
    });
    for (let i = 0; i < 3 && !(c.server.schedule as any).status.lastBackupNow.result; i++) {
      c.syncSchedule();
      c.syncJob();
      await c.reconcile();
    }
    expect((c.server.schedule as any).status.lastBackupNow).toMatchObject({
      jobName: name,
      result: 'Succeeded',
    });
  });
});

describe('BackupScheduleReconciler waits for the result of a finished Job', () => {
  it('never records a Complete Job as failed while its pod still shows running; records it once the result is there', async () => {
    const { job, pod } = finishedJob('app-backup-2', true);
    job.metadata.uid = 'job-2';
    (job.status as any).completionTime = '2026-01-01T00:00:10Z';
    pod.metadata.ownerReferences = [
      { apiVersion: 'batch/v1', kind: 'Job', name: 'app-backup-2', uid: 'job-2' },
    ];
    const running = structuredClone(pod);
    running.status!.containerStatuses = [{ name: 'runner', state: { running: {} } }];
    let live = [running];
    const c = fakeCluster(job, running, undefined, undefined, () => live);
    const now = new Date('2026-01-01T00:00:20Z');
    vi.useFakeTimers({ now, toFake: ['Date'] });
    try {
      const result = await c.reconcileRaw();
      expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBeUndefined();
      expect(await c.total('failed')).toBe(0);
      expect((result as { requeueAfterMs?: number }).requeueAfterMs).toBeLessThanOrEqual(5_000);
      c.syncSchedule();
      live = [pod]; // the live LIST shows the terminated runner although the cache does not yet
      await c.reconcile();
      expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBe('succeeded');
      expect(await c.total('succeeded')).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('records a finished Job whose result never arrives as a failure with an unknown outcome, after 60 s', async () => {
    const { job } = finishedJob('app-backup-3', true);
    job.metadata.uid = 'job-3';
    (job.status as any).completionTime = '2026-01-01T00:00:10Z';
    const c = fakeCluster(
      job,
      { metadata: { name: 'other', namespace: NS } },
      undefined,
      undefined,
      () => [],
    );
    vi.useFakeTimers({ now: new Date('2026-01-01T00:01:11Z'), toFake: ['Date'] });
    try {
      await c.reconcile();
    } finally {
      vi.useRealTimers();
    }
    expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBe('failed');
    expect(
      (c.server.schedule as any).status.conditions.find((x: any) => x.type === 'LastBackupSucceeded'),
    ).toMatchObject({ status: 'False', reason: 'OutcomeUnknown' });
  });
});

describe('BackupScheduleReconciler names a backup Job that has no pod', () => {
  it('a Job without a pod 30 s after it started is LastBackupSucceeded=False/RunnerPodMissing', async () => {
    const { job } = finishedJob('app-backup-4', true);
    job.metadata.uid = 'job-4';
    job.status = { startTime: '2026-01-01T00:00:00Z' };
    const c = fakeCluster(
      job,
      { metadata: { name: 'other', namespace: NS } },
      undefined,
      undefined,
      () => [],
    );
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:10Z'), toFake: ['Date'] });
    try {
      const early = await c.reconcileRaw();
      expect((early as { requeueAfterMs?: number }).requeueAfterMs).toBeLessThanOrEqual(21_000);
      c.syncSchedule();
      vi.setSystemTime(new Date('2026-01-01T00:00:40Z'));
      await c.reconcile();
    } finally {
      vi.useRealTimers();
    }
    expect(
      (c.server.schedule as any).status.conditions.find((x: any) => x.type === 'LastBackupSucceeded'),
    ).toMatchObject({ status: 'False', reason: 'RunnerPodMissing' });
    expect(c.events).toContain('RunnerPodMissing');
  });
});

describe('BackupScheduleReconciler test restores on request (test-restore-now)', () => {
  const jobFor = (value: string, uid = 'u-1') => testRestoreJobName('app', uid, value);
  const recorded = (id: string, finishedAt: string, verified = true, purpose = 'scheduled') => ({
    id,
    startedAt: finishedAt,
    finishedAt,
    verified,
    purpose,
  });
  const idle = (status: object, spec?: object) => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    return fakeCluster(job, pod, status, spec);
  };
  const backups = [
    recorded('app-backup-3', '2026-01-03T00:00:00Z', true, 'safety'),
    recorded('app-backup-2', '2026-01-02T00:00:00Z'),
    recorded('app-backup-1', '2026-01-01T00:00:00Z'),
  ];
  /** A test-restore Job of `value` that is already there: this schedule's unless `meta` says otherwise. */
  const existing = (value: string, finished: boolean, meta: Partial<KubeObject['metadata']> = {}) => {
    const { job, pod } = finishedJob(jobFor(value), true);
    job.metadata = {
      ...job.metadata,
      labels: { ...labels, 'app.kubernetes.io/component': 'test-restore' },
      annotations: { 'rollback.nxtnewday.io/backup-id': 'app-backup-1' },
      ownerReferences: [SCHEDULE_OWNER],
      ...meta,
    };
    if (!finished) job.status = { active: 1 };
    return { job, pod };
  };
  const requested = (c: ReturnType<typeof fakeCluster>, value: string, before?: object) => {
    c.server.schedule.metadata.annotations = { 'rollback.nxtnewday.io/test-restore-now': value };
    if (before) (c.server.schedule as any).status.lastTestRestoreNow = before;
    c.syncSchedule();
  };

  it('latest starts one test-restore Job of the newest verified non-safety backup, owned by the schedule, once per value', async () => {
    const sql = [{ name: 'notes', query: 'select count(*) from notes', expect: '10000' }];
    const c = idle({ backups }, { verify: { testRestoreSchedule: '0 3 * * *', sql } });
    requested(c, 'latest@cli-1');
    await c.reconcile();
    const jobs = c.created.filter((o) => o.kind === 'Job');
    expect(jobs).toHaveLength(1);
    const job = jobs[0];
    expect(job.metadata.name).toBe(jobFor('latest@cli-1'));
    expect(job.metadata.labels['app.kubernetes.io/component']).toBe('test-restore');
    expect(job.metadata.labels['rollback.nxtnewday.io/backup-schedule']).toBe('app');
    expect(job.metadata.annotations).toEqual({
      'rollback.nxtnewday.io/backup-id': 'app-backup-2',
      // The request it is for: a retry after a lost status write knows it as its own, even once finished.
      'rollback.nxtnewday.io/request-value': 'latest@cli-1',
    });
    expect(job.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('test-restore');
    // The schedule's, not the CronJob's: the CronJob controller would call it an UnexpectedJob and count it
    // against its history limit.
    expect(job.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'BackupSchedule',
        name: 'app',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      }),
    ]);
    expect(job.spec.template.spec.containers[0].args).toEqual([
      'test-restore',
      '--storage-dir',
      '/backups',
      '--id',
      'app-backup-2',
      '--sql-assertions-json',
      JSON.stringify(sql),
    ]);
    expect((c.server.schedule as any).status.lastTestRestoreNow).toEqual({
      annotationValue: 'latest@cli-1',
      backupId: 'app-backup-2',
      jobName: jobFor('latest@cli-1'),
    });
    expect(c.events).toContain('TestRestoreStarted');
    c.syncSchedule();
    await c.reconcile();
    expect(c.created.filter((o) => o.kind === 'Job')).toHaveLength(1);
  });

  it("the Job name depends on the schedule UID: a re-created schedule never meets the old one's Jobs", () => {
    expect(jobFor('latest@1', 'u-1')).not.toBe(jobFor('latest@1', 'u-2'));
  });

  it('a retried reconcile whose status write was lost adopts its running Job and its backup, not a re-resolved latest', async () => {
    const { job, pod } = existing('latest@again', false);
    const c = fakeCluster(job, pod, { backups });
    requested(c, 'latest@again');
    await c.reconcile();
    // latest is app-backup-2 now; the Job was made for app-backup-1.
    expect((c.server.schedule as any).status.lastTestRestoreNow).toEqual({
      annotationValue: 'latest@again',
      backupId: 'app-backup-1',
      jobName: jobFor('latest@again'),
    });
    expect(c.events).not.toContain('TestRestoreStarted');
  });

  it('a retry after a lost status write adopts its running Job even when retention has dropped its backup from status', async () => {
    const A = 'app-backup-1@dropped';
    const { job, pod } = existing(A, false);
    job.metadata.annotations = { ...job.metadata.annotations, 'rollback.nxtnewday.io/request-value': A };
    // app-backup-1 is gone from status.backups: choosing it now fails, but its Job already runs.
    const c = fakeCluster(job, pod, { backups: backups.slice(0, 2) });
    requested(c, A);
    await c.reconcile();
    expect((c.server.schedule as any).status.lastTestRestoreNow).toEqual({
      annotationValue: A,
      backupId: 'app-backup-1',
      jobName: jobFor(A),
    });
    expect(c.events).not.toContain('BackupNotFound');
  });

  it('a value naming a backup that is not in status, with no Job of its own, is refused as before', async () => {
    const c = idle({ backups: backups.slice(0, 2) });
    requested(c, 'app-backup-1@none');
    await c.reconcile();
    expect((c.server.schedule as any).status.lastTestRestoreNow).toMatchObject({
      annotationValue: 'app-backup-1@none',
      reason: 'BackupNotFound',
    });
  });

  it('a value used before (A, B, A) whose Job has finished says so in status and a Warning Event, and starts nothing', async () => {
    const A = 'app-backup-1@A';
    const { job, pod } = existing(A, true);
    job.metadata.annotations = { ...job.metadata.annotations, [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod, { backups, lastTestRestoreNow: { annotationValue: 'B' } });
    requested(c, A);
    await c.reconcile();
    const handled = (c.server.schedule as any).status.lastTestRestoreNow;
    expect(handled).toMatchObject({ annotationValue: A, reason: 'TestRestoreValueReused' });
    expect(handled.message).toContain('value was already used');
    expect(handled.jobName).toBeUndefined();
    expect(c.events).toContain('TestRestoreValueReused');
    expect(c.events).not.toContain('TestRestoreStarted');
    expect(cond(c.server.schedule, 'LastTestRestoreSucceeded')).toBeUndefined();
  });

  it('a value used before (A, B, A) whose Job is recorded but not yet Complete is refused too', async () => {
    const A = 'app-backup-1@A';
    const { job, pod } = existing(A, false);
    // Recorded from the runner's termination message before the Job controller set Complete.
    job.metadata.annotations = {
      ...job.metadata.annotations,
      'rollback.nxtnewday.io/request-value': A,
      [RECORDED_ANNOTATION]: 'succeeded',
    };
    const c = fakeCluster(job, pod, { backups, lastTestRestoreNow: { annotationValue: 'B' } });
    requested(c, A);
    await c.reconcile();
    const handled = (c.server.schedule as any).status.lastTestRestoreNow;
    expect(handled).toMatchObject({ annotationValue: A, reason: 'TestRestoreValueReused' });
    expect(handled.jobName).toBeUndefined();
    expect(c.events).not.toContain('TestRestoreStarted');
  });

  it('a lost status write whose Job finished before the retry: the retry adopts its own Job and records its result on the request', async () => {
    const A = 'app-backup-1@lost';
    const { job, pod } = existing(A, true);
    job.metadata.annotations = { ...job.metadata.annotations, 'rollback.nxtnewday.io/request-value': A };
    const c = fakeCluster(job, pod, { backups, lastTestRestoreNow: { annotationValue: 'B' } });
    requested(c, A);
    await c.reconcile();
    expect(c.events).not.toContain('TestRestoreValueReused');
    expect((c.server.schedule as any).status.lastTestRestoreNow).toMatchObject({
      annotationValue: A,
      backupId: 'app-backup-1',
      jobName: jobFor(A),
    });
    for (let i = 0; i < 3 && !(c.server.schedule as any).status.lastTestRestoreNow.result; i++) {
      c.syncSchedule();
      c.syncJob();
      await c.reconcile();
    }
    expect((c.server.schedule as any).status.lastTestRestoreNow).toMatchObject({
      jobName: jobFor(A),
      result: 'Succeeded',
    });
    expect(c.events).toContain('TestRestoreSucceeded');
  });

  it.each([
    [
      "another schedule's Job (same name, its own owner and label)",
      {
        ownerReferences: [{ ...SCHEDULE_OWNER, name: 'other', uid: 'u-9' }],
        labels: {
          ...labels,
          'rollback.nxtnewday.io/backup-schedule': 'other',
          'app.kubernetes.io/component': 'test-restore',
        },
      },
    ],
    [
      'the Job of a deleted schedule of the same name, still being garbage-collected',
      { ownerReferences: [{ ...SCHEDULE_OWNER, uid: 'u-0' }], deletionTimestamp: '2026-01-01T00:00:00Z' },
    ],
    ["a Job made by hand with this schedule's label", { ownerReferences: [] }],
  ])('a name conflict with %s is reported, never adopted', async (_what, meta) => {
    const { job, pod } = existing('latest@x', false, meta as any);
    const c = fakeCluster(job, pod, { backups });
    requested(c, 'latest@x');
    await c.reconcile();
    const handled = (c.server.schedule as any).status.lastTestRestoreNow;
    expect(handled).toMatchObject({ annotationValue: 'latest@x', reason: 'TestRestoreNameConflict' });
    expect(handled.message).toContain(
      `Job ${jobFor('latest@x')} already exists and is not this BackupSchedule's`,
    );
    expect(handled.jobName).toBeUndefined();
    expect(c.events).toContain('TestRestoreNameConflict');
    expect(cond(c.server.schedule, 'LastTestRestoreSucceeded')).toMatchObject({
      status: 'False',
      reason: 'TestRestoreNameConflict',
    });
  });

  it('an id that is not recorded starts nothing, says so in status and an Event, and leaves LastTestRestoreSucceeded alone', async () => {
    const passed = {
      type: 'LastTestRestoreSucceeded',
      status: 'True',
      reason: 'RestoreVerified',
      message: 'test restore of app-backup-1 passed',
      lastTransitionTime: '2026-01-01T00:00:00Z',
      observedGeneration: 1,
    };
    const c = idle({ backups, conditions: [passed] });
    // The previous request's Job and backup must not stay beside the new value (status is a merge patch).
    requested(c, 'nope@1', { annotationValue: 'x', backupId: 'b', jobName: 'j' });
    await c.reconcile();
    expect(c.created.filter((o) => o.kind === 'Job')).toHaveLength(0);
    const st = (c.server.schedule as any).status;
    expect(st.lastTestRestoreNow).toMatchObject({ annotationValue: 'nope@1', reason: 'BackupNotFound' });
    expect(st.lastTestRestoreNow.message).toContain('backup "nope" is not among');
    expect(st.lastTestRestoreNow.jobName).toBeUndefined();
    expect(st.lastTestRestoreNow.backupId).toBeUndefined();
    expect(cond(c.server.schedule, 'LastTestRestoreSucceeded')).toEqual(passed);
    expect(c.events).toContain('BackupNotFound');
  });
});

describe('BackupScheduleReconciler records only its own Jobs', () => {
  it.each([
    ['no controller', []],
    ['a controller that is not the schedule or its CronJobs', [{ ...CRONJOB_OWNER, uid: 'someone-else' }]],
  ])('a Job with the schedule label and %s is not recorded', async (_what, owners) => {
    const { job, pod } = finishedJob('app-backup-7', true);
    job.metadata.ownerReferences = owners as any;
    const c = fakeCluster(job, pod);
    await c.reconcile();
    expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBeUndefined();
    expect((c.server.schedule as any).status.backups).toBeUndefined();
    expect(await c.total('succeeded')).toBe(0);
  });
});

describe('BackupScheduleReconciler writes replaced status objects whole', () => {
  it("a new lastSuccessfulBackup without bytes and sha256 keeps none of the previous one's", async () => {
    const { job, pod } = finishedJob('app-backup-8', true);
    const message = JSON.parse(pod.status!.containerStatuses[0].state.terminated.message);
    delete message.bytes;
    delete message.sha256;
    pod.status!.containerStatuses[0].state.terminated.message = JSON.stringify(message);
    const old = {
      id: 'app-backup-0',
      finishedAt: '2025-12-31T00:00:00Z',
      bytes: 999,
      sha256: 'b'.repeat(64),
      verified: true,
    };
    const c = fakeCluster(job, pod, { lastSuccessfulBackup: old, backups: [old] });
    await c.reconcile();
    expect((c.server.schedule as any).status.lastSuccessfulBackup).toEqual({
      id: 'app-backup-8',
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:00:10Z',
      verified: true,
      purpose: 'scheduled',
    });
  });
});

describe('BackupScheduleReconciler storage probe (S3)', () => {
  it('is InProgress while the probe runs; a failed probe makes Ready False (Stalled) with its reason, the CronJob applied all the same', async () => {
    const { job } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const probePod: KubeObject = { metadata: { name: 'none', namespace: NS } };
    const c = fakeCluster(job, probePod, undefined, {
      storage: { s3: { bucket: 'backups', prefix: 'app' } },
    });
    const cond = (type: string) =>
      (c.server.schedule as any).status.conditions.find((x: { type: string }) => x.type === type);
    await c.reconcile();
    const probe = c.created.find(
      (b) => b.metadata?.labels?.['app.kubernetes.io/component'] === 'storage-probe',
    );
    expect(probe?.spec.template.spec.containers[0].args).toEqual([
      'probe-storage',
      '--storage-url',
      's3://backups/app',
    ]);
    expect(cond('StorageReady')).toMatchObject({ status: 'Unknown', reason: 'StorageCheckInProgress' });
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'StorageCheckInProgress' });
    expect(cond('Reconciling')).toMatchObject({ status: 'True', reason: 'StorageCheckInProgress' });
    expect(c.cronJobApplies()).toBe(1);

    // The probe's pod reports a missing bucket.
    c.syncSchedule();
    c.cache.job = { ...probe, metadata: { ...probe.metadata, uid: 'probe-uid' } };
    const result = {
      resultVersion: 1,
      operation: 'probe-storage',
      success: false,
      reason: 'StorageBucketNotFound',
      message: 'listing the prefix in s3://backups/app: NoSuchBucket',
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:00:02Z',
      durationSeconds: 2,
    };
    Object.assign(probePod, {
      metadata: {
        name: `${probe.metadata.name}-x`,
        namespace: NS,
        labels: { 'batch.kubernetes.io/job-name': probe.metadata.name },
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: probe.metadata.name,
            uid: 'probe-uid',
            controller: true,
          },
        ],
      },
      spec: { restartPolicy: 'Never' },
      status: {
        containerStatuses: [
          { name: 'runner', state: { terminated: { exitCode: 3, message: JSON.stringify(result) } } },
        ],
      },
    });
    await c.reconcile();
    expect(cond('StorageReady')).toMatchObject({ status: 'False', reason: 'StorageBucketNotFound' });
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'StorageBucketNotFound' });
    expect(cond('Stalled')).toMatchObject({ status: 'True', reason: 'StorageBucketNotFound' });
    expect(cond('Reconciling')).toMatchObject({ status: 'False' });
    expect((c.server.schedule as any).status.storageCheck).toMatchObject({
      attempt: 1,
      result: 'Failed',
      reason: 'StorageBucketNotFound',
    });
    expect(c.events).toContain('StorageBucketNotFound');
    expect(c.cronJobApplies()).toBe(2);
  });

  it("waits (Ready=False ClusterIdUnknown, CronJobs untouched) while the operator still retries its cluster's id", async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod, undefined, { storage: { s3: { bucket: 'backups', prefix: 'app' } } });
    const cond = (type: string) =>
      (c.server.schedule as any).status.conditions.find((x: { type: string }) => x.type === type);
    c.config.clusterIdPending = true;
    const r = await c.reconcileRaw();
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'ClusterIdUnknown' });
    expect(c.cronJobApplies(), 'no CronJob re-applied without NXT_CLUSTER_ID').toBe(0);
    expect(r).toMatchObject({ requeueAfterMs: expect.any(Number) });
    // Learned: the CronJobs are applied with it.
    c.syncSchedule();
    c.config.clusterIdPending = false;
    c.config.clusterId = 'uid-late';
    await c.reconcile();
    expect(c.cronJobApplies()).toBeGreaterThan(0);
    // Every CronJob the reconciler applies carries the id its runners need (NXT_CLUSTER_ID).
    for (const cj of c.appliedCronJobs) {
      const env = cj.spec.jobTemplate.spec.template.spec.containers[0].env;
      expect(env.find((e: { name: string }) => e.name === 'NXT_CLUSTER_ID')?.value, cj.metadata.name).toBe(
        'uid-late',
      );
    }
  });

  it("records a finished Job while it waits for the cluster's id (only the CronJob apply waits)", async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    const c = fakeCluster(job, pod, undefined, { storage: { s3: { bucket: 'backups', prefix: 'app' } } });
    c.cacheCronJob();
    const cond = (type: string) =>
      (c.server.schedule as any).status.conditions.find((x: { type: string }) => x.type === type);
    c.config.clusterIdPending = true;
    for (let i = 0; i < 3 && !c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]; i++) {
      await c.reconcile();
      c.syncSchedule();
      c.syncJob();
    }
    expect(c.server.job.metadata.annotations?.[RECORDED_ANNOTATION]).toBe('succeeded');
    expect((c.server.schedule as any).status.lastSuccessfulBackup).toBeDefined();
    expect(c.cronJobApplies(), 'no CronJob re-applied without NXT_CLUSTER_ID').toBe(0);
    await c.reconcile();
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'ClusterIdUnknown' });
  });

  it('a claim needs no probe Job: StorageReady True (ClaimUsable)', async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod);
    await c.reconcile();
    const conditions = (c.server.schedule as any).status.conditions;
    expect(conditions.find((x: { type: string }) => x.type === 'StorageReady')).toMatchObject({
      status: 'True',
      reason: 'ClaimUsable',
    });
    expect(conditions.find((x: { type: string }) => x.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(
      c.created.filter((b) => b.metadata?.labels?.['app.kubernetes.io/component'] === 'storage-probe'),
    ).toEqual([]);
  });

  it('L3: a claim the operator may not read is not claimed usable (StorageReady Unknown ClaimNotChecked)', async () => {
    const { job, pod } = finishedJob('app-backup-1', true);
    job.metadata.annotations = { [RECORDED_ANNOTATION]: 'succeeded' };
    const c = fakeCluster(job, pod);
    c.forbidClaims();
    await c.reconcile();
    const conditions = (c.server.schedule as any).status.conditions;
    expect(conditions.find((x: { type: string }) => x.type === 'StorageReady')).toMatchObject({
      status: 'Unknown',
      reason: 'ClaimNotChecked',
    });
    expect(conditions.find((x: { type: string }) => x.type === 'Ready')).toMatchObject({ status: 'True' });
  });
});
