// The restore step's reading of its Job: a committed restore is never reported as "the database is
// unchanged", and the restore Job is released at most once and only if nobody else released it.
import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import type { KubeObject } from '../kube/rest.js';
import { restoreDatabase } from './database-steps.js';
import type { PlanRun } from './plan-run.js';

const PLAN_UID = 'plan-uid-1';
const JOB_UID = 'job-uid-1';

const schedule = {
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'db', namespace: 'ns', uid: 'sched-uid' },
  spec: {
    schedule: '0 * * * *',
    database: { secretRef: { name: 'db' } },
    storage: { persistentVolumeClaim: { claimName: 'c' } },
  },
} as unknown as KubeObject;

const restoreJob = (conditionType: 'Complete' | 'Failed' | 'Running') =>
  ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'p-restore',
      namespace: 'ns',
      uid: JOB_UID,
      annotations: { 'rollback.nxtnewday.io/backup-id': 'db-1' },
      ownerReferences: [
        {
          apiVersion: 'rollback.nxtnewday.io/v1alpha1',
          kind: 'RollbackPlan',
          name: 'p',
          uid: PLAN_UID,
          controller: true,
        },
      ],
    },
    spec: { suspend: false },
    status: {
      startTime: '2026-01-01T00:00:00Z',
      conditions:
        conditionType === 'Running'
          ? []
          : [
              {
                type: conditionType,
                status: 'True',
                lastTransitionTime: '2026-01-01T00:01:00Z',
                reason: conditionType === 'Failed' ? 'BackoffLimitExceeded' : undefined,
              },
            ],
      ...(conditionType === 'Complete' ? { completionTime: '2026-01-01T00:01:00Z' } : {}),
    },
  }) as unknown as KubeObject;

const pod = (terminated: Record<string, unknown> | undefined) =>
  ({
    metadata: {
      name: 'p-restore-abc',
      namespace: 'ns',
      labels: { 'batch.kubernetes.io/job-name': 'p-restore' },
      ownerReferences: [{ kind: 'Job', name: 'p-restore', uid: JOB_UID, controller: true }],
    },
    spec: { restartPolicy: 'Never' },
    status: {
      containerStatuses: [
        {
          name: 'runner',
          state: terminated ? { terminated } : { running: { startedAt: '2026-01-01T00:00:00Z' } },
        },
      ],
    },
  }) as unknown as KubeObject;

interface Fake {
  run: PlanRun;
  patches: unknown[][];
  checkpoints: Record<string, unknown>[];
}

function fakeRun(
  job: KubeObject,
  pods: KubeObject[],
  o: { now?: string; livePods?: KubeObject[]; database?: Record<string, unknown> } = {},
): Fake {
  const spec = withRollbackPlanDefaults({
    scope: 'database',
    targets: { database: { backupScheduleRef: { name: 'db' } } },
  } as RollbackPlanSpec);
  const patches: unknown[][] = [];
  const checkpoints: Record<string, unknown>[] = [];
  const run: PlanRun = {
    plan: { metadata: { name: 'p', namespace: 'ns', uid: PLAN_UID } } as KubeObject,
    namespace: 'ns',
    spec,
    status: {
      database: {
        backupScheduleRef: 'db',
        backupId: 'db-1',
        mode: 'inPlace',
        safetyBackupId: 'p-safety-abc',
        restoreJob: 'p-restore',
        restoreJobUID: JOB_UID,
        restoreJobReleased: true,
        ...o.database,
      },
    },
    client: {
      get: async () => ({ metadata: { name: 'db' }, data: { uri: 'eA==' } }),
      list: async () => ({ metadata: {}, items: o.livePods ?? pods }),
      patch: async (...args: unknown[]) => {
        patches.push(args);
        return {};
      },
    } as never,
    log: { info() {}, warn() {}, error() {}, debug() {} } as never,
    now: () => new Date(o.now ?? '2026-01-01T00:01:30Z'),
    allPlans: () => [],
    event() {},
    checkpoint: async () => {
      checkpoints.push(structuredClone(run.status.database ?? {}));
    },
    cache: {
      schedule: (n) => (n === 'db' ? schedule : undefined),
      job: (n) => (n === 'p-restore' ? job : undefined),
      podsOfJob: () => pods,
      deployment: () => undefined,
    },
    access: { check: async () => ({ allowed: true }) } as never,
    histories: new Map(),
    runnerImage: 'runner:1',
    checks: {} as never,
    runnerPolicy: {
      operatorImage: 'runner:1',
      allowedImages: [],
      allowedServiceAccounts: [],
      allowSuperuserAssertions: false,
    },
    jobConflictTimeoutMs: 60_000,
  };
  return { run, patches, checkpoints };
}

