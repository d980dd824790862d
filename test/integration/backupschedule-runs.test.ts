import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestKubelet } from '../env/test-kubelet.js';
import { freePort } from '../env/processes.js';
import {
  applySchedule,
  backupNow,
  condition,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpPath,
  dumpsIn,
  fillDatabase,
  getSchedule,
  RECORDED,
  scheduleJobs,
  scheduleSpec,
  sha256File,
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
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { waitForEvents, withReasons } from '../support/plans.js';
import { createTestDatabase, pgInfo } from '../support/postgres.js';

// BackupSchedule backups that really run: the operator creates the Jobs, the test kubelet runs their pods
// (the operator image's runner, from the TypeScript sources) against the harness PostgreSQL, and the operator
// records what the runner wrote as its termination message.
describe.skipIf(inject('existingCluster'))('BackupSchedule backups against PostgreSQL', () => {
  const { core } = testClients();
  const ns = { backup: '', down: '', retention: '', restore: '' };
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  /** Logs of operator processes that were stopped (restart), for the password check. */
  const oldOperatorLogs: string[] = [];
  const runOperator = async () => {
    // verify.sql runs as the harness's superuser postgres: allowed explicitly (the runner refuses otherwise).
    op = await startOperator({
      env: { WATCH_NAMESPACES: Object.values(ns).join(','), ALLOW_SUPERUSER_ASSERTIONS: 'true' },
    });
    await op.waitReady();
  };

  beforeAll(async () => {
    for (const k of Object.keys(ns) as (keyof typeof ns)[]) ns[k] = await createTestNamespace(`bkr-${k}`);
    workDir = mkdtempSync(join(tmpdir(), 'nxt-bks-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    await runOperator();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    await Promise.all(Object.values(ns).map((n) => deleteTestNamespace(n)));
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** A filled database, its Secret `db`, a bound claim `backups` and a Ready schedule `name`. */
  async function setup(n: string, name: string, extra: Record<string, unknown> = {}, port?: number) {
    const db = await createTestDatabase('bks');
    await fillDatabase(db.url, db.name);
    await createDbSecret(n, 'db', dbSecretData(db.name, port));
    pvs.push(await createBoundClaim(n, 'backups'));
    await applySchedule(n, name, scheduleSpec('db', 'backups', extra));
    await waitScheduleCondition(n, name, 'Ready', 'True', 'Scheduled');
    return { db, dir: kubelet.pvcDir(n, 'backups') };
  }

  /** Annotates backup-now=value and returns the name of the one new Job, once the operator recorded it. */
  async function takeBackup(n: string, name: string, value: string, timeoutMs = 90_000) {
    const before = new Set((await scheduleJobs(n, name)).map((j) => j.metadata!.name));
    await backupNow(n, name, value);
    const job = await eventually('a new Job', async () =>
      (await scheduleJobs(n, name)).find((j) => !before.has(j.metadata!.name)),
    );
    await waitJobRecorded(n, job.metadata!.name!, timeoutMs);
    expect((await scheduleJobs(n, name)).length).toBe(before.size + 1);
    return job.metadata!.name!;
  }

  it('takes a real backup on request and records it from the termination message', async () => {
    const n = ns.backup;
    const { dir } = await setup(n, 'app');
    const id = await takeBackup(n, 'app', 'first');
    await waitScheduleCondition(n, 'app', 'LastBackupSucceeded', 'True', 'BackupVerified');
    // RPOMet and rpoSeconds follow in the reconcile after the one that recorded the Job.
    const s = await waitScheduleCondition(n, 'app', 'RPOMet', 'True', 'WithinObjective', 15_000);
    const [pod] = (await core.listNamespacedPod({ namespace: n, labelSelector: `job-name=${id}` })).items;
    expect(pod?.spec?.nodeName).toBe(kubelet.nodeName);
    const result = JSON.parse(pod!.status!.containerStatuses![0]!.state!.terminated!.message!);
    expect(result).toMatchObject({ operation: 'backup', success: true, id, verified: true });
    expect(result.tables).toMatchObject({ 'public.pgbench_accounts': 100_000, 'public.notes': 10_000 });

    // status.backups[0] is the Job's backup; its checksum is that of the real file in the claim.
    const file = dumpPath(dir, id);
    expect(dumpsIn(dir)).toEqual([`${id}.dump`]);
    const entry = s.status.backups[0];
    expect(s.status.backups).toHaveLength(1);
    expect(entry).toMatchObject({
      id,
      verified: true,
      bytes: readFileSync(file).length,
      sha256: sha256File(file),
    });
    expect(entry.sha256).toBe(result.sha256);
    expect(s.status.lastSuccessfulBackup).toEqual(entry);
    expect(s.status.rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(s.status.rpoSeconds).toBeLessThan(600);
    // Within the objective right now, and honest that a 4h schedule cannot keep a 1h objective.
    const rpo = condition(s, 'RPOMet');
    expect(rpo).toMatchObject({ status: 'True', reason: 'WithinObjective' });
    expect(rpo.message).toMatch(/leaves up to 4h between backups, longer than the RPO objective 1h/);
    expect(condition(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
    // Printer columns: schedule, age of the last backup, RPO seconds, Ready.
    expect(await kubectl('-n', n, 'get', 'bks', 'app')).toMatch(
      /\napp\s+0 \*\/4 \* \* \*\s+\d+s\s+\d+\s+True\s+\d+s\n/,
    );

    const labels = { namespace: n, schedule: 'app' };
    expect(await metricValue(op.metricsUrl, 'nxt_backup_total', { ...labels, result: 'succeeded' })).toBe(1);
    expect(await metricValue(op.metricsUrl, 'nxt_backup_last_success_timestamp_seconds', labels)).toBe(
      Date.parse(entry.finishedAt) / 1000,
    );
    const events = await waitForEvents(n, 'app', withReasons('BackupSucceeded'));
    expect(events.find((e) => e.reason === 'BackupSucceeded')?.message).toContain(`backup ${id}:`);
    const job = await waitJobRecorded(n, id);
    expect(job.metadata?.annotations?.[RECORDED]).toBe('succeeded');

    // A restarted operator exposes the last success again from status, and does not record the Job twice.
    await op.kill();
    oldOperatorLogs.push(op.logs());
    await runOperator();
    const lastSuccess = () => metricValue(op.metricsUrl, 'nxt_backup_last_success_timestamp_seconds', labels);
    expect(await eventually('the last-success gauge after a restart', lastSuccess, 15_000)).toBe(
      Date.parse(entry.finishedAt) / 1000,
    );
    expect(await metricValue(op.metricsUrl, 'nxt_backup_total', labels)).toBeUndefined();
    expect((await getSchedule(n, 'app')).status.backups).toEqual([entry]);

    // The same value again (and the reconciles of a spec change) start no second backup.
    await backupNow(n, 'app', 'first');
    await kubectl(
      '-n',
      n,
      'patch',
      'bks',
      'app',
      '--type=merge',
      '-p',
      '{"spec":{"startingDeadlineSeconds":120}}',
    );
    await waitScheduleCondition(
      n,
      'app',
      'Ready',
      'True',
      'Scheduled',
      15_000,
      (x) => x.status.observedGeneration === 2,
    );
    expect((await scheduleJobs(n, 'app')).map((j) => j.metadata?.name)).toEqual([id]);
  });

  it('fails cleanly when the database is unreachable', async () => {
    const n = ns.down;
    const closed = await freePort();
    const { dir } = await setup(n, 'down', {}, closed);
    const id = await takeBackup(n, 'down', 'now', 120_000);
    const s = await waitScheduleCondition(n, 'down', 'LastBackupSucceeded', 'False', 'DatabaseUnreachable');
    expect(condition(s, 'LastBackupSucceeded').message).toContain(
      `backup Job ${id} failed: DatabaseUnreachable`,
    );
    expect(s.status.backups ?? []).toEqual([]);
    expect(s.status.lastSuccessfulBackup).toBeUndefined();
    expect(condition(s, 'RPOMet')).toMatchObject({ status: 'False', reason: 'NoBackupYet' });
    // Nothing that looks like a backup is left behind: no dump, no partial dump, no manifest.
    expect(existsSync(dir)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.dump') || f.includes('.manifest'))).toEqual([]);
    const failed = (await waitForEvents(n, 'down', withReasons('BackupFailed'))).find(
      (e) => e.reason === 'BackupFailed',
    );
    expect(failed).toMatchObject({ type: 'Warning' });
    expect(failed?.message).toContain('DatabaseUnreachable');
    const labels = { namespace: n, schedule: 'down', result: 'failed' };
    expect(await metricValue(op.metricsUrl, 'nxt_backup_total', labels)).toBe(1);
  });

  it('applies retention: keepLast 2 keeps two dumps on disk and two entries in status', async () => {
    const n = ns.retention;
    const { dir } = await setup(n, 'keep', { retention: { keepLast: 2 } });
    const ids: string[] = [];
    for (const v of ['r1', 'r2', 'r3']) ids.push(await takeBackup(n, 'keep', v));
    const s = await eventually('two backups in status', async () => {
      const x = await getSchedule(n, 'keep');
      return x.status?.backups?.length === 2 ? x : undefined;
    });
    expect(s.status.backups.map((b: any) => b.id)).toEqual([ids[2], ids[1]]);
    expect(s.status.lastSuccessfulBackup.id).toBe(ids[2]);
    expect(dumpsIn(dir)).toEqual([ids[1], ids[2]].map((id) => `${id}.dump`).sort());
    const [newest] = (await core.listNamespacedPod({ namespace: n, labelSelector: `job-name=${ids[2]}` }))
      .items;
    const result = JSON.parse(newest!.status!.containerStatuses![0]!.state!.terminated!.message!);
    expect(result).toMatchObject({ prunedCount: 1, pruned: [ids[0]] });
    // Each Job is counted once, however often a stale cache made the operator look at it again.
    const labels = { namespace: n, schedule: 'keep', result: 'succeeded' };
    expect(await metricValue(op.metricsUrl, 'nxt_backup_total', labels)).toBe(3);
  });

  it('test-restores the newest backup from the verify CronJob, and a corrupted dump fails it', async () => {
    const n = ns.restore;
    const { dir } = await setup(n, 'checked', {
      verify: {
        testRestoreSchedule: '30 3 * * *',
        sql: [{ name: 'notes', query: 'select count(*) from notes', expect: '10000' }],
      },
    });
    const id = await takeBackup(n, 'checked', 'seed');
    await kubectl('-n', n, 'create', 'job', '--from=cronjob/checked-verify', 'checked-verify-manual-1');
    await waitJobRecorded(n, 'checked-verify-manual-1');
    const ok = await waitScheduleCondition(
      n,
      'checked',
      'LastTestRestoreSucceeded',
      'True',
      'RestoreVerified',
    );
    expect(ok.status.lastTestRestore).toMatchObject({ backupId: id, result: 'Succeeded' });
    expect(ok.status.lastTestRestore.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(condition(ok, 'LastTestRestoreSucceeded').message).toContain(`test restore of ${id} passed`);

    // Flip bytes in the middle of the dump, size unchanged: the checksum catches it before any restore.
    const file = dumpPath(dir, id);
    const size = readFileSync(file).length;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(64, 0x5a), 0, 64, Math.floor(size / 2));
    closeSync(fd);
    await kubectl('-n', n, 'create', 'job', '--from=cronjob/checked-verify', 'checked-verify-manual-2');
    await waitJobRecorded(n, 'checked-verify-manual-2');
    const bad = await waitScheduleCondition(
      n,
      'checked',
      'LastTestRestoreSucceeded',
      'False',
      'ChecksumMismatch',
    );
    expect(bad.status.lastTestRestore).toMatchObject({ backupId: id, result: 'Failed' });
    const failed = (await waitForEvents(n, 'checked', withReasons('TestRestoreFailed'))).find(
      (e) => e.reason === 'TestRestoreFailed',
    );
    expect(failed?.message).toContain('ChecksumMismatch');
  });

  it('the database password appears in no object, event, termination message or log', async () => {
    const { password } = pgInfo();
    const places: [string, string][] = [...oldOperatorLogs, op.logs()].map((l) => ['operator log', l]);
    places.push(['test kubelet log (command lines)', kubeletLog.join('\n')]);
    for (const n of Object.values(ns)) {
      for (const kind of ['backupschedules', 'cronjobs', 'jobs', 'pods', 'events']) {
        places.push([`${n} ${kind}`, await kubectl('-n', n, 'get', kind, '-o', 'json')]);
      }
      for (const p of (await core.listNamespacedPod({ namespace: n })).items) {
        places.push([`${n}/${p.metadata?.name} log`, kubelet.logsOf(n, p.metadata!.name!)]);
      }
    }
    expect(places.filter(([, text]) => text.includes('"terminated"')).length).toBeGreaterThan(0);
    for (const [where, text] of places) expect(text.includes(password), where).toBe(false);
  });
});
