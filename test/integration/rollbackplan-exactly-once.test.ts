import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  parseBackupSchedule,
  withBackupScheduleDefaults,
} from '../../operator/api/v1alpha1/backupschedule.js';
import { buildRunnerJobTemplate } from '../../operator/backup/pod-builders.js';
import type { BackupManifest } from '../../operator/backup/runner/manifest.js';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  fillDatabase,
  getSchedule,
  OPERATOR_TEST_IMAGE,
  scheduleJobs,
  scheduleSpec,
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
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, getPlan, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase, withClient } from '../support/postgres.js';
import { deploymentWithHistory, imageOf, REVISION } from '../support/workloads.js';

// Runner pods start slowly on a loaded 2-core machine (node + tsx, ~5-15 s each), hence the long timeouts.
// Issue 9, "restore exactly once, and the right data": one regression test per defect (1, 2, 3, 4, 6), against
// the real control plane, the real PostgreSQL and the test kubelet that really runs the runner Jobs.
describe.skipIf(inject('existingCluster'))('RollbackPlan runs each restore once, on the right data', () => {
  const { batch } = testClients();
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  const pvs: string[] = [];
  let db: { name: string; url: string };
  let backupId = '';
  // Short, so the JobNameConflict case fails within the test; the default is 2 minutes.
  const operatorEnv = () => ({ WATCH_NAMESPACES: ns, JOB_NAME_CONFLICT_TIMEOUT: '15s' });

  const notes = (sql: string) => withClient(db.url, (c) => c.query(sql));
  const hasNote = async (id: number) =>
    (await withClient(db.url, (c) => c.query('select 1 from notes where id = $1', [id]))).rowCount === 1;
  const planJobs = async (plan: string) =>
    (await batch.listNamespacedJob({ namespace: ns, labelSelector: `rollback.nxtnewday.io/plan=${plan}` }))
      .items;
  const manifest = (id: string) =>
    JSON.parse(
      readFileSync(join(kubelet.pvcDir(ns, 'backups'), `${id}.manifest.json`), 'utf8'),
    ) as BackupManifest;
  const dbTarget = (extra: object = {}) => ({
    backupScheduleRef: { name: 'shop-db' },
    backup: { id: backupId },
    safetyBackup: false,
    ...extra,
  });
  async function restartOperator(name: string) {
    await op?.kill('SIGKILL');
    op = await startOperator({ env: operatorEnv(), name });
    await op.waitReady();
  }
  async function deletePlanAndJobs(name: string) {
    await kubectl('-n', ns, 'delete', 'rbp', name, '--wait=true');
    await eventually(
      `Jobs of deleted plan ${name} to be garbage-collected`,
      async () => ((await planJobs(name)).length === 0 ? true : undefined),
      60_000,
    );
  }
  /** An open transaction holding a lock on `notes`: pg_restore --clean blocks on it until released. */
  async function holdNotes() {
    const { default: pgModule } = await import('pg');
    const c: pg.Client = new pgModule.Client({ connectionString: db.url });
    await c.connect();
    await c.query('begin');
    await c.query('lock table notes in access share mode');
    const restoreBlocked = () =>
      eventually(
        'the restore to be blocked on the lock of table notes',
        async () => {
          const r = await c.query(
            `select count(*)::int as n from pg_locks l join pg_class k on k.oid = l.relation
              where not l.granted and k.relname = 'notes'
                and l.database = (select oid from pg_database where datname = current_database())`,
          );
          return r.rows[0].n > 0 ? true : undefined;
        },
        90_000,
        200,
      );
    const release = async () => {
      await c.query('commit').catch(() => {});
      await c.end().catch(() => {});
    };
    return { restoreBlocked, release };
  }

  beforeAll(async () => {
    ns = await createTestNamespace('once');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-once-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: operatorEnv() });
    await op.waitReady();
    db = await createTestDatabase('once');
    await fillDatabase(db.url, db.name);
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'backups'));
    await applySchedule(ns, 'shop-db', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
    await backupNow(ns, 'shop-db', 'baseline');
    const job = await eventually(
      'the baseline backup Job',
      async () => (await scheduleJobs(ns, 'shop-db'))[0],
    );
    backupId = job.metadata!.name!;
    await waitJobRecorded(ns, backupId);
    await waitScheduleCondition(ns, 'shop-db', 'LastBackupSucceeded', 'True', 'BackupVerified');
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(
        `--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}\n--- operator ---\n${op.logs().slice(-5000)}`,
      );
    }
  });
  afterAll(async () => {
    await op?.kill();
    await deleteTestNamespace(ns);
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('defect 1: two plans with the same name a week apart each get their own safety backup', async () => {
    await applyPlan(ns, 'weekly', {
      scope: 'database',
      targets: { database: dbTarget({ safetyBackup: true }) },
    });
    const first = await waitPlanPhase(ns, 'weekly', ['Succeeded', 'Failed'], 180_000);
    expect(first.status.phase, JSON.stringify(first.status.conditions)).toBe('Succeeded');
    const lastWeek = first.status.database.safetyBackupId as string;
    const lastWeekFile = readFileSync(join(kubelet.pvcDir(ns, 'backups'), `${lastWeek}.dump`));
    await deletePlanAndJobs('weekly');

    // A week of writes, then the same plan name again.
    await notes("insert into notes select g, 'week 2' from generate_series(20001, 20500) g");
    const count = (await notes('select count(*)::int as n from notes')).rows[0].n as number;
    await applyPlan(ns, 'weekly', {
      scope: 'database',
      targets: { database: dbTarget({ safetyBackup: true }) },
    });
    const second = await waitPlanPhase(ns, 'weekly', ['Succeeded', 'Failed'], 180_000);
    expect(second.status.phase, JSON.stringify(second.status.conditions)).toBe('Succeeded');
    const thisWeek = second.status.database.safetyBackupId as string;
    expect(thisWeek, "the second plan's undo must not be last week's backup").not.toBe(lastWeek);
    expect([lastWeek, thisWeek]).toEqual([
      `weekly-safety-${first.metadata.uid.slice(0, 8)}`,
      `weekly-safety-${second.metadata.uid.slice(0, 8)}`,
    ]);
    expect(manifest(thisWeek)).toMatchObject({
      tables: expect.objectContaining({ 'public.notes': count }),
      origin: { purpose: 'safety', plan: { name: 'weekly', uid: second.metadata.uid } },
    });
    expect(readFileSync(join(kubelet.pvcDir(ns, 'backups'), `${lastWeek}.dump`)).equals(lastWeekFile)).toBe(
      true,
    );
  }, 420_000);

  it("defect 2: a re-created plan never reads its deleted namesake's Jobs, and says why it waits", async () => {
    await applyPlan(ns, 'again', {
      scope: 'database',
      targets: { database: dbTarget() },
    });
    const old = await waitPlanPhase(ns, 'again', ['Succeeded', 'Failed'], 180_000);
    expect(old.status.phase, JSON.stringify(old.status.conditions)).toBe('Succeeded');
    const oldJobs = (await planJobs('again')).map((j) => j.metadata!.name!).sort();
    expect(oldJobs).toEqual(['again-restore', 'again-verify']);
    // A finalizer keeps the old Jobs after their plan is gone, as a slow garbage collection would.
    for (const j of oldJobs)
      await kubectl(
        '-n',
        ns,
        'patch',
        'job',
        j,
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":["nxt.test/hold"]}}',
      );
    await kubectl('-n', ns, 'delete', 'rbp', 'again', '--wait=true');
    await notes("insert into notes values (777777, 'written after the first plan')");

    await applyPlan(ns, 'again', {
      scope: 'database',
      targets: { database: dbTarget() },
    });
    const waiting = await eventually(
      'the new plan to name the old Job it waits for',
      async () => {
        const p = await getPlan(ns, 'again');
        if (condition(p, 'DatabaseRestored')?.status === 'True')
          throw new Error('DatabaseRestored without a restore of its own');
        const c = condition(p, 'Reconciling');
        return c?.reason === 'JobNameTaken' ? c : undefined;
      },
      20_000,
      200,
    );
    expect(waiting.message).toMatch(/Job "again-verify" belongs to an earlier RollbackPlan "again"/);
    const failed = await waitPlanPhase(ns, 'again', ['Succeeded', 'Failed'], 60_000);
    expect(condition(failed, 'Succeeded')).toMatchObject({ status: 'False', reason: 'JobNameConflict' });
    expect(condition(failed, 'DatabaseRestored')?.status).not.toBe('True');
    expect(await hasNote(777777), 'nothing was restored').toBe(true);

    // Once the old Jobs are gone, a new plan of that name runs Jobs of its own, really restoring.
    for (const j of oldJobs)
      await kubectl(
        '-n',
        ns,
        'patch',
        'job',
        j,
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      );
    await kubectl('-n', ns, 'delete', 'rbp', 'again', '--wait=true');
    await eventually(
      'the old Jobs to be gone',
      async () => ((await planJobs('again')).length === 0 ? true : undefined),
      60_000,
    );
    await applyPlan(ns, 'again', {
      scope: 'database',
      targets: { database: dbTarget() },
    });
    const fresh = await waitPlanPhase(ns, 'again', ['Succeeded', 'Failed'], 180_000);
    expect(fresh.status.phase, JSON.stringify(fresh.status.conditions)).toBe('Succeeded');
    const live = Object.fromEntries((await planJobs('again')).map((j) => [j.metadata!.name!, j]));
    for (const [job, uid] of [
      ['again-verify', fresh.status.database.verifyJobUID],
      ['again-restore', fresh.status.database.restoreJobUID],
    ]) {
      expect(live[job]?.metadata?.uid, `${job} is the Job recorded in status`).toBe(uid);
      expect(live[job]?.metadata?.ownerReferences?.[0]?.uid).toBe(fresh.metadata.uid);
    }
    expect(await hasNote(777777), 'the restore really ran').toBe(false);
  }, 420_000);

  it('defect 3: a restore whose Job vanished ends RestoreJobLost and never runs a second time', async () => {
    const lock = await holdNotes();
    try {
      await applyPlan(ns, 'lost', { scope: 'database', targets: { database: dbTarget() } });
      await lock.restoreBlocked();
      // The operator dies while the restore runs; the restore finishes; then its Job is deleted.
      await op.kill('SIGKILL');
    } finally {
      await lock.release();
    }
    const job = await eventually(
      'the restore Job to complete',
      async () => {
        const j = await batch.readNamespacedJob({ namespace: ns, name: 'lost-restore' });
        return j.status?.succeeded === 1 ? j : undefined;
      },
      90_000,
    );
    await notes("insert into notes values (888888, 'written after the restore')");
    await batch.deleteNamespacedJob({ namespace: ns, name: 'lost-restore', propagationPolicy: 'Background' });
    await eventually('the restore Job to be gone', async () =>
      batch.readNamespacedJob({ namespace: ns, name: 'lost-restore' }).then(
        () => undefined,
        () => true,
      ),
    );

    await restartOperator('after-lost-job');
    const plan = await waitPlanPhase(ns, 'lost', ['Succeeded', 'Failed'], 120_000);
    expect(condition(plan, 'Succeeded'), JSON.stringify(plan.status)).toMatchObject({
      status: 'False',
      reason: 'RestoreJobLost',
    });
    expect(condition(plan, 'DatabaseRestored').message).toMatch(
      new RegExp(`restore Job "lost-restore" \\(uid ${job.metadata!.uid}\\).*may have run partly or fully`),
    );
    expect(await hasNote(888888), 'what was written after the first restore survives').toBe(true);
    expect(
      (await planJobs('lost')).map((j) => j.metadata?.name),
      'no second restore Job',
    ).toEqual(['lost-verify']);
  }, 420_000);

  it('defect 4: a verify Job that checked another backup than the pinned one is not trusted', async () => {
    // A second, newer backup the plan pins.
    await backupNow(ns, 'shop-db', 'newer');
    const newer = await eventually('the newer backup Job', async () =>
      (await scheduleJobs(ns, 'shop-db')).find(
        (j) =>
          j.metadata?.name?.includes('now-') &&
          j.metadata.name !== backupId &&
          !j.metadata.labels?.['rollback.nxtnewday.io/plan'],
      ),
    );
    const newerId = newer!.metadata!.name!;
    await waitJobRecorded(ns, newerId);
    await notes("insert into notes values (999999, 'must survive')");

    // The leftover of a reconcile that pinned the older backup, created its verify Job and then lost its
    // status write (409): a verify Job of this plan that checked backupId, while status will pin newerId.
    await op.kill('SIGKILL');
    const plan = await applyPlan(ns, 'pinned', {
      scope: 'database',
      targets: { database: dbTarget({ backup: { id: newerId } }) },
    });
    const schedule = await getSchedule(ns, 'shop-db');
    const parsed = parseBackupSchedule(schedule);
    if (!parsed.ok) throw new Error('schedule does not parse');
    const tpl = buildRunnerJobTemplate({
      scheduleName: 'shop-db',
      spec: withBackupScheduleDefaults(parsed.value.spec),
      secret: { name: 'db', keys: new Set(['host', 'port', 'database', 'username', 'password']) },
      claimName: 'backups',
      image: OPERATOR_TEST_IMAGE,
      args: [
        'verify',
        '--storage-dir',
        '/backups',
        '--id',
        backupId,
        '--termination-log',
        '/dev/termination-log',
      ],
      component: 'test-restore',
    });
    const labels = { ...tpl.metadata.labels, 'rollback.nxtnewday.io/plan': 'pinned' };
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: {
          name: 'pinned-verify',
          labels,
          annotations: { 'rollback.nxtnewday.io/backup-id': backupId },
          ownerReferences: [
            {
              apiVersion: plan.apiVersion,
              kind: 'RollbackPlan',
              name: 'pinned',
              uid: plan.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: {
          ...tpl.spec,
          backoffLimit: 0,
          template: { ...tpl.spec.template, metadata: { labels } },
        } as any,
      },
    });
    await eventually(
      'the leftover verify Job to succeed',
      async () => {
        const j = await batch.readNamespacedJob({ namespace: ns, name: 'pinned-verify' });
        return j.status?.succeeded === 1 ? j : undefined;
      },
      90_000,
    );

    await restartOperator('after-leftover-verify');
    const done = await waitPlanPhase(ns, 'pinned', ['Succeeded', 'Failed'], 120_000);
    expect(condition(done, 'PreValidationPassed'), JSON.stringify(done.status)).toMatchObject({
      status: 'False',
      reason: 'VerifyJobMismatch',
    });
    expect(condition(done, 'PreValidationPassed').message).toMatch(
      new RegExp(`checks backup ${backupId}, but the plan pinned backup ${newerId}`),
    );
    expect(done.status.database.backupId).toBe(newerId);
    expect((await planJobs('pinned')).map((j) => j.metadata?.name)).toEqual(['pinned-verify']);
    expect(await hasNote(999999), 'nothing was restored').toBe(true);
  }, 420_000);

  it('defect 6: the app rollback never reverts a release rolled out after pre-validation decided', async () => {
    await deploymentWithHistory(ns, 'shop', ['shop/web:1.25', 'shop/web:1.26', 'shop/web:1.27']);
    const lock = await holdNotes();
    try {
      await applyPlan(ns, 'forward', {
        scope: 'full',
        targets: { deployments: [{ name: 'shop' }], database: dbTarget() },
        validation: { timeout: '2m' },
      });
      // Pre-validation has decided (roll back 1.27 -> 1.26); the restore is still running.
      await lock.restoreBlocked();
      const decided = await getPlan(ns, 'forward');
      expect(decided.status.deployments[0]).toMatchObject({ result: 'Pending', toRevision: 2 });
      // The user rolls forward to a fixed release meanwhile.
      await kubectl('-n', ns, 'set', 'image', 'deployment/shop', 'app=shop/web:1.28');
      await eventually('revision 4 to exist', async () => {
        const { apps } = testClients();
        const d = await apps.readNamespacedDeployment({ namespace: ns, name: 'shop' });
        return d.metadata?.annotations?.[REVISION] === '4' ? d : undefined;
      });
    } finally {
      await lock.release();
    }
    const plan = await waitPlanPhase(ns, 'forward', ['Succeeded', 'Failed'], 180_000);
    expect(condition(plan, 'RolledBack'), JSON.stringify(plan.status)).toMatchObject({
      status: 'False',
      reason: 'HistoryChanged',
      message: expect.stringMatching(/changed after pre-validation decided to roll it back/),
    });
    expect(await imageOf(ns, 'shop'), "the user's release stays").toBe('shop/web:1.28');
    expect(plan.status.deployments[0]).toMatchObject({ result: 'Failed' });
  }, 420_000);
});
