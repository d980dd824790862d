import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applySchedule,
  condition,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  scheduleSpec,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestNamespace, deleteTestNamespace, kubectl, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';

// Runner pods get the database credentials, so whoever creates a BackupSchedule must not pick the image or
// the ServiceAccount they run with unless the operator's configuration allows it (issue 9, confused deputy).
describe('runner pod overrides are opt-in by operator configuration', () => {
  const { batch, core } = testClients();
  let ns = '';
  let op: OperatorProcess | undefined;
  const pvs: string[] = [];
  const run = async (env: Record<string, string> = {}) => {
    await op?.kill();
    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ...env } });
    await op.waitReady();
  };
  const cronJobsOf = async (schedule: string) =>
    (
      await batch.listNamespacedCronJob({
        namespace: ns,
        labelSelector: `rollback.nxtnewday.io/backup-schedule=${schedule}`,
      })
    ).items;

  beforeAll(async () => {
    ns = await createTestNamespace('overrides');
    await createDbSecret(ns, 'db', dbSecretData('unused'));
    pvs.push(await createBoundClaim(ns, 'backups'));
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'deployer' } } });
    await run();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- operator ---\n${op?.logs().slice(-4000)}`);
  });
  afterAll(async () => {
    await op?.kill();
    if (ns) await deleteTestNamespace(ns);
    await deletePvs(pvs);
  });

  it('a BackupSchedule naming another image is Stalled (ImageNotAllowed) and gets no CronJob', async () => {
    await applySchedule(
      ns,
      'evil-image',
      scheduleSpec('db', 'backups', { podTemplate: { image: 'evil.example/dump:1' } }),
    );
    const s = await waitScheduleCondition(ns, 'evil-image', 'Stalled', 'True', 'ImageNotAllowed');
    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ImageNotAllowed' });
    expect(condition(s, 'Ready').message).toContain('ALLOWED_RUNNER_IMAGES is empty');
    expect(await cronJobsOf('evil-image')).toEqual([]);
  });

  it('a BackupSchedule naming a ServiceAccount is Stalled (ServiceAccountNotAllowed) and gets no CronJob', async () => {
    await applySchedule(
      ns,
      'evil-sa',
      scheduleSpec('db', 'backups', { podTemplate: { serviceAccountName: 'deployer' } }),
    );
    await waitScheduleCondition(ns, 'evil-sa', 'Stalled', 'True', 'ServiceAccountNotAllowed');
    expect(await cronJobsOf('evil-sa')).toEqual([]);
  });

  it('a RollbackPlan restoring through such a schedule fails before any Job runs', async () => {
    await applyPlan(ns, 'restore-evil', {
      scope: 'database',
      targets: {
        database: {
          backupScheduleRef: { name: 'evil-image' },
          backup: { latestVerified: true },
          mode: 'inPlace',
        },
      },
    });
    const plan = await waitPlanPhase(ns, 'restore-evil', ['Failed', 'Succeeded'], 60_000);
    expect(plan.status.phase).toBe('Failed');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'False', reason: 'ImageNotAllowed' });
    const jobs = await batch.listNamespacedJob({
      namespace: ns,
      labelSelector: 'rollback.nxtnewday.io/plan=restore-evil',
    });
    expect(jobs.items.map((j) => j.metadata?.name)).toEqual([]);
  });

  it('an operator that allows them applies them, and still refuses the rest', async () => {
    await run({
      ALLOWED_RUNNER_IMAGES: 'reg.example/team/',
      ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'nxt-backup-runner,deployer',
    });
    await applySchedule(
      ns,
      'team',
      scheduleSpec('db', 'backups', {
        podTemplate: { image: 'reg.example/team/pg-tools:16', serviceAccountName: 'deployer' },
      }),
    );
    await waitScheduleCondition(ns, 'team', 'Ready', 'True', 'Scheduled');
    const [cron] = await cronJobsOf('team');
    const pod = cron!.spec!.jobTemplate.spec!.template.spec!;
    expect(pod.containers[0]!.image).toBe('reg.example/team/pg-tools:16');
    expect(pod.serviceAccountName).toBe('deployer');
    // The schedule refused before is re-evaluated (its spec did not change) and still refused.
    await kubectl('-n', ns, 'annotate', 'bks', 'evil-image', 'nudge=1');
    await waitScheduleCondition(ns, 'evil-image', 'Stalled', 'True', 'ImageNotAllowed');
    expect(await cronJobsOf('evil-image')).toEqual([]);
    await waitScheduleCondition(ns, 'evil-sa', 'Ready', 'True', 'Scheduled');
  });

  it('narrowing the allow-list suspends the CronJobs that still run a now-refused image (review of issue 9)', async () => {
    // 'team' got its CronJob while reg.example/team/ was allowed (the test above). The administrator empties
    // the allow-list: the schedule is refused, and its CronJob must stop running the image with the Secret.
    await run();
    const s = await waitScheduleCondition(ns, 'team', 'Stalled', 'True', 'ImageNotAllowed');
    expect(condition(s, 'Ready').message).toContain('suspended until this is fixed');
    const crons = await cronJobsOf('team');
    expect(crons.length).toBeGreaterThan(0);
    expect(
      crons.filter((c) => !c.spec?.suspend).map((c) => c.metadata?.name),
      'CronJobs still active with a refused image',
    ).toEqual([]);
    // Allowed again: the next apply takes suspend back from the spec (server-side apply, forced).
    await run({
      ALLOWED_RUNNER_IMAGES: 'reg.example/team/',
      ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'nxt-backup-runner,deployer',
    });
    await kubectl('-n', ns, 'annotate', 'bks', 'team', 'nudge=2', '--overwrite');
    await waitScheduleCondition(ns, 'team', 'Ready', 'True', 'Scheduled');
    const [again] = await cronJobsOf('team');
    expect(again!.spec!.suspend ?? false).toBe(false);
  });
});