const restoreResult = (over: Record<string, unknown>) => ({
  resultVersion: 1,
  operation: 'restore',
  id: 'db-1',
  mode: 'inPlace',
  startedAt: '2026-01-01T00:00:00Z',
  finishedAt: '2026-01-01T00:01:00Z',
  durationSeconds: 60,
  ...over,
});
const terminatedWith = (result: object, exitCode = 1) =>
  pod({ exitCode, finishedAt: '2026-01-01T00:01:00Z', message: JSON.stringify(result) });

describe('restoreDatabase never claims "unchanged" for a restore that may have committed', () => {
  it("waits while a Complete Job's pod still shows running (Job and pod watches are not ordered)", async () => {
    const { run } = fakeRun(restoreJob('Complete'), [pod(undefined)]);
    const outcome = await restoreDatabase(run);
    expect(outcome.kind).toBe('wait');
    expect(outcome.message).toMatch(/waiting for its runner result/);
  });

  it('reads the pods live when the cache lags, and takes the result found there', async () => {
    const ok = restoreResult({ success: true, message: 'restored', restoreSeconds: 3 });
    const { run } = fakeRun(restoreJob('Complete'), [pod(undefined)], { livePods: [terminatedWith(ok, 0)] });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'done' });
  });

  it('a Complete Job whose result never arrives is RestoreOutcomeUnknown after 60 s, naming the safety backup', async () => {
    const { run } = fakeRun(restoreJob('Complete'), [pod(undefined)], { now: '2026-01-01T00:02:00Z' });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'RestoreOutcomeUnknown' });
    expect(outcome.message).toMatch(/may have been applied.*p-safety-abc/);
    expect(outcome.message).not.toMatch(/database is unchanged/);
  });

  it('a Complete Job whose pod is gone is RestoreOutcomeUnknown, not "unchanged"', async () => {
    const { run } = fakeRun(restoreJob('Complete'), [], { now: '2026-01-01T00:05:00Z' });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'RestoreOutcomeUnknown' });
    expect(outcome.message).not.toMatch(/database is unchanged/);
  });

  it('inPlace: pg_restore committed (restoreSeconds set), then validation could not connect: applied', async () => {
    const result = restoreResult({
      success: false,
      reason: 'DatabaseUnreachable',
      message: 'connecting to db: connection refused',
      restoreSeconds: 12.5,
    });
    const { run } = fakeRun(restoreJob('Failed'), [terminatedWith(result)]);
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'DatabaseUnreachable' });
    expect(outcome.message).toMatch(/WAS applied/);
    expect(outcome.message).not.toMatch(/database is unchanged/);
    expect(run.status.database?.restoreApplied).toBe(true);
  });

  it('inPlace: a failure before the commit (no restoreSeconds) leaves the database unchanged', async () => {
    const result = restoreResult({ success: false, reason: 'RestoreFailed', message: 'pg_restore: error' });
    const { run } = fakeRun(restoreJob('Failed'), [terminatedWith(result)]);
    const outcome = await restoreDatabase(run);
    expect(outcome.message).toMatch(/database is unchanged/);
    expect(run.status.database?.restoreApplied).toBeUndefined();
  });

  it('a crash without a runner result is RestoreOutcomeUnknown', async () => {
    const crashed = pod({ exitCode: 137, reason: 'OOMKilled', finishedAt: '2026-01-01T00:01:00Z' });
    const { run } = fakeRun(restoreJob('Failed'), [crashed]);
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'failed', reason: 'RestoreOutcomeUnknown' });
  });
});

describe('restoreDatabase releases the restore Job at most once, and only one nobody else released', () => {
  const unrecorded = { restoreJobUID: undefined, restoreJobReleased: undefined };

  it('refuses to adopt an unrecorded restore Job that is not suspended (someone else released it)', async () => {
    const { run, patches } = fakeRun(restoreJob('Running'), [], { database: unrecorded });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'RestoreJobNotFenced' });
    expect(patches).toHaveLength(0);
    expect(run.status.database?.restoreJobUID).toBeUndefined();
  });

  it('refuses an unrecorded restore Job that is suspended again but has started', async () => {
    const job = restoreJob('Running');
    (job as any).spec.suspend = true;
    const { run, patches } = fakeRun(job, [], { database: unrecorded });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'failed', reason: 'RestoreJobNotFenced' });
    expect(patches).toHaveLength(0);
  });

  it('records the release durably before releasing a suspended Job that never ran', async () => {
    const job = restoreJob('Running');
    (job as any).spec.suspend = true;
    delete (job as any).status.startTime;
    const { run, patches, checkpoints } = fakeRun(job, [], { database: unrecorded });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'wait' });
    expect(patches).toHaveLength(1);
    expect(checkpoints.at(-1)).toMatchObject({ restoreJobUID: JOB_UID, restoreJobReleased: true });
  });

  it('never releases a Job a second time when it was suspended after the release', async () => {
    const job = restoreJob('Running');
    (job as any).spec.suspend = true;
    const { run, patches } = fakeRun(job, []);
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'failed', reason: 'RestoreJobSuspended' });
    expect(patches).toHaveLength(0);
  });
});

