import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applySchedule,
  createDbSecret,
  dbSecretData,
  scheduleSpec,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import { deploymentWithHistory } from '../support/workloads.js';

// Per-object series live as long as their object: a deleted BackupSchedule or RollbackPlan must vanish from
// /metrics of the real operator process, and the series of the objects that remain must stay.
describe('metrics of deleted objects', () => {
  let ns = '';
  let op: OperatorProcess;
  const value = (name: string, labels: Record<string, string>) => metricValue(op.metricsUrl, name, labels);

  beforeAll(async () => {
    ns = await createTestNamespace('metrics');
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
  });
  afterAll(async () => {
    await op?.kill();
    if (ns) await deleteTestNamespace(ns);
  });

  it('drops the series of a deleted BackupSchedule (RPO, last success) and keeps the others', async () => {
    await createDbSecret(ns, 'db', dbSecretData('unused'));
    const finishedAt = new Date(Date.now() - 120_000).toISOString().replace(/\.\d+Z$/, 'Z');
    for (const name of ['gone', 'kept']) {
      // A claim the operator creates: an existing claimName would have to exist (ClaimNotFound otherwise).
      const storage = { persistentVolumeClaim: { create: { size: '1Gi' } } };
      await applySchedule(ns, name, scheduleSpec('db', '', { storage }));
      await waitScheduleCondition(ns, name, 'Ready', 'True', 'Scheduled');
      // A recorded backup, as the operator would have written it after a backup Job.
      const backup = { id: `${name}-1`, finishedAt, verified: true };
      await kubectl(
        '-n',
        ns,
        'patch',
        'bks',
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { lastSuccessfulBackup: backup, backups: [backup] } }),
      );
    }
    for (const name of ['gone', 'kept']) {
      const labels = { namespace: ns, schedule: name };
      await eventually(`the RPO and last-success series of ${name}`, async () => {
        const [rpo, last] = [await value('nxt_rpo_seconds', labels), await value(LAST, labels)];
        const objective = await value('nxt_rpo_objective_seconds', labels);
        return rpo !== undefined && last === Date.parse(finishedAt) / 1000 && objective === 3600;
      });
    }

    await kubectl('-n', ns, 'delete', 'bks', 'gone', '--wait=true');
    const gone = { namespace: ns, schedule: 'gone' };
    await eventually('the series of the deleted schedule to disappear', async () => {
      return (await value('nxt_rpo_seconds', gone)) === undefined && (await value(LAST, gone)) === undefined;
    });
    expect(await value('nxt_rpo_objective_seconds', gone)).toBeUndefined();
    const kept = { namespace: ns, schedule: 'kept' };
    expect(await value('nxt_rpo_seconds', kept)).toBeGreaterThanOrEqual(120);
    expect(await value(LAST, kept)).toBe(Date.parse(finishedAt) / 1000);
    expect(await value('nxt_rpo_objective_seconds', kept)).toBe(3600);
  });

  it('drops the nxt_rto_seconds series of a deleted RollbackPlan and keeps the others', async () => {
    for (const name of ['gone', 'kept']) {
      await deploymentWithHistory(ns, `web-${name}`, ['nginx:1.25', 'nginx:1.26']);
      await applyPlan(ns, name, { scope: 'app', targets: { deployments: [{ name: `web-${name}` }] } });
      const plan = await waitPlanPhase(ns, name, ['Succeeded', 'Failed'], 90_000);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      await eventually(
        `nxt_rto_seconds of ${name}`,
        async () =>
          (await value('nxt_rto_seconds', { namespace: ns, plan: name, scope: 'app' })) !== undefined,
      );
    }
    await kubectl('-n', ns, 'delete', 'rollbackplan', 'gone', '--wait=true');
    await eventually(
      'nxt_rto_seconds of the deleted plan to disappear',
      async () => (await value('nxt_rto_seconds', { namespace: ns, plan: 'gone' })) === undefined,
    );
    expect(await value('nxt_rto_seconds', { namespace: ns, plan: 'kept', scope: 'app' })).toBeGreaterThan(0);
    // The aggregate keeps the deleted plan's run.
    expect(await value('nxt_rollback_duration_seconds_count', { scope: 'app', result: 'succeeded' })).toBe(2);
  });
});

const LAST = 'nxt_backup_last_success_timestamp_seconds';
