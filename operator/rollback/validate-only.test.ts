import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import type { PlanRun } from './plan-run.js';
import { validatePost, validatePre, validationReport } from './validate-only.js';

const apiError = (code: number, reason: string, method = 'GET') =>
  new KubeApiError(code, reason, `the server says ${reason}`, method, '/apis/apps/v1/namespaces/ns/x');

const notFound = () => new KubeApiError(404, 'NotFound', 'not found', 'GET', '/x');

const deployment = (name: string, over: Record<string, unknown> = {}) => ({
  metadata: {
    name,
    namespace: 'ns',
    generation: 2,
    annotations: { 'deployment.kubernetes.io/revision': '2' },
  },
  spec: { replicas: 1, template: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } },
  status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1, ...over },
});

function fakeRun(
  spec: Partial<RollbackPlanSpec>,
  opts: {
    deployments?: Record<string, object>;
    schedule?: KubeObject;
    http?: (i: number) => any;
    now?: Date;
    status?: object;
    /** Replaces the client's answers (throw to fail a call). */
    fail?: (ref: { plural: string; name?: string }) => void;
  } = {},
): PlanRun {
  const full = withRollbackPlanDefaults({ scope: 'app', targets: {}, ...spec } as RollbackPlanSpec);
  return {
    plan: { metadata: { name: 'v', namespace: 'ns', uid: 'u', creationTimestamp: '2026-01-01T00:00:00Z' } },
    namespace: 'ns',
    spec: full,
    status: structuredClone(opts.status ?? {}),
    client: {
      get: async (ref: { plural: string; name: string }) => {
        opts.fail?.(ref);
        if (ref.plural === 'deployments' && opts.deployments?.[ref.name]) return opts.deployments[ref.name];
        if (ref.plural === 'secrets') return { data: { host: '', database: '', username: '', password: '' } };
        throw notFound();
      },
      list: async (ref: { plural: string }) => {
        opts.fail?.(ref);
        return { metadata: {}, items: [] };
      },
    } as any,
    log: { info() {}, warn() {}, debug() {}, error() {} } as any,
    now: () => opts.now ?? new Date(),
    allPlans: () => [],
    event: () => {},
    checkpoint: async () => {
      throw new Error('a validation must not write status mid-way');
    },
    cache: {
      schedule: () => opts.schedule,
      job: () => undefined,
      podsOfJob: () => [],
      deployment: () => undefined,
    },
    access: { check: async () => ({ allowed: true }) } as any,
    histories: new Map(),
    runnerImage: 'img',
    checks: {
      http: (i: number) => opts.http?.(i) ?? { state: 'running' },
      problem: () => undefined,
      settle: () => {},
    },
    runnerPolicy: {} as any,
    jobConflictTimeoutMs: 1000,
  };
}

describe('validationReport', () => {
  it('passes when nothing failed (Skipped does not count), with reason ChecksPassed', () => {
    const r = validationReport('pre', [
      { name: 'A', result: 'Passed', message: 'ok' },
      { name: 'B', result: 'Skipped', message: 'n/a' },
    ]);
    expect(r.report).toEqual({
      stage: 'pre',
      passed: true,
      checks: [
        { name: 'A', result: 'Passed', message: 'ok' },
        { name: 'B', result: 'Skipped', message: 'n/a' },
      ],
    });
    expect(r.reason).toBe('ChecksPassed');
    expect(r.summary).toBe('pre-validation: all 1 check(s) passed');
  });
  it("fails with the first failed check's reason and names the failures in the summary; bounded", () => {
    const r = validationReport('post', [
      { name: 'A', result: 'Failed', message: 'x'.repeat(5000), reason: 'HTTPCheckFailed' },
      { name: 'B', result: 'Failed', message: 'no', reason: 'RolloutTimeout' },
      ...Array.from({ length: 100 }, (_, i) => ({ name: `C${i}`, result: 'Passed' as const, message: '' })),
    ]);
    expect(r.report.passed).toBe(false);
    expect(r.reason).toBe('HTTPCheckFailed');
    expect(r.report.checks).toHaveLength(64);
    expect(r.report.checks[0]!.message.length).toBeLessThanOrEqual(1024);
    expect(r.summary.length).toBeLessThanOrEqual(1024);
    expect(r.summary).toMatch(/^post-validation: 2 of 64 check\(s\) failed: A: x/);
  });
});

