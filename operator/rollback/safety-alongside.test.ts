// The safety backup runs alongside the verify Job: pre-validation starts both Jobs in one reconcile (the
// SafetyBackup step's start and both names durable first), the SafetyBackup step reads the result later, and
// a pre-validation failure records what became of a safety backup the plan no longer waits for.
import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import type { KubeObject } from '../kube/rest.js';
import { KubeApiError } from '../kube/errors.js';
import { touchedSummary } from './controller.js';
import {
  preValidateDatabase,
  restoreDatabase,
  safetyBackupAlongsideVerify,
  settleSafetyBackup,
  stepEnd,
  takeSafetyBackup,
} from './database-steps.js';
import type { Step } from './journal.js';
import type { PlanRun } from './plan-run.js';

const PLAN_UID = 'abcdef12-0000-4000-8000-000000000000';
const SAFETY_ID = 'p-safety-abcdef12';

const schedule = {
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'db', namespace: 'ns', uid: 'sched-uid' },
  spec: {
    schedule: '0 * * * *',
    database: { secretRef: { name: 'db' } },
    storage: { persistentVolumeClaim: { claimName: 'c' } },
  },
  status: {
    backups: [{ id: 'db-1', finishedAt: '2026-01-01T00:00:00Z', verified: true, sha256: 'ab'.repeat(32) }],
  },
} as unknown as KubeObject;

const owned = (name: string, uid: string, extra: Record<string, unknown> = {}) =>
  ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: 'ns',
      uid,
      annotations: { 'rollback.nxtnewday.io/backup-id': name.endsWith('-verify') ? 'db-1' : SAFETY_ID },
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
    spec: { backoffLimit: 0 },
    status: { active: 1, startTime: '2026-01-01T00:10:00Z' },
    ...extra,
  }) as unknown as KubeObject;

/** A pod of `job` whose runner ended with `result` (exit 0 on success). */
const finishedPod = (job: KubeObject, result: Record<string, unknown>) =>
  ({
    metadata: {
      name: `${job.metadata.name}-x`,
      namespace: 'ns',
      labels: { 'batch.kubernetes.io/job-name': job.metadata.name },
      ownerReferences: [{ kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true }],
    },
    spec: { restartPolicy: 'Never' },
    status: {
      containerStatuses: [
        {
          name: 'runner',
          state: {
            terminated: {
              exitCode: result.success ? 0 : 1,
              finishedAt: result.finishedAt,
              message: JSON.stringify(result),
            },
          },
        },
      ],
    },
  }) as unknown as KubeObject;

const backupResult = (over: Record<string, unknown> = {}) => ({
  resultVersion: 1,
  operation: 'backup',
  success: true,
  id: SAFETY_ID,
  message: 'backup written',
  startedAt: '2026-01-01T00:10:01Z',
  finishedAt: '2026-01-01T00:10:04Z',
  durationSeconds: 3,
  ...over,
});