describe('a plan runner Job whose pod cannot start is named at once and fails within minutes, not after 1 h', () => {
  const stuckJob = () => {
    const job = restoreJob('Running');
    (job as any).status = { active: 1, startTime: '2026-01-01T00:00:00Z' };
    return job;
  };
  const pulling = () => {
    const p = pod(undefined);
    (p as any).status.containerStatuses[0].state = {
      waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "runner:1"' },
    };
    return p;
  };

  it('restore pod in ImagePullBackOff: the wait names it (reason for the Reconciling condition)', async () => {
    const { run, patches } = fakeRun(stuckJob(), [pulling()], { now: '2026-01-01T00:00:20Z' });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'wait', reason: 'RunnerPodNotStarting' });
    expect(outcome.message).toMatch(/cannot start: ImagePullBackOff/);
    expect(patches).toHaveLength(0);
  });

  it('after 5 min a restore whose pod never started is suspended and fails: nothing was restored', async () => {
    const { run, patches } = fakeRun(stuckJob(), [pulling()], { now: '2026-01-01T00:05:00Z' });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'RunnerPodNotStarting' });
    expect(outcome.message).toMatch(/never started.*nothing was restored/);
    expect(patches).toHaveLength(1);
    expect(JSON.stringify(patches[0])).toMatch(/"\/spec\/suspend","value":true/);
  });

  it('a restore whose runner container already ran is never failed as "not started"', async () => {
    const p = pulling();
    (p as any).status.containerStatuses[0].lastState = { terminated: { exitCode: 1 } };
    const { run, patches } = fakeRun(stuckJob(), [p], { now: '2026-01-01T00:10:00Z' });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'wait', reason: 'RunnerPodNotStarting' });
    expect(patches).toHaveLength(0);
  });

  it('a Job with no pod 30 s after it started (quota refused it) is named RunnerPodMissing', async () => {
    const job = stuckJob();
    (job as any).status = { startTime: '2026-01-01T00:00:00Z' };
    const { run } = fakeRun(job, [], { now: '2026-01-01T00:00:40Z' });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'wait', reason: 'RunnerPodMissing' });
    expect(outcome.message).toMatch(/no pod 40s after it started/);
  });
});

describe('a restore whose runner succeeded has one verdict, whichever watch event comes first', () => {
  const ok = restoreResult({ success: true, message: 'restored', restoreSeconds: 3 });
  /** The Job controller found the pod's success only after activeDeadlineSeconds had passed. */
  const deadlineExceeded = () => {
    const job = restoreJob('Failed');
    (job as any).status.conditions[0] = {
      type: 'Failed',
      status: 'True',
      reason: 'DeadlineExceeded',
      message: 'Job was active longer than specified deadline',
      lastTransitionTime: '2026-01-01T00:01:01Z',
    };
    return job;
  };

  it('the pod event first: the step is done while the Job has no Complete condition yet', async () => {
    const job = restoreJob('Running');
    (job as any).status = { active: 1, startTime: '2026-01-01T00:00:00Z' };
    const { run } = fakeRun(job, [terminatedWith(ok, 0)]);
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'done' });
    expect(outcome.message).toMatch(/restored backup db-1/);
  });

  it('the Job event first (Failed, DeadlineExceeded): waits for the pod, then the same verdict: done', async () => {
    const { run } = fakeRun(deadlineExceeded(), [pod(undefined)], { livePods: [pod(undefined)] });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'wait' });
    const late = fakeRun(deadlineExceeded(), [terminatedWith(ok, 0)]).run;
    const outcome = await restoreDatabase(late);
    expect(outcome).toMatchObject({ kind: 'done' });
    expect(outcome.message).not.toMatch(/WAS applied but the step failed/);
    expect(late.status.database?.restoreApplied).toBeUndefined();
  });

  it("a Failed Job whose success result has a non-zero exit code, or comes from another Job's pod, is still a failure", async () => {
    const nonZero = fakeRun(deadlineExceeded(), [terminatedWith(ok, 1)]).run;
    expect(await restoreDatabase(nonZero)).toMatchObject({ kind: 'failed' });
    const foreign = terminatedWith(ok, 0);
    (foreign as any).metadata.ownerReferences[0].controller = false;
    const notControlled = fakeRun(deadlineExceeded(), [foreign]).run;
    expect(await restoreDatabase(notControlled)).toMatchObject({ kind: 'failed' });
  });
});