describe('validatePre', () => {
  it('a missing Deployment fails CheckTargetsExist and skips the checks after it, writing nothing', async () => {
    const run = fakeRun({ targets: { deployments: [{ name: 'gone' }] } });
    const checks = await validatePre(run);
    expect(checks.map((c) => [c.name, c.result])).toEqual([
      ['CheckTargetsExist', 'Failed'],
      ['CheckRevisionsExist', 'Skipped'],
      ['CheckNotPaused', 'Skipped'],
      ['CheckNoConcurrentPlan', 'Skipped'],
      ['CheckPermissions', 'Skipped'],
    ]);
    expect(checks[0]).toMatchObject({ reason: 'TargetNotFound' });
    expect(run.status.steps).toBeUndefined(); // the plan's own journal is untouched
  });

  it('database: a schedule with no verified backup fails CheckBackupSelected; no Job is needed', async () => {
    const schedule = {
      metadata: { name: 'db', namespace: 'ns' },
      spec: {
        database: { secretRef: { name: 's' } },
        storage: { persistentVolumeClaim: { claimName: 'c' } },
      },
      status: {
        backups: [
          {
            id: 'b1',
            startedAt: '2026-01-01T00:00:00Z',
            finishedAt: '2026-01-01T00:00:00Z',
            verified: false,
          },
        ],
      },
    } as unknown as KubeObject;
    const run = fakeRun(
      { scope: 'database', targets: { database: { backupScheduleRef: { name: 'db' } } } },
      { schedule },
    );
    const checks = await validatePre(run);
    expect(checks.map((c) => [c.name, c.result])).toEqual([
      ['CheckNoConcurrentRestore', 'Passed'],
      ['CheckBackupSchedule', 'Passed'],
      ['CheckBackupSelected', 'Failed'],
      ['CheckJobPermissions', 'Skipped'],
    ]);
    expect(checks[2]).toMatchObject({ reason: 'BackupNotFound' });
  });

  it('database: an id from the prefix of another cluster passes with foreignCluster, and says so', async () => {
    const schedule = (foreignCluster?: object) =>
      ({
        metadata: { name: 'db', namespace: 'ns' },
        spec: {
          database: { secretRef: { name: 's' } },
          storage: {
            s3: { bucket: 'backups', prefix: 'dr/db', ...(foreignCluster ? { foreignCluster } : {}) },
          },
        },
        status: {},
      }) as unknown as KubeObject;
    const spec = {
      scope: 'database' as const,
      targets: { database: { backupScheduleRef: { name: 'db' }, backup: { id: 'db-100' } } },
    };
    const allowed = await validatePre(
      fakeRun(spec as never, { schedule: schedule({ clusterId: 'a', allow: 'Restore' }) }),
    );
    expect(
      allowed.map((c) => [c.name, c.result]),
      JSON.stringify(allowed),
    ).toEqual([
      ['CheckNoConcurrentRestore', 'Passed'],
      ['CheckBackupSchedule', 'Passed'],
      ['CheckBackupSelected', 'Passed'],
      ['CheckJobPermissions', 'Passed'],
    ]);
    expect(allowed[2]!.message).toMatch(/taken from the prefix s3:\/\/backups\/dr\/db/);
    const refused = await validatePre(fakeRun(spec as never, { schedule: schedule() }));
    expect(refused[2]).toMatchObject({
      result: 'Failed',
      reason: 'BackupNotFound',
      message: expect.stringMatching(/spec\.storage\.s3\.foreignCluster/),
    });
  });

  it('database: an unknown BackupSchedule fails CheckBackupSchedule', async () => {
    const run = fakeRun({
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'nope' } } },
    });
    const checks = await validatePre(run);
    expect(checks.find((c) => c.name === 'CheckBackupSchedule')).toMatchObject({
      result: 'Failed',
      reason: 'BackupScheduleNotFound',
    });
  });
});