function fakeRun(
  o: {
    safetyBackup?: boolean;
    jobs?: KubeObject[];
    pods?: KubeObject[];
    status?: PlanRun['status'];
    now?: string;
    deleteError?: Error;
  } = {},
) {
  const spec = withRollbackPlanDefaults({
    scope: 'database',
    targets: {
      database: {
        backupScheduleRef: { name: 'db' },
        ...(o.safetyBackup === false ? { safetyBackup: false } : {}),
      },
    },
  } as RollbackPlanSpec);
  const jobs = new Map((o.jobs ?? []).map((j) => [j.metadata.name, j]));
  const log: string[] = [];
  const checkpoints: PlanRun['status'][] = [];
  const run: PlanRun = {
    plan: { metadata: { name: 'p', namespace: 'ns', uid: PLAN_UID } } as KubeObject,
    namespace: 'ns',
    spec,
    status: o.status ?? {
      steps: [{ name: 'PreValidation', startedAt: '2026-01-01T00:10:00.000Z', result: 'Running' }],
    },
    client: {
      get: async () => ({ metadata: { name: 'db' }, data: { uri: 'eA==' } }),
      list: async () => ({ metadata: {}, items: o.pods ?? [] }),
      delete: async (ref: { name: string }, opts: Record<string, unknown>) => {
        log.push(`delete ${ref.name} ${JSON.stringify(opts)}`);
        if (o.deleteError) throw o.deleteError;
        jobs.delete(ref.name);
        return {};
      },
      create: async (_ref: unknown, body: KubeObject) => {
        log.push(`create ${body.metadata.name}`);
        const created = { ...body, metadata: { ...body.metadata, uid: `uid-${body.metadata.name}` } };
        jobs.set(body.metadata.name, created as KubeObject);
        return created;
      },
    } as never,
    log: { info() {}, warn() {}, error() {}, debug() {} } as never,
    now: () => new Date(o.now ?? '2026-01-01T00:10:05Z'),
    allPlans: () => [],
    event: (_type, reason) => void log.push(`event ${reason}`),
    checkpoint: async () => {
      log.push('checkpoint');
      checkpoints.push(structuredClone(run.status));
    },
    cache: {
      schedule: (n) => (n === 'db' ? schedule : undefined),
      job: (n) => jobs.get(n),
      podsOfJob: (n) =>
        (o.pods ?? []).filter((p) => p.metadata.labels?.['batch.kubernetes.io/job-name'] === n),
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
  return { run, log, checkpoints };
}

const stepOf = (run: PlanRun, name: string) => run.status.steps?.find((s) => s.name === name);

describe('safetyBackupAlongsideVerify: which plans start the safety backup with the verify Job', () => {
  const running: Step = { name: 'SafetyBackup', startedAt: 'x', result: 'Running' };
  it.each([
    [true, undefined, true],
    [true, running, true],
    [true, { ...running, result: 'Succeeded' as const }, false],
    [true, { ...running, result: 'Skipped' as const }, false],
    [false, undefined, false],
  ])('safetyBackup %s, SafetyBackup entry %j: %s', (safetyBackup, entry, expected) => {
    const { run } = fakeRun({ safetyBackup, status: { steps: entry ? [entry] : [] } });
    expect(safetyBackupAlongsideVerify(run)).toBe(expected);
  });
});

describe("preValidateDatabase while the operator's cluster id is pending (M2)", () => {
  const s3Schedule = {
    ...schedule,
    spec: { ...schedule.spec, storage: { s3: { bucket: 'backups', prefix: 'db' } } },
  } as unknown as KubeObject;

  it('an S3 schedule waits (ClusterIdUnknown), starting no Job; a claim does not', async () => {
    const { run, log } = fakeRun();
    run.cache.schedule = (n) => (n === 'db' ? s3Schedule : undefined);
    run.runnerPolicy = { ...run.runnerPolicy, clusterIdPending: true };
    const outcome = await preValidateDatabase(run);
    expect(outcome).toMatchObject({ kind: 'wait', reason: 'ClusterIdUnknown' });
    expect(log.filter((l) => l.startsWith('create'))).toEqual([]);
    expect(run.status.database?.backupId).toBeUndefined();

    const claim = fakeRun();
    claim.run.runnerPolicy = { ...claim.run.runnerPolicy, clusterIdPending: true };
    await preValidateDatabase(claim.run);
    expect(claim.log).toContain('create p-verify');
  });
});

describe('preValidateDatabase starts the verify and safety backup Jobs together', () => {
  it('one reconcile: pin, both names and the SafetyBackup start durable, then both Jobs; waits naming both', async () => {
    const { run, log, checkpoints } = fakeRun();
    const outcome = await preValidateDatabase(run);
    expect(log).toEqual([
      'checkpoint',
      'create p-verify',
      'event VerifyingBackup',
      'create p-safety',
      'event SafetyBackupStarted',
    ]);
    expect(checkpoints[0]!.database).toMatchObject({
      backupId: 'db-1',
      verifyJob: 'p-verify',
      safetyBackupJob: 'p-safety',
    });
    expect(checkpoints[0]!.database?.verifyJobUID).toBeUndefined();
    expect(checkpoints[0]!.steps?.find((s) => s.name === 'SafetyBackup')).toMatchObject({
      result: 'Running',
      startedAt: '2026-01-01T00:10:05.000Z',
    });
    expect(run.status.database).toMatchObject({
      verifyJobUID: 'uid-p-verify',
      safetyBackupJobUID: 'uid-p-safety',
    });
    expect(outcome).toMatchObject({ kind: 'wait' });
    expect(outcome.message).toMatch(
      /verifying backup db-1 \(Job p-verify\); safety backup p-safety-abcdef12 running alongside \(Job p-safety\)/,
    );
  });

  it('safetyBackup: false starts the verify Job only, and no SafetyBackup step', async () => {
    const { run, log } = fakeRun({ safetyBackup: false });
    expect(await preValidateDatabase(run)).toMatchObject({ kind: 'wait' });
    expect(log).toEqual(['checkpoint', 'create p-verify', 'event VerifyingBackup']);
    expect(stepOf(run, 'SafetyBackup')).toBeUndefined();
    expect(run.status.database?.safetyBackupJob).toBeUndefined();
  });

  it('resumed after a crash right after both creates: adopts both Jobs (owner UID), creates nothing, writes nothing first', async () => {
    const status: PlanRun['status'] = {
      steps: [
        { name: 'PreValidation', startedAt: '2026-01-01T00:10:00.000Z', result: 'Running' },
        { name: 'SafetyBackup', startedAt: '2026-01-01T00:10:00.500Z', result: 'Running' },
      ],
      database: {
        backupScheduleRef: 'db',
        backupId: 'db-1',
        mode: 'inPlace',
        verifyJob: 'p-verify',
        safetyBackupJob: 'p-safety',
      },
    };
    const { run, log } = fakeRun({ status, jobs: [owned('p-verify', 'v-1'), owned('p-safety', 's-1')] });
    expect(await preValidateDatabase(run)).toMatchObject({ kind: 'wait' });
    expect(log).toEqual([]);
    expect(run.status.database).toMatchObject({ verifyJobUID: 'v-1', safetyBackupJobUID: 's-1' });
    expect(stepOf(run, 'SafetyBackup')?.startedAt).toBe('2026-01-01T00:10:00.500Z');
  });

  it('a failed verify fails pre-validation while the safety backup runs', async () => {
    const verify = owned('p-verify', 'v-1');
    const failed = finishedPod(verify, {
      ...backupResult(),
      operation: 'verify',
      id: 'db-1',
      success: false,
      reason: 'ChecksumMismatch',
      message: 'sha256 differs',
    });
    const { run } = fakeRun({ jobs: [verify, owned('p-safety', 's-1')], pods: [failed] });
    const outcome = await preValidateDatabase(run);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'ChecksumMismatch' });
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({ result: 'Running' });
  });
});

