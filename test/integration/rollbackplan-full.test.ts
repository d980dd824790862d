import { mkdtempSync, openSync, readdirSync, rmSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Watch } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpPath,
  fillDatabase,
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
import { createFeatureFlag, getFeatureFlag, installFeatureFlagCrd } from '../support/openfeature.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, eventsFor, getPlan, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'notes'];
const checksums = async (url: string) =>
  Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await tableChecksum(url, t)] as const)));

// Database, feature and full scopes against the real control plane and the real PostgreSQL: the restore,
// verify and safety-backup Jobs really run (the test kubelet runs the operator image's runner).

// The harness connects to PostgreSQL as the superuser postgres; validation.sql runs only because the
// operator configuration allows it (the runner refuses superuser roles for assertions otherwise).
const SUPERUSER_SQL = { ALLOW_SUPERUSER_ASSERTIONS: 'true' };
describe.skipIf(inject('existingCluster'))('RollbackPlan scopes database, feature and full', () => {
  const { batch, core, custom, kc } = testClients();
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  const pvs: string[] = [];
  let db: { name: string; url: string };
  let goodState: Record<string, { rows: number; md5: string }>;
  let backupId = '';

  beforeAll(async () => {
    ns = await createTestNamespace('full');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-full-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ...SUPERUSER_SQL } });
    await op.waitReady();
    db = await createTestDatabase('shop');
    await fillDatabase(db.url, db.name);
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'backups'));
    await applySchedule(ns, 'shop-db', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
    goodState = await checksums(db.url);
    await backupNow(ns, 'shop-db', 'before-release');
    const job = await eventually(
      'the emergency backup Job',
      async () => (await scheduleJobs(ns, 'shop-db'))[0],
    );
    backupId = job.metadata!.name!;
    await waitJobRecorded(ns, backupId);
    await waitScheduleCondition(ns, 'shop-db', 'LastBackupSucceeded', 'True', 'BackupVerified');
  });
  afterEach((ctx) => {
    if (kubelet) kubelet.holdFinalPhase = kubelet.holdStart = undefined; // a failed test's holds end with it
    if (ctx.task.result?.state === 'fail') {
      console.log(
        `--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}\n--- operator ---\n${op.logs().slice(-4000)}`,
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

  /** The "bad release": data changed, a new Deployment revision, a flag switched on. */
  async function badRelease() {
    await withClient(db.url, async (c) => {
      await c.query('update pgbench_accounts set abalance = abalance - 500 where aid % 7 = 0');
      await c.query('delete from notes where id > 9000');
      await c.query(
        "insert into pgbench_tellers values (9999, 1, 0, 'bad') on conflict (tid) do update set tbalance = pgbench_tellers.tbalance - 1",
      );
    });
  }

  /**
   * Holds each of the plan's runner pods at phase Running once its runner has exited (the test kubelet's
   * holdFinalPhase): the pod shows the terminated runner and its termination message, but the Job controller
   * cannot count it, so the Job gets no Complete condition while held. A hold ends when the operator shows it
   * acted on the runner's result anyway: the plan records the Job's step as Succeeded, or creates its next
   * Job. That proves results are read from the pod, not from the Job's condition, whatever the machine's
   * load; a hold the operator never ends runs out after 30 s and says so. The Job watch (one stream, the API
   * server's order) checks that no Job was Complete before its hold ended.
   */
  async function holdPlanPods(plan: string, steps: Record<string, string>) {
    const created: string[] = [];
    const complete = new Set<string>();
    const released: Record<string, string> = {};
    const ctrl = await new Watch(kc).watch(
      `/apis/batch/v1/namespaces/${ns}/jobs`,
      { labelSelector: `rollback.nxtnewday.io/plan=${plan}` },
      (type: string, job: any) => {
        if (type === 'ADDED') created.push(job.metadata.name);
        if ((job.status?.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True'))
          complete.add(job.metadata.name);
      },
      () => {},
    );
    const stepDone = async (step: string) => {
      const p: any = await custom
        .getNamespacedCustomObject({
          group: 'rollback.nxtnewday.io',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'rollbackplans',
          name: plan,
        })
        .catch(() => undefined);
      return (p?.status?.steps ?? []).some((s: any) => s.name === step && s.result === 'Succeeded');
    };
    let ranOut = false; // after one hold runs out the rest are not held, so a failure costs 30 s, not 90 s
    kubelet.holdFinalPhase = (pod: any) => {
      const job: string | undefined = pod.metadata?.labels?.['batch.kubernetes.io/job-name'];
      const purpose = Object.keys(steps).find((k) => job === `${plan}-${k}`);
      if (!job || !purpose) return undefined;
      if (ranOut) {
        released[job] = 'not held: an earlier hold ran out';
        return undefined;
      }
      return (async () => {
        const until = Date.now() + 30_000;
        for (;;) {
          const i = created.indexOf(job);
          // The safety backup Job starts together with the verify Job: only a Job after both shows that the
          // verify result was acted on.
          const next = created.slice(i + 1).filter((j) => !(purpose === 'verify' && j === `${plan}-safety`));
          if (complete.has(job)) released[job] = 'Complete while held (the hold did not work)';
          else if (i >= 0 && next.length) released[job] = 'next Job created';
          else if (await stepDone(steps[purpose]!)) released[job] = 'step recorded';
          else if (Date.now() > until) {
            released[job] = 'not acted on in 30 s while the Job could not be Complete';
            ranOut = true;
          }
          if (released[job]) return;
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
    };
    return {
      released,
      created,
      stop: () => {
        kubelet.holdFinalPhase = undefined;
        ctrl.abort();
      },
    };
  }

  it('full scope restores the data, rolls the Deployment back and disables the flags; the safety backup undoes it', async () => {
    await deploymentWithHistory(ns, 'checkout', ['shop/checkout:1.5.0', 'shop/checkout:1.6.0']);
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'flags' }, data: { 'new-checkout': 'true', other: 'true' } },
    });
    await badRelease();
    const badState = await checksums(db.url);
    expect(badState).not.toEqual(goodState);

    const jobs = await holdPlanPods('emergency', {
      verify: 'CheckBackupIntegrity',
      safety: 'SafetyBackup',
      restore: 'DatabaseRestore',
    });
    await applyPlan(ns, 'emergency', {
      scope: 'full',
      reason: 'data corruption after 1.6.0',
      targets: {
        deployments: [{ name: 'checkout' }],
        database: { backupScheduleRef: { name: 'shop-db' } },
        featureFlags: { configMapRef: { name: 'flags' }, disable: ['new-checkout'] },
      },
      validation: {
        timeout: '2m',
        sql: [{ name: 'accounts', query: 'select count(*) from pgbench_accounts', expect: '100000' }],
      },
    });
    const plan = await waitPlanPhase(ns, 'emergency', ['Succeeded', 'Failed'], 180_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    jobs.stop();
    // Runner results are read from the pod's termination message as soon as the runner has exited: each
    // of the three Jobs (verify + safety -> restore) was acted on while its pod was held at phase Running,
    // so before the Job controller could set Complete. Before, the plan waited for Complete and every hold
    // ran out.
    expect(jobs.created, 'the plan ran three Jobs: verify and safety backup, then restore').toEqual([
      'emergency-verify',
      'emergency-safety',
      'emergency-restore',
    ]);
    // A hold polls every 250 ms: the plan can finish before the last hold has noticed its step recorded.
    for (const job of jobs.created) {
      const why = await eventually(`${job}'s hold released`, async () => jobs.released[job], 10_000);
      expect(why, `${job} (all: ${JSON.stringify(jobs.released)})`).toMatch(
        /^(next Job created|step recorded)$/,
      );
    }
    expect(
      plan.status.steps.filter((s: any) => !s.name.startsWith('Check')).map((s: any) => [s.name, s.result]),
    ).toEqual([
      ['PreValidation', 'Succeeded'],
      ['SafetyBackup', 'Succeeded'],
      ['DatabaseRestore', 'Succeeded'],
      ['AppRollback', 'Succeeded'],
      ['FeatureFlags', 'Succeeded'],
      ['PostValidation', 'Succeeded'],
    ]);
    for (const t of [
      'PreValidationPassed',
      'SafetyBackupTaken',
      'DatabaseRestored',
      'RolledBack',
      'FlagsDisabled',
      'PostValidationPassed',
      'Succeeded',
      'RTOMet',
    ]) {
      expect(condition(plan, t), t).toMatchObject({ status: 'True' });
    }
    // Data: every table equals the backup, row for row.
    expect(await checksums(db.url)).toEqual(goodState);
    expect(plan.status.database).toMatchObject({
      backupId,
      mode: 'inPlace',
      verifiedTables: expect.any(Number),
    });
    // App and flags.
    expect(await imageOf(ns, 'checkout')).toBe('shop/checkout:1.5.0');
    const flags = await core.readNamespacedConfigMap({ name: 'flags', namespace: ns });
    expect(flags.data).toEqual({ 'new-checkout': 'false', other: 'true' });
    expect(plan.status.featureFlags).toEqual([{ key: 'new-checkout', previous: 'true', now: 'false' }]);
    // One restore Job, run once.
    const restore = await eventually('the restore Job counted as succeeded', async () => {
      const j = await batch.readNamespacedJob({ name: plan.status.database.restoreJob, namespace: ns });
      return j.status?.succeeded ? j : undefined;
    });
    expect(restore.status?.succeeded).toBe(1);
    expect(restore.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'RollbackPlan', name: 'emergency' });

    // The safety backup holds the pre-plan (bad) state: restoring it by id brings that state back.
    const safety = plan.status.database.safetyBackupId;
    expect(safety).toBeTruthy();
    await waitScheduleCondition(ns, 'shop-db', 'LastBackupSucceeded', 'True', undefined, 60_000, (s) =>
      (s.status.backups ?? []).some((b: any) => b.id === safety),
    );
    await applyPlan(ns, 'undo-emergency', {
      scope: 'database',
      targets: {
        database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: safety }, safetyBackup: false },
      },
    });
    const undo = await waitPlanPhase(ns, 'undo-emergency', ['Succeeded', 'Failed'], 180_000);
    expect(undo.status.phase, JSON.stringify(undo.status.conditions)).toBe('Succeeded');
    expect(undo.status.steps.find((s: any) => s.name === 'SafetyBackup')).toMatchObject({
      result: 'Skipped',
    });
    expect(await checksums(db.url)).toEqual(badState);
  });

  it('fails pre-validation on an unknown backup id and touches nothing', async () => {
    const before = await checksums(db.url);
    await applyPlan(ns, 'bad-id', {
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: 'no-such-backup' } } },
    });
    const plan = await waitPlanPhase(ns, 'bad-id', ['Succeeded', 'Failed']);
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'BackupNotFound',
    });
    expect(condition(plan, 'Succeeded').message).toMatch(/"no-such-backup" is not among/);
    expect(
      (await batch.listNamespacedJob({ namespace: ns, labelSelector: 'rollback.nxtnewday.io/plan=bad-id' }))
        .items,
    ).toEqual([]);
    expect(await checksums(db.url)).toEqual(before);
  });

  it('fails pre-validation on a backup whose file no longer matches its checksum, before any restore', async () => {
    // A second backup, then one byte of its file flipped on the volume.
    await backupNow(ns, 'shop-db', 'to-corrupt');
    const job = await eventually('the second backup Job', async () =>
      (await scheduleJobs(ns, 'shop-db')).find(
        (j) =>
          j.metadata?.name?.includes('now-') &&
          j.metadata.name !== backupId &&
          !j.metadata.labels?.['rollback.nxtnewday.io/plan'],
      ),
    );
    await waitJobRecorded(ns, job!.metadata!.name!);
    const file = dumpPath(kubelet.pvcDir(ns, 'backups'), job!.metadata!.name!);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from([0x42]), 0, 1, Math.floor(statSync(file).size / 2));
    closeSync(fd);
    const before = await checksums(db.url);
    // The safety backup starts with the verify Job (safety backup on, the default); its pod is held before it
    // starts until the plan has failed and the operator has deleted the safety Job (its pod then has a
    // deletionTimestamp or is gone), so the plan fails while the safety backup is still to run.
    let safetyHold = 'never asked';
    kubelet.holdStart = (pod: any) => {
      if (pod.metadata?.labels?.['batch.kubernetes.io/job-name'] !== 'corrupt-safety') return undefined;
      safetyHold = 'holding';
      return (async () => {
        const until = Date.now() + 90_000;
        while (safetyHold === 'holding') {
          const p = await getPlan(ns, 'corrupt').catch(() => undefined);
          const job = await batch
            .readNamespacedJob({ namespace: ns, name: 'corrupt-safety' })
            .catch(() => undefined);
          const live = await core
            .readNamespacedPod({ namespace: ns, name: pod.metadata.name })
            .catch(() => undefined);
          if (p?.status?.phase === 'Failed' && !job && (!live || live.metadata?.deletionTimestamp)) {
            // The kubelet's pod watch sees the deletion too; then the runner never starts.
            await new Promise((r) => setTimeout(r, 2_000));
            safetyHold = 'released after the plan failed and deleted the safety Job';
          } else if (Date.now() > until)
            safetyHold = `ran out: plan ${p?.status?.phase}, safety Job ${job ? 'still there' : 'gone'}`;
          else await new Promise((r) => setTimeout(r, 250));
        }
      })();
    };
    await applyPlan(ns, 'corrupt', {
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: job!.metadata!.name! } } },
    });
    const plan = await waitPlanPhase(ns, 'corrupt', ['Succeeded', 'Failed'], 120_000);
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'ChecksumMismatch',
    });
    // The plan did not wait for the safety backup: it deleted the running Job (M1: a pg_dump left running
    // would hold read locks outside any plan's lock), and says so.
    await eventually('the safety Job deleted', async () => {
      const jobs = (
        await batch.listNamespacedJob({ namespace: ns, labelSelector: 'rollback.nxtnewday.io/plan=corrupt' })
      ).items.map((j) => j.metadata?.name);
      return !jobs.includes('corrupt-safety') && jobs.includes('corrupt-verify') ? jobs : undefined;
    });
    await eventually('the safety pod hold to end', async () => safetyHold !== 'holding' || undefined);
    expect(safetyHold).toBe('released after the plan failed and deleted the safety Job');
    await eventually('the safety pod gone', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=corrupt-safety' });
      return pods.items.length === 0 || undefined;
    });
    const safetyStep = plan.status.steps.find((s: any) => s.name === 'SafetyBackup');
    expect(safetyStep, JSON.stringify(plan.status.steps)).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(
        // "is gone (deleted)" when the reconcile that deleted it lost its status write (409) and the next one
        // found the Job gone.
        /^stopped: not needed\. Pre-validation failed .*Job corrupt-safety (was deleted|is gone \(deleted\))/,
      ),
    });
    expect(condition(plan, 'DatabaseRestored')).toBeUndefined();
    const failedEvent = await eventually('the Failed Event', async () =>
      (await eventsFor(ns, 'corrupt')).find((e) => e.reason === 'Failed'),
    );
    expect(failedEvent.message).toMatch(
      /changed: database not changed; safety backup Job corrupt-safety stopped \(not needed\)/,
    );
    // Nothing of the stopped safety backup can be selected: no dump or manifest under its id, and the
    // BackupSchedule recorded no backup of it.
    const safetyId = `corrupt-safety-${String(plan.metadata.uid).replace(/-/g, '').slice(0, 8)}`;
    const stored = readdirSync(kubelet.pvcDir(ns, 'backups')).filter((f) => f.startsWith(safetyId));
    expect(stored).toEqual([]);
    const schedule: any = await custom.getNamespacedCustomObject({
      group: 'rollback.nxtnewday.io',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'backupschedules',
      name: 'shop-db',
    });
    expect((schedule.status?.backups ?? []).map((b: any) => b.id)).not.toContain(safetyId);
    expect(await checksums(db.url)).toEqual(before);
  });

  it('starts the safety backup together with the verify Job, and restores only after both succeeded', async () => {
    await badRelease();
    // The verify pod is held before it starts until the safety backup Job exists: before, the safety backup
    // Job came only after the verify result, and the hold ran out.
    let verifyHold = 'never asked';
    kubelet.holdStart = (pod: any) => {
      if (pod.metadata?.labels?.['batch.kubernetes.io/job-name'] !== 'alongside-verify') return undefined;
      verifyHold = 'holding';
      return (async () => {
        const until = Date.now() + 30_000;
        while (verifyHold === 'holding') {
          const safety = await batch
            .readNamespacedJob({ namespace: ns, name: 'alongside-safety' })
            .catch(() => undefined);
          if (safety) verifyHold = 'safety Job created before the verify runner started';
          else if (Date.now() > until)
            verifyHold = 'ran out: no safety Job while the verify Job was unfinished';
          else await new Promise((r) => setTimeout(r, 250));
        }
      })();
    };
    await applyPlan(ns, 'alongside', {
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: backupId } } },
    });
    const plan = await waitPlanPhase(ns, 'alongside', ['Succeeded', 'Failed'], 180_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect(verifyHold).toBe('safety Job created before the verify runner started');

    // Both Jobs existed at once, and the restore Job came after both runners had finished.
    const live = Object.fromEntries(
      (
        await batch.listNamespacedJob({
          namespace: ns,
          labelSelector: 'rollback.nxtnewday.io/plan=alongside',
        })
      ).items.map((j) => [j.metadata!.name!, j]),
    );
    expect(Object.keys(live).sort()).toEqual(['alongside-restore', 'alongside-safety', 'alongside-verify']);
    const runnerEnd = async (job: string) => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` });
      expect(pods.items, job).toHaveLength(1);
      const t = pods.items[0]!.status?.containerStatuses?.[0]?.state?.terminated;
      expect(t?.exitCode, job).toBe(0);
      // In whole seconds, as creationTimestamp is.
      return Math.floor(new Date(t!.finishedAt as unknown as string).getTime() / 1000) * 1000;
    };
    const created = (job: string) => new Date(live[job]!.metadata!.creationTimestamp!).getTime();
    expect(created('alongside-safety')).toBeLessThan(await runnerEnd('alongside-verify'));
    expect(created('alongside-restore')).toBeGreaterThanOrEqual(await runnerEnd('alongside-verify'));
    expect(created('alongside-restore')).toBeGreaterThanOrEqual(await runnerEnd('alongside-safety'));
    expect(plan.status.database).toMatchObject({
      verifyJobUID: live['alongside-verify']!.metadata!.uid,
      safetyBackupJobUID: live['alongside-safety']!.metadata!.uid,
      restoreJobUID: live['alongside-restore']!.metadata!.uid,
      safetyBackupId: expect.stringMatching(/^alongside-safety-/),
    });

    // The journal shows the overlap: SafetyBackup started before PreValidation (and its verify) finished;
    // DatabaseRestore started after both.
    const step = (name: string) => {
      const s = plan.status.steps.find((x: any) => x.name === name);
      expect(s, name).toBeTruthy();
      return { start: Date.parse(s.startedAt), end: Date.parse(s.finishedAt), result: s.result };
    };
    const [pre, integrity, safety, restore] = [
      step('PreValidation'),
      step('CheckBackupIntegrity'),
      step('SafetyBackup'),
      step('DatabaseRestore'),
    ];
    expect([pre.result, safety.result, restore.result]).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    expect(safety.start).toBeLessThan(integrity.end);
    expect(safety.start).toBeLessThan(pre.end);
    expect(safety.start).toBeGreaterThanOrEqual(pre.start);
    expect(restore.start).toBeGreaterThanOrEqual(Math.max(pre.end, safety.end));
    // The safety backup's snapshot time is recorded, and the restore and the Succeeded event name the writes
    // made after it, which are in neither the safety backup nor the restored database.
    const snapshotAt = Date.parse(plan.status.database.safetyBackupStartedAt);
    expect(snapshotAt).toBeGreaterThanOrEqual(Math.floor(safety.start / 1000) * 1000 - 1000);
    expect(snapshotAt).toBeLessThanOrEqual(restore.start);
    const gap =
      /writes made after the safety backup alongside-safety-\w+ started \([^,]+, \d+s before the restore started\) are in neither the safety backup nor the restored database/;
    expect(plan.status.steps.find((x: any) => x.name === 'DatabaseRestore').message).toMatch(gap);
    const succeededEvent = await eventually('the Succeeded Event', async () =>
      (await eventsFor(ns, 'alongside')).find((e) => e.reason === 'Succeeded'),
    );
    expect(succeededEvent.message).toMatch(gap);
    expect(await checksums(db.url)).toEqual(goodState);
  });

  it('runs the restore exactly once when the operator is killed right after creating the restore Job', async () => {
    await badRelease();
    await op.kill();
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: ns, NXT_FAILPOINTS: 'after-restore-job-created', ...SUPERUSER_SQL },
      name: 'crashing',
    });
    await crashing.waitReady();
    await applyPlan(ns, 'crash-restore', {
      scope: 'database',
      targets: {
        database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: backupId }, safetyBackup: false },
      },
    });
    expect(await crashing.exited).toBe('SIGKILL');
    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ...SUPERUSER_SQL }, name: 'restarted' });
    await op.waitReady();
    const plan = await waitPlanPhase(ns, 'crash-restore', ['Succeeded', 'Failed'], 180_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    // The plan reads the runner's result from its pod, so it may finish before the Job controller counts
    // the pod as succeeded: wait for the count.
    const restores = await eventually('the restore Job counted as succeeded', async () => {
      const items = (
        await batch.listNamespacedJob({
          namespace: ns,
          labelSelector: 'rollback.nxtnewday.io/plan=crash-restore,app.kubernetes.io/component=restore',
        })
      ).items;
      return items.every((j) => j.status?.succeeded) && items;
    });
    expect(restores.map((j) => [j.metadata?.name, j.status?.succeeded])).toEqual([
      ['crash-restore-restore', 1],
    ]);
    const pods = await core.listNamespacedPod({
      namespace: ns,
      labelSelector: 'job-name=crash-restore-restore',
    });
    expect(pods.items).toHaveLength(1);
    expect(await checksums(db.url)).toEqual(goodState);
  });

  it('resumes a plan whose operator was killed right after it created the verify and safety backup Jobs', async () => {
    await badRelease();
    await op.kill();
    const crashing = await startOperator({
      env: {
        WATCH_NAMESPACES: ns,
        NXT_FAILPOINTS: 'after-verify-and-safety-jobs-created',
        ...SUPERUSER_SQL,
      },
      name: 'crashing-both',
    });
    await crashing.waitReady();
    await applyPlan(ns, 'crash-both', {
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: backupId } } },
    });
    expect(await crashing.exited).toBe('SIGKILL');
    expect(crashing.logs()).toMatch(/failpoint after-verify-and-safety-jobs-created/);
    // Both names and the SafetyBackup step's start were durable before the Jobs existed; their UIDs were not.
    const mid = await getPlan(ns, 'crash-both');
    expect(mid.status.database).toMatchObject({
      backupId,
      verifyJob: 'crash-both-verify',
      safetyBackupJob: 'crash-both-safety',
    });
    expect(mid.status.database.verifyJobUID).toBeUndefined();
    expect(mid.status.database.safetyBackupJobUID).toBeUndefined();
    expect(mid.status.steps.find((s: any) => s.name === 'SafetyBackup')).toMatchObject({ result: 'Running' });
    const planJobs = async () =>
      Object.fromEntries(
        (
          await batch.listNamespacedJob({
            namespace: ns,
            labelSelector: 'rollback.nxtnewday.io/plan=crash-both',
          })
        ).items.map((j) => [j.metadata!.name!, j.metadata!.uid!]),
      );
    const before = await planJobs();
    expect(Object.keys(before).sort()).toEqual(['crash-both-safety', 'crash-both-verify']);

    op = await startOperator({ env: { WATCH_NAMESPACES: ns, ...SUPERUSER_SQL }, name: 'restarted-both' });
    await op.waitReady();
    const plan = await waitPlanPhase(ns, 'crash-both', ['Succeeded', 'Failed'], 180_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    // The restarted operator adopted the two Jobs (owner UID) instead of creating others, and restored once.
    const after = await planJobs();
    expect(after).toMatchObject(before);
    expect(Object.keys(after).sort()).toEqual([
      'crash-both-restore',
      'crash-both-safety',
      'crash-both-verify',
    ]);
    expect(plan.status.database).toMatchObject({
      verifyJobUID: before['crash-both-verify'],
      safetyBackupJobUID: before['crash-both-safety'],
      restoreJobUID: after['crash-both-restore'],
      safetyBackupId: expect.stringMatching(/^crash-both-safety-/),
    });
    for (const job of Object.keys(after)) {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` });
      expect(pods.items, `${job} ran one pod`).toHaveLength(1);
    }
    expect(plan.status.steps.filter((s: any) => s.name === 'SafetyBackup')).toHaveLength(1);
    expect(await checksums(db.url)).toEqual(goodState);
  });

  it('feature scope alone disables flags and records previous values, including absent ones', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'flags2' }, data: { beta: 'on' } },
    });
    await applyPlan(ns, 'flags-only', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'flags2' }, disable: ['beta', 'never-set'] } },
    });
    const plan = await waitPlanPhase(ns, 'flags-only', ['Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Succeeded');
    expect(plan.status.featureFlags).toEqual([
      { key: 'beta', previous: 'on', now: 'false' },
      { key: 'never-set', now: 'false' },
    ]);
    expect(JSON.parse(await kubectl('-n', ns, 'get', 'cm', 'flags2', '-o', 'json')).data).toEqual({
      beta: 'false',
      'never-set': 'false',
    });
  });

  it('holds the database: of two plans restoring one schedule, the second fails with ConcurrentPlan before touching anything', async () => {
    const spec = {
      scope: 'database',
      targets: {
        database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: backupId }, safetyBackup: false },
      },
    };
    await applyPlan(ns, 'lock-first', spec);
    await applyPlan(ns, 'lock-second', spec);
    const second = await waitPlanPhase(ns, 'lock-second', ['Succeeded', 'Failed']);
    expect(condition(second, 'PreValidationPassed'), JSON.stringify(second.status)).toMatchObject({
      status: 'False',
      reason: 'ConcurrentPlan',
    });
    expect(condition(second, 'Succeeded').message).toMatch(
      /the database of BackupSchedule "shop-db" is held by RollbackPlan "lock-first"/,
    );
    expect(second.status.database, 'no backup pinned').toBeUndefined();
    const jobsOf = async (plan: string) =>
      (
        await batch.listNamespacedJob({ namespace: ns, labelSelector: `rollback.nxtnewday.io/plan=${plan}` })
      ).items.map((j) => j.metadata?.name);
    expect(await jobsOf('lock-second'), 'the second plan created no Job').toEqual([]);
    const first = await waitPlanPhase(ns, 'lock-first', ['Succeeded', 'Failed'], 180_000);
    expect(first.status.phase, JSON.stringify(first.status.conditions)).toBe('Succeeded');
    expect(await jobsOf('lock-second')).toEqual([]);
  });

  it('a feature-scope dry run reports ConfigMap keys and FeatureFlag entries with their values, and changes nothing', async () => {
    await installFeatureFlagCrd();
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'dry-flags' }, data: { beta: 'on' } },
    });
    await createFeatureFlag(ns, 'dry-ff', { beta: 'ENABLED', legacy: 'DISABLED' });
    const before = await getFeatureFlag(ns, 'dry-ff');
    await applyPlan(ns, 'flags-dry', {
      scope: 'feature',
      dryRun: true,
      targets: {
        featureFlags: {
          configMapRef: { name: 'dry-flags' },
          featureFlagRef: { name: 'dry-ff' },
          disable: ['beta', 'never-set'],
        },
      },
    });
    const plan = await waitPlanPhase(ns, 'flags-dry', ['DryRunComplete', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('DryRunComplete');
    const report = plan.status.dryRunReport;
    expect(report.featureFlags).toEqual([
      { object: 'ConfigMap/dry-flags', key: 'beta', current: 'on', wouldBe: 'false' },
      { object: 'ConfigMap/dry-flags', key: 'never-set', wouldBe: 'false' },
      { object: 'FeatureFlag/dry-ff', key: 'beta', current: 'ENABLED', wouldBe: 'DISABLED' },
      { object: 'FeatureFlag/dry-ff', key: 'never-set', wouldBe: 'DISABLED' },
    ]);
    expect(report.wouldSucceed).toBe(true);
    expect(report.summary).toContain('FeatureFlag/dry-ff beta (ENABLED -> DISABLED)');
    expect(condition(plan, 'Ready').message).toContain('ConfigMap/dry-flags beta (on -> false)');
    // Nothing was touched.
    expect((await core.readNamespacedConfigMap({ name: 'dry-flags', namespace: ns })).data).toEqual({
      beta: 'on',
    });
    const after = await getFeatureFlag(ns, 'dry-ff');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);

    // A FeatureFlag that does not exist is what a real run's pre-validation would stop at.
    await applyPlan(ns, 'flags-dry-missing', {
      scope: 'feature',
      dryRun: true,
      targets: { featureFlags: { featureFlagRef: { name: 'no-such-ff' }, disable: ['beta'] } },
    });
    const missing = await waitPlanPhase(ns, 'flags-dry-missing', ['DryRunComplete', 'Failed']);
    expect(missing.status.dryRunReport).toMatchObject({ wouldSucceed: false, featureFlags: [] });
    expect(missing.status.dryRunReport.summary).toMatch(/FeatureFlag "no-such-ff" .*not found/);
  });
});