describe('validatePost', () => {
  const http = [{ url: 'http://127.0.0.1:1/healthz', expectStatus: 200 }];
  it('waits while a rollout is in progress, then fails it at validation.timeout', async () => {
    const progressing = { web: deployment('web', { availableReplicas: 0 }) };
    const start = new Date('2026-01-01T00:00:00Z');
    const run = fakeRun(
      { targets: { deployments: [{ name: 'web' }] }, validation: { timeout: '10s' } },
      { deployments: progressing, now: start },
    );
    const first = await validatePost(run);
    expect(first).toMatchObject({ kind: 'wait' });
    expect(run.status.steps?.[0]).toMatchObject({ name: 'PostValidation', startedAt: start.toISOString() });
    const later = fakeRun(
      { targets: { deployments: [{ name: 'web' }] }, validation: { timeout: '10s' } },
      { deployments: progressing, now: new Date(start.getTime() + 11_000), status: run.status },
    );
    const done = await validatePost(later);
    expect(done).toMatchObject({
      kind: 'done',
      checks: [{ name: 'CheckRolledOut/web', result: 'Failed', reason: 'RolloutTimeout' }],
    });
  });

  it('a rolled-out Deployment passes; the HTTP checks decide when they finish', async () => {
    const deployments = { web: deployment('web') };
    const running = fakeRun(
      { targets: { deployments: [{ name: 'web' }] }, validation: { http } },
      { deployments },
    );
    expect(await validatePost(running)).toMatchObject({ kind: 'wait' });
    const failed = fakeRun(
      { targets: { deployments: [{ name: 'web' }] }, validation: { http } },
      {
        deployments,
        http: () => ({
          state: 'done',
          result: { passed: false, reason: 'HTTPCheckFailed', message: 'status 503', attempts: 3 },
        }),
      },
    );
    expect(await validatePost(failed)).toMatchObject({
      kind: 'done',
      checks: [
        { name: 'CheckRolledOut/web', result: 'Passed' },
        { name: 'CheckHTTP/1', result: 'Failed', message: 'status 503', reason: 'HTTPCheckFailed' },
      ],
    });
  });

  it('a missing Deployment fails at once with TargetNotFound', async () => {
    const run = fakeRun({ targets: { deployments: [{ name: 'gone' }] } });
    expect(await validatePost(run)).toMatchObject({
      kind: 'done',
      checks: [{ name: 'CheckRolledOut/gone', result: 'Failed', reason: 'TargetNotFound' }],
    });
  });

  it('a Deployment GET that fails for good (403) is a Failed check with reason APIError, at once', async () => {
    const run = fakeRun(
      { targets: { deployments: [{ name: 'web' }] } },
      {
        fail: () => {
          throw apiError(403, 'Forbidden');
        },
      },
    );
    const r = await validatePost(run);
    expect(r).toMatchObject({
      kind: 'done',
      checks: [{ name: 'CheckRolledOut/web', result: 'Failed', reason: 'APIError' }],
    });
    const message = (r as { checks: { message: string }[] }).checks[0]!.message;
    expect(message).toMatch(
      /^cannot read Deployment "web": API error: GET .*: 403 Forbidden: the server says/,
    );
  });

  it('a transient error (503) is retried by requeue, named while waiting, and Failed once the deadline passed', async () => {
    const start = new Date('2026-01-01T00:00:00Z');
    const spec = { targets: { deployments: [{ name: 'web' }] }, validation: { timeout: '30s' } };
    const fail = () => {
      throw apiError(503, 'ServiceUnavailable');
    };
    const run = fakeRun(spec, { fail, now: start });
    const first = await validatePost(run);
    expect(first).toMatchObject({ kind: 'wait' });
    expect((first as { message: string }).message).toMatch(
      /^waiting: cannot read Deployment "web" \(will retry\): API error: GET .* 503 ServiceUnavailable/,
    );
    expect((first as { requeueAfterMs: number }).requeueAfterMs).toBeLessThanOrEqual(5000);
    const later = fakeRun(spec, { fail, now: new Date(start.getTime() + 31_000), status: run.status });
    expect(await validatePost(later)).toMatchObject({
      kind: 'done',
      checks: [{ name: 'CheckRolledOut/web', result: 'Failed', reason: 'APIError' }],
    });
  });

  it('after downtime past the deadline, an HTTP check never attempted says so (not "did not pass")', async () => {
    const start = new Date('2026-01-01T00:00:00Z');
    const status = { steps: [{ name: 'PostValidation', startedAt: start.toISOString(), result: 'Running' }] };
    const spec = { targets: {}, scope: 'app' as const, validation: { http, timeout: '10s' } };
    const at = new Date(start.getTime() + 3_600_000);
    // A task started only now (by this reconcile) has no progress note yet.
    const fresh = fakeRun(spec, { status, now: at, http: () => ({ state: 'running' }) });
    expect(await validatePost(fresh)).toMatchObject({
      kind: 'done',
      checks: [
        {
          name: 'CheckHTTP/1',
          result: 'Failed',
          reason: 'HTTPCheckTimeout',
          message:
            'http://127.0.0.1:1/healthz: not attempted before the deadline (the operator was unavailable or busy)',
        },
      ],
    });
    const tried = fakeRun(spec, {
      status,
      now: at,
      http: () => ({ state: 'running', progress: 'http://127.0.0.1:1/healthz: attempt 1 of 3: refused' }),
    });
    expect(await validatePost(tried)).toMatchObject({
      kind: 'done',
      checks: [{ message: 'http://127.0.0.1:1/healthz: did not pass within validation.timeout 10s' }],
    });
  });
});

describe('validatePre: API errors', () => {
  it.each([
    ['a Deployment GET', 'deployments', 403, 'Forbidden'],
    ['a ReplicaSet list', 'replicasets', 500, 'InternalError'],
  ])(
    '%s that throws (%s %d) is a Failed check with reason APIError, the rest Skipped',
    async (_w, plural, code, reason) => {
      const run = fakeRun(
        { targets: { deployments: [{ name: 'web' }] } },
        {
          deployments: { web: deployment('web') },
          fail: (ref) => {
            if (ref.plural === plural) throw apiError(code, reason);
          },
        },
      );
      const checks = await validatePre(run);
      const failed = checks.filter((c) => c.result === 'Failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ reason: 'APIError' });
      expect(failed[0]!.message).toMatch(
        new RegExp(`^API error: GET .*: ${code} ${reason}: the server says`),
      );
      expect(checks.filter((c) => c.result === 'Passed').map((c) => c.name)).not.toContain(
        'CheckPermissions',
      );
      expect(checks.at(-1)).toMatchObject({ name: 'CheckPermissions', result: 'Skipped' });
      expect(validationReport('pre', checks)).toMatchObject({
        reason: 'APIError',
        report: { passed: false },
      });
    },
  );
});