describe('settleSafetyBackup: a failed pre-validation says what became of the safety backup', () => {
  const started = (): PlanRun['status'] => ({
    steps: [
      { name: 'PreValidation', startedAt: '2026-01-01T00:10:00.000Z', result: 'Running' },
      { name: 'SafetyBackup', startedAt: '2026-01-01T00:10:00.500Z', result: 'Running' },
    ],
    database: { backupId: 'db-1', safetyBackupJob: 'p-safety', safetyBackupJobUID: 's-1' },
  });

  it('still running: deleted (that Job only, background), journalled "stopped: not needed", and the Failed event says so', async () => {
    const { run, log } = fakeRun({ status: started(), jobs: [owned('p-safety', 's-1')] });
    await settleSafetyBackup(run);
    expect(log).toEqual([
      'delete p-safety {"propagationPolicy":"Background","preconditionsUid":"s-1"}',
      'event SafetyBackupStopped',
    ]);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
      finishedAt: '2026-01-01T00:10:05.000Z',
      message: expect.stringMatching(/^stopped: not needed\. .*Job p-safety was deleted/),
    });
    expect(run.status.database?.safetyBackupId).toBeUndefined();
    expect(touchedSummary(run.status)).toBe(
      '; changed: database not changed; safety backup Job p-safety stopped (not needed)',
    );
  });

  it('a pod that cannot start is stopped too, not left for the Job deadline', async () => {
    const safety = owned('p-safety', 's-1', {
      status: { active: 1, startTime: '2026-01-01T00:00:00Z' },
    });
    const { run, log } = fakeRun({ status: started(), jobs: [safety] });
    await settleSafetyBackup(run);
    expect(log[0]).toMatch(/^delete p-safety /);
    expect(stepOf(run, 'SafetyBackup')?.message).toMatch(/^stopped: not needed/);
  });

  it('deleting it fails: left to finish, and says why', async () => {
    const { run, log } = fakeRun({
      status: started(),
      jobs: [owned('p-safety', 's-1')],
      deleteError: new KubeApiError(403, 'Forbidden', 'jobs.batch "p-safety" is forbidden', 'DELETE', '/x'),
    });
    await settleSafetyBackup(run);
    expect(log).toHaveLength(1);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(
        /^not waited for: .*could not be stopped \(deleting Job "p-safety" failed: .*left to finish on its own/,
      ),
    });
    expect(touchedSummary(run.status)).toBe(
      '; changed: database not changed; safety backup Job p-safety left to finish on its own (a backup nothing restores: harmless)',
    );
  });

  it('finished but its result not read yet: not deleted (the BackupSchedule records it), and not "left to finish"', async () => {
    const safety = owned('p-safety', 's-1', {
      status: {
        startTime: '2026-01-01T00:10:00Z',
        completionTime: '2026-01-01T00:10:04Z',
        conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: '2026-01-01T00:10:04Z' }],
      },
    });
    const { run, log } = fakeRun({ status: started(), jobs: [safety] });
    await settleSafetyBackup(run);
    expect(log).toEqual([]);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(/had finished, before its result was read/),
    });
    expect(stepOf(run, 'SafetyBackup')?.message).not.toMatch(/left to finish/);
    expect(touchedSummary(run.status)).toBe(
      '; changed: database not changed; safety backup Job p-safety had finished (a backup nothing restores: harmless)',
    );
  });

  it('already succeeded: recorded as taken, at the runner finish time', async () => {
    const safety = owned('p-safety', 's-1');
    const { run } = fakeRun({
      status: started(),
      jobs: [safety],
      pods: [finishedPod(safety, backupResult())],
    });
    await settleSafetyBackup(run);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Succeeded',
      finishedAt: '2026-01-01T00:10:04.000Z',
      message: expect.stringMatching(/taken alongside the verify Job.*nothing was restored/),
    });
    expect(run.status.database).toMatchObject({
      safetyBackupId: SAFETY_ID,
      safetyBackupStartedAt: '2026-01-01T00:10:01.000Z',
    });
    expect(touchedSummary(run.status)).toBe(
      `; changed: safety backup ${SAFETY_ID} taken; database not changed`,
    );
  });

  it('already failed: Failed, nothing was changed', async () => {
    const safety = owned('p-safety', 's-1');
    const pod = finishedPod(
      safety,
      backupResult({ success: false, reason: 'DatabaseUnreachable', message: 'refused' }),
    );
    const { run } = fakeRun({ status: started(), jobs: [safety], pods: [pod] });
    await settleSafetyBackup(run);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Failed',
      message: expect.stringMatching(/failed as well/),
    });
    expect(touchedSummary(run.status)).toBe('; nothing was changed');
  });

  it('created, and gone now (an earlier settle deleted it, its status write lost): stopped, nothing deleted again', async () => {
    const { run, log } = fakeRun({ status: started() });
    await settleSafetyBackup(run);
    expect(log).toEqual([]);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(/^stopped: not needed\. .*Job p-safety is gone/),
    });
    expect(touchedSummary(run.status)).toBe(
      '; changed: database not changed; safety backup Job p-safety stopped (not needed)',
    );
  });

  it('never created (the verify Job failed first): not started', async () => {
    const status = started();
    delete status.database!.safetyBackupJobUID;
    const { run } = fakeRun({ status });
    await settleSafetyBackup(run);
    expect(stepOf(run, 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(/^not started/),
    });
    expect(touchedSummary(run.status)).toBe('; nothing was changed');
  });

  it('leaves a finished entry and a plan without one alone', async () => {
    const done = started();
    done.steps![1] = { ...done.steps![1]!, result: 'Succeeded', finishedAt: 'y', message: 'taken' };
    const a = fakeRun({ status: done, jobs: [owned('p-safety', 's-1')] }).run;
    await settleSafetyBackup(a);
    expect(stepOf(a, 'SafetyBackup')).toMatchObject({ result: 'Succeeded', message: 'taken' });
    const b = fakeRun({ status: { steps: [] } }).run;
    await settleSafetyBackup(b);
    expect(b.status.steps).toEqual([]);
  });
});

