import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applySchedule,
  BACKUP_NOW,
  condition,
  createBoundClaim,
  createDbSecret,
  deletePvs,
  getSchedule,
  patchSchedule,
  scheduleJobs,
  scheduleSpec,
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
import { applyPlan, waitForEvents, waitPlanPhase, withReasons } from '../support/plans.js';
import { deploymentWithHistory } from '../support/workloads.js';

// "No object sits silent": inputs the API server accepts (or accepted before a schema rule existed) but that
// cannot work. Each must reach a terminal phase or a condition naming its problem within 60 s, through the
// real operator on the real control plane. Admission-time rejections are in crd-validation.test.ts.
describe('no object sits silent', () => {
  const { core, batch, kc } = testClients();
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const password = 'pw-silent-7d1e';
  let ns = '';
  let op: OperatorProcess;
  const pvs: string[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];
  const INVARIANT_MS = 60_000;

  const cronJobNames = async () =>
    (await batch.listNamespacedCronJob({ namespace: ns })).items.map((c) => c.metadata?.name);
  const reconcileErrors = () =>
    metricValue(op.metricsUrl, 'controller_runtime_reconcile_errors_total', {
      controller: 'backupschedule',
    });

  /** A ValidatingAdmissionPolicy bound to the test namespace, removed after the file; waits until it denies. */
  async function admissionPolicy(
    name: string,
    rule: { resources: string[]; operations: string[]; apiGroups?: string[] },
    expression: string,
    message: string,
    reason: 'Invalid' | 'Forbidden',
    probe: () => Promise<unknown>,
  ) {
    const policy = `${name}-${ns}`;
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [{ apiGroups: rule.apiGroups ?? [''], apiVersions: ['v1'], ...rule }],
          },
          validations: [{ expression, message, reason }],
        },
      },
    });
    cleanup.push(() => admission.deleteValidatingAdmissionPolicy({ name: policy }));
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy },
        spec: {
          policyName: policy,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
        },
      },
    });
    cleanup.push(() => admission.deleteValidatingAdmissionPolicyBinding({ name: policy }));
    // Policies are compiled asynchronously: wait until this one denies.
    await eventually(
      `admission policy ${policy} to deny`,
      async () =>
        probe().then(
          () => false,
          (e: unknown) => String((e as { body?: unknown }).body ?? e).includes(message),
        ),
      30_000,
      500,
    );
  }

  beforeAll(async () => {
    ns = await createTestNamespace('silent');
    await createDbSecret(ns, 'db', { host: 'db.example', database: 'app', username: 'u', password });
    pvs.push(await createBoundClaim(ns, 'backups'));
    // backup-runner: the ServiceAccount case below names it, and overrides are refused unless allowed.
    op = await startOperator({
      env: { WATCH_NAMESPACES: ns, ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'backup-runner' },
    });
    await op.waitReady();
  });
  afterAll(async () => {
    await op?.kill();
    for (const c of cleanup.reverse()) await c().catch(() => {});
    await deleteTestNamespace(ns);
    await deletePvs(pvs);
  });

  it('a cron range that ends before it starts, or a date that never comes, is Stalled/InvalidSchedule', async () => {
    // Both pass the schema's per-field grammar; the CronJob would be refused (5-1) or never run (30 Feb).
    await applySchedule(ns, 'backwards', scheduleSpec('db', 'backups', { schedule: '5-1 * * * *' }));
    await applySchedule(
      ns,
      'never',
      scheduleSpec('db', 'backups', { verify: { testRestoreSchedule: '0 3 30 2 *' } }),
    );
    const backwards = await waitScheduleCondition(
      ns,
      'backwards',
      'Stalled',
      'True',
      'InvalidSchedule',
      INVARIANT_MS,
    );
    expect(condition(backwards, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSchedule' });
    expect(condition(backwards, 'Ready').message).toBe(
      'spec.schedule "5-1 * * * *": minute: "5-1": the range starts after it ends',
    );
    const never = await waitScheduleCondition(
      ns,
      'never',
      'Stalled',
      'True',
      'InvalidSchedule',
      INVARIANT_MS,
    );
    expect(condition(never, 'Ready').message).toMatch(
      /^spec.verify.testRestoreSchedule "0 3 30 2 \*": .*never runs/,
    );
    expect(await cronJobNames()).not.toContain('backwards-backup');
    await waitForEvents(
      ns,
      'backwards',
      (events) => events.some((e) => e.type === 'Warning' && e.reason === 'InvalidSchedule'),
      'a Warning InvalidSchedule Event',
    );
  });

  it('a CronJob the API server rejects is Stalled/CronJobRejected with its message, not retried until the spec changes', async () => {
    // An extended resource needs a limit equal to its request: the API server refuses the CronJob (422).
    await applySchedule(
      ns,
      'gpu',
      scheduleSpec('db', 'backups', {
        podTemplate: {
          ...scheduleSpec('db', 'backups').podTemplate,
          resources: { requests: { 'example.com/gpu': '1' } },
        },
      }),
    );
    const s = await waitScheduleCondition(ns, 'gpu', 'Stalled', 'True', 'CronJobRejected', INVARIANT_MS);
    const message = condition(s, 'Ready').message as string;
    expect(message).toMatch(/^the API server rejected CronJob gpu-backup \(422 Invalid\): /);
    expect(message).toContain('Limit must be set for non overcommitable resources');
    expect(message).toMatch(/fix the BackupSchedule spec$/);
    expect(message.length).toBeLessThanOrEqual(1200);
    expect(await cronJobNames()).not.toContain('gpu-backup');

    // No retry loop: the rejection is a condition, not a reconcile error retried with backoff. An unrelated
    // change (an annotation: no new generation) reconciles again without sending the same CronJob.
    const errors = (await reconcileErrors()) ?? 0;
    await kubectl('-n', ns, 'annotate', 'bks', 'gpu', 'touched=1');
    await new Promise((r) => setTimeout(r, 5_000));
    expect((await reconcileErrors()) ?? 0).toBe(errors);
    expect(op.logs()).not.toMatch(/Reconciler error[^\n]*gpu-backup/);

    // The spec changes: tried again, and it works.
    await patchSchedule(ns, 'gpu', {
      spec: { podTemplate: { resources: { limits: { 'example.com/gpu': '1' } } } },
    });
    await waitScheduleCondition(ns, 'gpu', 'Ready', 'True', 'Scheduled', INVARIANT_MS);
    expect(await cronJobNames()).toContain('gpu-backup');
  });

  it('a claim the API server refuses to create (403) is Ready=False/ClaimRejected, retried slowly', async () => {
    // An organisation's policy (a real admission policy, evaluated by the API server) that answers 403.
    const message = 'claims here must use the storage class fast';
    await admissionPolicy(
      'silent-claims',
      { resources: ['persistentvolumeclaims'], operations: ['CREATE'] },
      "object.metadata.name != 'big-backups' || (has(object.spec.storageClassName) && object.spec.storageClassName == 'fast')",
      message,
      'Forbidden',
      () =>
        core.createNamespacedPersistentVolumeClaim({
          namespace: ns,
          dryRun: 'All',
          body: {
            metadata: { name: 'big-backups' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        }),
    );
    await applySchedule(ns, 'big', {
      ...scheduleSpec('db', 'unused'),
      storage: { persistentVolumeClaim: { create: { size: '50Gi', storageClassName: 'manual' } } },
    });
    const s = await waitScheduleCondition(ns, 'big', 'Ready', 'False', 'ClaimRejected', INVARIANT_MS);
    expect(condition(s, 'Ready').message).toMatch(
      /^the API server rejected PersistentVolumeClaim big-backups \(403 Forbidden\): .*denied request: claims here must use the storage class fast; grant the permission or lift the policy; the operator tries again every 5 minutes$/,
    );
    // A 403 is lifted outside the spec (RBAC, policy, quota): not stalled, tried again later.
    expect(condition(s, 'Stalled').status).toBe('False');
  });

  it('an emergency backup behind a missing claim reports ClaimNotFound and starts no Job', async () => {
    await applySchedule(ns, 'noclaim', scheduleSpec('db', 'absent-claim'));
    await kubectl('-n', ns, 'annotate', 'bks', 'noclaim', `${BACKUP_NOW}=incident-1`);
    const s = await waitScheduleCondition(ns, 'noclaim', 'Ready', 'False', 'ClaimNotFound', INVARIANT_MS);
    expect(condition(s, 'Ready').message).toBe(
      `PersistentVolumeClaim "absent-claim" (spec.storage.persistentVolumeClaim.claimName) not found in namespace ${ns}; create it or use storage.persistentVolumeClaim.create`,
    );
    expect(await scheduleJobs(ns, 'noclaim')).toEqual([]);
  });

  it('an existing claim that cannot take backups (ReadOnlyMany) is ClaimNotUsable', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: 'read-only' },
        spec: {
          storageClassName: 'manual',
          accessModes: ['ReadOnlyMany'],
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    await applySchedule(ns, 'rox', scheduleSpec('db', 'read-only'));
    const s = await waitScheduleCondition(ns, 'rox', 'Ready', 'False', 'ClaimNotUsable', INVARIANT_MS);
    expect(condition(s, 'Ready').message).toContain('is ReadOnlyMany, and backups must be written to it');
  });

  it('an emergency backup behind a missing ServiceAccount reports ServiceAccountNotFound and starts no Job', async () => {
    await applySchedule(
      ns,
      'nosa',
      scheduleSpec('db', 'backups', {
        podTemplate: { ...scheduleSpec('db', 'backups').podTemplate, serviceAccountName: 'backup-runner' },
      }),
    );
    await kubectl('-n', ns, 'annotate', 'bks', 'nosa', `${BACKUP_NOW}=incident-1`);
    const s = await waitScheduleCondition(
      ns,
      'nosa',
      'Ready',
      'False',
      'ServiceAccountNotFound',
      INVARIANT_MS,
    );
    expect(condition(s, 'Ready').message).toContain(
      'ServiceAccount "backup-runner" (spec.podTemplate.serviceAccountName) not found',
    );
    expect(await scheduleJobs(ns, 'nosa')).toEqual([]);
    // Created: the check passes on its next look (within 30 s) and the waiting request runs.
    await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'backup-runner' } },
    });
    await waitScheduleCondition(ns, 'nosa', 'Ready', 'True', 'Scheduled', INVARIANT_MS);
    expect(await scheduleJobs(ns, 'nosa')).toHaveLength(1);
  });

  it('an emergency backup whose pod cannot be scheduled is reported on LastBackupSucceeded, not at the deadline', async () => {
    // The claim the operator creates stays unbound (no PersistentVolume can take it): the scheduler refuses
    // the pod. Ready stays True (the schedule is set up); the run at hand is what is stuck.
    await applySchedule(ns, 'unbound', {
      ...scheduleSpec('db', 'unused'),
      storage: { persistentVolumeClaim: { create: { size: '1Gi', storageClassName: 'nowhere' } } },
    });
    await waitScheduleCondition(ns, 'unbound', 'Ready', 'True', 'Scheduled', INVARIANT_MS);
    await kubectl('-n', ns, 'annotate', 'bks', 'unbound', `${BACKUP_NOW}=incident-1`);
    const s = await waitScheduleCondition(
      ns,
      'unbound',
      'LastBackupSucceeded',
      'False',
      'RunnerPodUnschedulable',
      INVARIANT_MS,
    );
    const [job] = await scheduleJobs(ns, 'unbound');
    expect(condition(s, 'LastBackupSucceeded').message).toMatch(
      new RegExp(
        `^backup Job ${job!.metadata!.name}: pod ${job!.metadata!.name}-\\w+ cannot be scheduled: .*unbound`,
      ),
    );
    await waitForEvents(ns, 'unbound', withReasons('RunnerPodUnschedulable'));
  });

  it('a backup-now value longer than status allows starts one Job and is recorded, bounded', async () => {
    await applySchedule(ns, 'longnow', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(ns, 'longnow', 'Ready', 'True', 'Scheduled', INVARIANT_MS);
    const value = `incident-${'x'.repeat(400)}`;
    await kubectl('-n', ns, 'annotate', 'bks', 'longnow', `${BACKUP_NOW}=${value}`);
    const s = await eventually(
      'lastBackupNow in status',
      async () => {
        const current = await getSchedule(ns, 'longnow');
        return current.status?.lastBackupNow ? current : undefined;
      },
      INVARIANT_MS,
      200,
    );
    const handled = s.status.lastBackupNow.annotationValue as string;
    expect(handled.length).toBeLessThanOrEqual(253);
    expect(handled).toMatch(/^incident-x+\.\.\.sha256:[0-9a-f]{32}$/);
    const jobs = await scheduleJobs(ns, 'longnow');
    expect(jobs.map((j) => j.metadata?.name)).toEqual([s.status.lastBackupNow.jobName]);
    // Handled once: later reconciles see the same (bounded) value and start nothing more.
    await kubectl('-n', ns, 'annotate', '--overwrite', 'bks', 'longnow', 'touched=1');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await scheduleJobs(ns, 'longnow')).toHaveLength(1);
  });

  it('a flag whose value is longer than status allows is disabled and recorded, bounded', async () => {
    const long = 'v'.repeat(5000);
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'big-flags' }, data: { checkout: long } },
    });
    await applyPlan(ns, 'long-flag', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'big-flags' }, disable: ['checkout'] } },
    });
    const plan = await waitPlanPhase(ns, 'long-flag', ['Succeeded', 'Failed'], INVARIANT_MS);
    expect(plan.status.phase).toBe('Succeeded');
    const [entry] = plan.status.featureFlags;
    expect(entry.key).toBe('checkout');
    expect(entry.previous.length).toBeLessThanOrEqual(1024);
    expect(entry.previous).toMatch(/^v+\.\.\.sha256:[0-9a-f]{32}$/);
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'big-flags' });
    expect(cm.data).toEqual({ checkout: 'false' });
  });

  it('a dry run reports a long flag value bounded', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'big-flags-2' }, data: { checkout: 'w'.repeat(5000) } },
    });
    await applyPlan(ns, 'long-flag-dry', {
      scope: 'feature',
      dryRun: true,
      targets: { featureFlags: { configMapRef: { name: 'big-flags-2' }, disable: ['checkout'] } },
    });
    const plan = await waitPlanPhase(ns, 'long-flag-dry', ['DryRunComplete', 'Failed'], INVARIANT_MS);
    const [entry] = plan.status.dryRunReport.featureFlags;
    expect(entry.current).toMatch(/^w+\.\.\.sha256:[0-9a-f]{32}$/);
    expect(entry.current.length).toBeLessThanOrEqual(1024);
  });

  it('a ConfigMap patch the API server rejects fails the plan with FlagPatchRejected and its message', async () => {
    // An admission policy (a real one, evaluated by the API server) forbids turning this flag off.
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'locked-flags' }, data: { checkout: 'true' } },
    });
    await admissionPolicy(
      'silent-flags',
      { resources: ['configmaps'], operations: ['UPDATE'] },
      "object.metadata.name != 'locked-flags' || object.data['checkout'] != 'false'",
      'checkout may not be turned off here',
      'Invalid',
      () =>
        kubectl(
          '-n',
          ns,
          'patch',
          'cm',
          'locked-flags',
          '--dry-run=server',
          '--type=merge',
          '-p',
          '{"data":{"checkout":"false"}}',
        ),
    );

    await applyPlan(ns, 'locked', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'locked-flags' }, disable: ['checkout'] } },
    });
    const plan = await waitPlanPhase(ns, 'locked', ['Succeeded', 'Failed'], INVARIANT_MS);
    expect(plan.status.phase).toBe('Failed');
    const ready = plan.status.conditions.find((c: any) => c.type === 'Ready');
    expect(ready.reason).toBe('FlagPatchRejected');
    expect(ready.message).toMatch(
      /^step FeatureFlags failed: the API server rejected the patch of ConfigMap locked-flags \(422 Invalid\): .*checkout may not be turned off here/,
    );
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'locked-flags' });
    expect(cm.data).toEqual({ checkout: 'true' });
  });

  it('a flag ConfigMap deleted during the rollback fails the plan with TargetNotFound', async () => {
    // Its own namespace and operators: the first one dies right after the Deployment patch (a failpoint),
    // the ConfigMap is deleted, the second one resumes the plan at the flags step.
    const n = await createTestNamespace('silent-gone');
    cleanup.push(() => deleteTestNamespace(n));
    await deploymentWithHistory(n, 'web', ['nginx:1.25', 'nginx:1.26']);
    await core.createNamespacedConfigMap({
      namespace: n,
      body: { metadata: { name: 'flags' }, data: { checkout: 'true' } },
    });
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: n, NXT_FAILPOINTS: 'after-deployment-patch' },
      name: 'crashing',
    });
    await crashing.waitReady();
    await applyPlan(n, 'gone', {
      scope: 'full',
      targets: {
        deployments: [{ name: 'web' }],
        featureFlags: { configMapRef: { name: 'flags' }, disable: ['checkout'] },
      },
    });
    expect(await crashing.exited, 'the failpoint killed the operator').toBe('SIGKILL');
    await core.deleteNamespacedConfigMap({ namespace: n, name: 'flags' });
    const restarted = await startOperator({ env: { WATCH_NAMESPACES: n }, name: 'restarted' });
    try {
      await restarted.waitReady();
      const plan = await waitPlanPhase(n, 'gone', ['Succeeded', 'Failed'], INVARIANT_MS);
      expect(plan.status.phase).toBe('Failed');
      const ready = plan.status.conditions.find((c: any) => c.type === 'Ready');
      expect(ready.reason).toBe('TargetNotFound');
      expect(ready.message).toContain('ConfigMap flags: the object was deleted during the rollback');
    } finally {
      await restarted.kill();
    }
  });

  it('an immutable flag ConfigMap fails the plan at pre-validation, before anything changes', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'frozen-flags' }, data: { checkout: 'true' }, immutable: true },
    });
    await applyPlan(ns, 'frozen', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'frozen-flags' }, disable: ['checkout'] } },
    });
    const plan = await waitPlanPhase(ns, 'frozen', ['Succeeded', 'Failed'], INVARIANT_MS);
    expect(plan.status.phase).toBe('Failed');
    const ready = plan.status.conditions.find((c: any) => c.type === 'Ready');
    expect(ready.reason).toBe('TargetImmutable');
    expect(ready.message).toContain(
      'ConfigMap "frozen-flags" (spec.targets.featureFlags.configMapRef) is immutable',
    );
    const steps = plan.status.steps.map((st: any) => [st.name, st.result]);
    expect(steps).toContainEqual(['PreValidation', 'Failed']);
    expect(steps.map(([name]: string[]) => name)).not.toContain('FeatureFlags');
  });
});
