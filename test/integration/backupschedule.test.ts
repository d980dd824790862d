import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNNER_PLACEMENT } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  condition,
  createBoundClaim,
  createDbSecret,
  createPvFor,
  deletePvs,
  getSchedule,
  OPERATOR_TEST_IMAGE,
  patchSchedule,
  scheduleJobs,
  scheduleSpec,
  waitClaimBound,
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
import { waitForEvents, withReasons } from '../support/plans.js';

// BackupSchedule -> CronJob, the real operator process against the real control plane. No pod runs here
// (no test kubelet): the Job pods stay Pending, which is enough to prove Pod Security admission let them in.
// Real backups against PostgreSQL are in backupschedule-runs.test.ts.
describe('BackupSchedule controller', () => {
  const { core, batch } = testClients();
  const password = 'pw-never-shown-9f3c1a';
  const ns = { shape: '', secrets: '', gc: '' };
  const pvs: string[] = [];
  let op: OperatorProcess;

  const cronJob = (namespace: string, name: string) => batch.readNamespacedCronJob({ namespace, name });
  const cronJobs = async (namespace: string) => (await batch.listNamespacedCronJob({ namespace })).items;
  const pods = async (namespace: string) => (await core.listNamespacedPod({ namespace })).items;

  beforeAll(async () => {
    ns.shape = await createTestNamespace('bks-shape');
    ns.secrets = await createTestNamespace('bks-secret');
    ns.gc = await createTestNamespace('bks-gc');
    // The claim the schedules name must exist: the operator reports ClaimNotFound otherwise.
    pvs.push(await createBoundClaim(ns.shape, 'backups'), await createBoundClaim(ns.secrets, 'backups'));
    op = await startOperator({ env: { WATCH_NAMESPACES: Object.values(ns).join(',') } });
    await op.waitReady();
  });
  afterAll(async () => {
    await op?.kill();
    await Promise.all(Object.values(ns).map((n) => deleteTestNamespace(n)));
    await deletePvs(pvs);
  });

  it('generates a restricted, owned CronJob and keeps it in line with the spec', async () => {
    const n = ns.shape;
    await createDbSecret(n, 'db', {
      host: 'db.example',
      port: '5432',
      database: 'app',
      username: 'u',
      password,
    });
    await applySchedule(
      n,
      'nightly',
      scheduleSpec('db', 'backups', { timeZone: 'Europe/Berlin', startingDeadlineSeconds: 300 }),
    );
    const ready = await waitScheduleCondition(n, 'nightly', 'Ready', 'True', 'Scheduled');
    expect(ready.status).toMatchObject({
      schedule: '0 */4 * * *',
      timeZone: 'Europe/Berlin',
      cronJobName: 'nightly-backup',
      observedGeneration: 1,
    });
    expect(condition(ready, 'Ready').message).toMatch(/^CronJob nightly-backup: next backup at \S+Z/);
    expect(condition(ready, 'RPOMet')).toMatchObject({ status: 'False', reason: 'NoBackupYet' });

    const cj = await cronJob(n, 'nightly-backup');
    expect(cj.spec).toMatchObject({
      schedule: '0 */4 * * *', // the default: the spec has none
      timeZone: 'Europe/Berlin',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
    });
    expect(cj.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'rollback.nxtnewday.io/v1alpha1',
        kind: 'BackupSchedule',
        name: 'nightly',
        uid: ready.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    const labels = {
      'app.kubernetes.io/managed-by': 'nxt-rollback-operator',
      'rollback.nxtnewday.io/backup-schedule': 'nightly',
      'app.kubernetes.io/component': 'backup',
    };
    expect(cj.metadata?.labels).toMatchObject(labels);
    expect(cj.spec?.jobTemplate.metadata?.labels).toMatchObject(labels);
    const podSpec = cj.spec!.jobTemplate.spec!.template.spec!;
    expect(podSpec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(podSpec.nodeSelector).toEqual(RUNNER_PLACEMENT.nodeSelector);
    const [c] = podSpec.containers;
    expect(c!.image).toBe(OPERATOR_TEST_IMAGE);
    expect(c!.command).toBeUndefined(); // the image's entrypoint runs the runner
    expect(c!.args).toEqual([
      'backup',
      '--storage-dir',
      '/backups',
      '--id',
      '$(BACKUP_ID)',
      '--keep-last',
      '12',
    ]);
    expect(c!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // Credentials only as secretKeyRef: no env value, no arg, nothing in the object carries the password.
    const fromSecret = Object.fromEntries(
      (c!.env ?? []).filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom!.secretKeyRef]),
    );
    expect(fromSecret).toEqual({
      PGHOST: { name: 'db', key: 'host' },
      PGPORT: { name: 'db', key: 'port' },
      PGDATABASE: { name: 'db', key: 'database' },
      PGUSER: { name: 'db', key: 'username' },
      PGPASSWORD: { name: 'db', key: 'password' },
    });
    expect(JSON.stringify(cj)).not.toContain(password);

    // The printer columns: schedule from status (the default is never written into the spec), Ready.
    expect(await kubectl('-n', n, 'get', 'bks', 'nightly')).toMatch(
      /NAME\s+SCHEDULE\s+LAST BACKUP\s+RPO\s+READY\s+AGE\nnightly\s+0 \*\/4 \* \* \*\s+True\s+\d+s\n/,
    );

    // An emergency backup: one Job within 2 s of the annotation; its pod passes `restricted` admission.
    const t0 = Date.now();
    await backupNow(n, 'nightly', 'incident-1');
    const first = await eventually(
      'the emergency Job',
      async () => (await scheduleJobs(n, 'nightly'))[0],
      5_000,
      50,
    );
    const seenAfterMs = Date.now() - t0;
    expect(seenAfterMs).toBeLessThanOrEqual(2_000);
    expect(first.metadata!.creationTimestamp!.getTime()).toBeLessThanOrEqual(t0 + 2_000);
    expect(first.metadata?.name).toMatch(/^nightly-backup-now-[0-9a-f]{8}$/);
    // On-request Jobs belong to the BackupSchedule (not the CronJob, whose controller would count them
    // against its history limits and report them as unexpected).
    expect(first.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'BackupSchedule',
      name: 'nightly',
      controller: true,
    });
    const withNow = await waitScheduleCondition(n, 'nightly', 'Ready', 'True', undefined, 10_000, (s) =>
      Boolean(s.status?.lastBackupNow),
    );
    expect(withNow.status.lastBackupNow).toEqual({
      annotationValue: 'incident-1',
      jobName: first.metadata?.name,
    });
    const firstPods = await eventually('the emergency Job pod', async () => {
      const p = (await pods(n)).filter((x) => x.metadata?.labels?.['job-name'] === first.metadata?.name);
      return p.length ? p : undefined;
    });
    expect(firstPods[0]!.spec?.securityContext?.runAsNonRoot).toBe(true);

    // Spec changes propagate; the reconciles they cause see the same backup-now value and start no Job.
    await patchSchedule(n, 'nightly', { spec: { schedule: '*/30 * * * *' } });
    await eventually('the new schedule on the CronJob', async () => {
      const s = await getSchedule(n, 'nightly');
      return (await cronJob(n, 'nightly-backup')).spec?.schedule === '*/30 * * * *' &&
        s.status?.schedule === '*/30 * * * *' &&
        s.status?.observedGeneration === 2
        ? true
        : undefined;
    });
    await patchSchedule(n, 'nightly', { spec: { suspend: true } });
    await waitScheduleCondition(n, 'nightly', 'Ready', 'True', 'Suspended', 15_000);
    expect((await cronJob(n, 'nightly-backup')).spec?.suspend).toBe(true);
    expect(await kubectl('-n', n, 'get', 'cronjob', 'nightly-backup', '-o', 'wide')).toMatch(
      /\*\/30 \* \* \* \*\s+Europe\/Berlin\s+True/,
    );
    await patchSchedule(n, 'nightly', { spec: { suspend: false } });
    await waitScheduleCondition(n, 'nightly', 'Ready', 'True', 'Scheduled', 15_000);
    expect((await cronJob(n, 'nightly-backup')).spec?.suspend).toBe(false);
    expect((await scheduleJobs(n, 'nightly')).map((j) => j.metadata?.name)).toEqual([first.metadata?.name]);

    // A new value is a new request: a second Job.
    await backupNow(n, 'nightly', 'incident-2');
    const jobs = await eventually(
      'a second emergency Job',
      async () => {
        const j = await scheduleJobs(n, 'nightly');
        return j.length === 2 ? j : undefined;
      },
      5_000,
      50,
    );
    expect(new Set(jobs.map((j) => j.metadata?.name)).size).toBe(2);
    await waitForEvents(n, 'nightly', withReasons('Scheduled', 'EmergencyBackupStarted'));
  });

  it('reports a missing Secret and missing keys, and recovers once the Secret is right', async () => {
    const n = ns.secrets;
    await applySchedule(n, 'no-secret', scheduleSpec('absent', 'backups'));
    await createDbSecret(n, 'partial', { host: 'db.example', database: 'app' });
    await applySchedule(n, 'partial', scheduleSpec('partial', 'backups'));
    const absent = await waitScheduleCondition(n, 'no-secret', 'Ready', 'False', 'SecretNotFound');
    expect(condition(absent, 'Ready').message).toContain('Secret "absent"');
    const partial = await waitScheduleCondition(n, 'partial', 'Ready', 'False', 'SecretKeysMissing');
    expect(condition(partial, 'Ready').message).toContain('lacks key(s) username, password');
    expect(condition(partial, 'Stalled').status).toBe('False'); // the user can fix it; it is retried
    expect(await cronJobs(n)).toEqual([]);
    await waitForEvents(
      n,
      'no-secret',
      (events) => events.some((e) => e.type === 'Warning' && e.reason === 'SecretNotFound'),
      'a Warning SecretNotFound Event',
    );

    // Secrets are not watched (get only): the operator looks again within 30 s.
    const fix = JSON.stringify({ stringData: { username: 'u', password } });
    await kubectl('-n', n, 'patch', 'secret', 'partial', '--type=merge', '-p', fix);
    await waitScheduleCondition(n, 'partial', 'Ready', 'True', 'Scheduled', 45_000);
    expect((await cronJobs(n)).map((c) => c.metadata?.name)).toEqual(['partial-backup']);
  });

  it('deleting the schedule removes its CronJobs and Jobs but keeps the claim it created', async () => {
    const n = ns.gc;
    await createDbSecret(n, 'db', { host: 'db.example', database: 'app', username: 'u', password });
    // No provisioner: a PV pre-bound to the claim the operator will create (`<schedule>-backups`).
    pvs.push(await createPvFor(n, 'gone-backups', 'manual'));
    await applySchedule(n, 'gone', {
      ...scheduleSpec('db', 'unused'),
      storage: { persistentVolumeClaim: { create: { size: '1Gi', storageClassName: 'manual' } } },
      verify: { testRestoreSchedule: '0 3 * * *' },
    });
    await waitScheduleCondition(n, 'gone', 'Ready', 'True', 'Scheduled');
    const pvc = await waitClaimBound(n, 'gone-backups');
    expect(pvc.metadata?.ownerReferences ?? []).toEqual([]);
    expect(pvc.spec?.storageClassName).toBe('manual');
    expect((await cronJobs(n)).map((c) => c.metadata?.name).sort()).toEqual(['gone-backup', 'gone-verify']);
    const verify = await cronJob(n, 'gone-verify');
    expect(verify.spec?.jobTemplate.spec?.template.spec?.containers[0]?.args).toEqual([
      'test-restore',
      '--storage-dir',
      '/backups',
      '--id',
      'latest',
    ]);
    await backupNow(n, 'gone', 'before-delete');
    await eventually(
      'the emergency Job and its pod',
      async () => (await scheduleJobs(n, 'gone')).length === 1 && (await pods(n)).length === 1,
    );
    const storageEvent = (await waitForEvents(n, 'gone', withReasons('StorageCreated'))).find(
      (e) => e.reason === 'StorageCreated',
    );
    expect(storageEvent?.message).toContain('it is kept when the BackupSchedule is deleted');

    await kubectl('-n', n, 'delete', 'bks', 'gone', '--wait=true', '--timeout=30s');
    await eventually(
      'the CronJobs, Jobs and pods to be garbage collected',
      async () =>
        (await cronJobs(n)).length === 0 &&
        (await scheduleJobs(n, 'gone')).length === 0 &&
        (await pods(n)).length === 0,
      60_000,
      250,
    );
    // Backups are never deleted with the schedule: the claim stays, still bound.
    const kept = await core.readNamespacedPersistentVolumeClaim({ namespace: n, name: 'gone-backups' });
    expect(kept.status?.phase).toBe('Bound');
    expect(kept.metadata?.deletionTimestamp).toBeUndefined();
  });
});