describe('takeSafetyBackup after pre-validation started it', () => {
  it('reads the Job pre-validation created and ends at the runner finish time, not when the step looked', async () => {
    const safety = owned('p-safety', 's-1');
    const status: PlanRun['status'] = {
      steps: [
        {
          name: 'PreValidation',
          startedAt: '2026-01-01T00:10:00.000Z',
          finishedAt: '2026-01-01T00:10:06.000Z',
          result: 'Succeeded',
        },
        { name: 'SafetyBackup', startedAt: '2026-01-01T00:10:00.500Z', result: 'Running' },
      ],
      database: {
        backupScheduleRef: 'db',
        backupId: 'db-1',
        safetyBackupJob: 'p-safety',
        safetyBackupJobUID: 's-1',
      },
    };
    const { run, log } = fakeRun({
      status,
      jobs: [safety],
      pods: [finishedPod(safety, backupResult())],
      now: '2026-01-01T00:10:06Z',
    });
    const outcome = await takeSafetyBackup(run);
    expect(outcome).toMatchObject({ kind: 'done', finishedAt: new Date('2026-01-01T00:10:04Z') });
    expect(outcome.message).toMatch(/holds the database as of 2026-01-01T00:10:01\.000Z, when it started/);
    expect(log).toEqual([]);
    expect(run.status.database).toMatchObject({
      safetyBackupId: SAFETY_ID,
      safetyBackupStartedAt: '2026-01-01T00:10:01.000Z',
    });
  });
});

describe('restoreDatabase and the safety backup', () => {
  const before = (database: Record<string, unknown>): PlanRun['status'] => ({
    steps: [
      {
        name: 'SafetyBackup',
        startedAt: '2026-01-01T00:10:00.500Z',
        finishedAt: '2026-01-01T00:10:04.000Z',
        result: 'Succeeded',
      },
      { name: 'DatabaseRestore', startedAt: '2026-01-01T00:10:30.000Z', result: 'Running' },
    ],
    database: { backupScheduleRef: 'db', backupId: 'db-1', mode: 'inPlace', ...database },
  });

  it('refuses to restore when the plan takes a safety backup but none is recorded: nothing created', async () => {
    const { run, log } = fakeRun({ status: before({}) });
    expect(await restoreDatabase(run)).toMatchObject({ kind: 'failed', reason: 'SafetyBackupMissing' });
    expect(log).toEqual([]);
    expect(run.status.database?.restoreJob).toBeUndefined();
  });

  it('names the writes in neither backup: from the safety backup start to the restore start', async () => {
    const restore = owned('p-restore', 'r-1', { spec: { backoffLimit: 0, suspend: false } });
    const pod = finishedPod(restore, {
      ...backupResult(),
      operation: 'restore',
      id: 'db-1',
      message: 'restored',
      restoreSeconds: 2,
    });
    const { run } = fakeRun({
      status: before({
        safetyBackupId: SAFETY_ID,
        safetyBackupStartedAt: '2026-01-01T00:10:01.000Z',
        restoreJob: 'p-restore',
        restoreJobUID: 'r-1',
        restoreJobReleased: true,
      }),
      jobs: [restore],
      pods: [pod],
      now: '2026-01-01T00:10:40Z',
    });
    const outcome = await restoreDatabase(run);
    expect(outcome).toMatchObject({ kind: 'done' });
    expect(outcome.message).toMatch(
      new RegExp(
        `; writes made after the safety backup ${SAFETY_ID} started \\(2026-01-01T00:10:01\\.000Z, 29s before the restore started\\) are in neither the safety backup nor the restored database$`,
      ),
    );
  });
});

describe('stepEnd keeps a runner finish time within the step', () => {
  const run = {
    status: { steps: [{ name: 'S', startedAt: '2026-01-01T00:00:10.000Z', result: 'Running' as const }] },
    now: () => new Date('2026-01-01T00:00:20Z'),
  };
  it.each([
    ['2026-01-01T00:00:15Z', '2026-01-01T00:00:15.000Z'],
    ['2026-01-01T00:00:05Z', '2026-01-01T00:00:10.000Z'], // a node clock behind: not before the start
    ['2026-01-01T00:00:25Z', '2026-01-01T00:00:20.000Z'], // ahead: not in the future
    ['not a time', '2026-01-01T00:00:20.000Z'],
  ])('%s -> %s', (finishedAt, expected) => {
    expect(stepEnd(run, 'S', finishedAt).toISOString()).toBe(expected);
  });
});
