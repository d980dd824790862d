import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  condition,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpPath,
  getSchedule,
  scheduleJobs,
  scheduleSpec,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import { parseJson, runCli, spawnCli } from '../support/cli.js';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { eventsFor } from '../support/plans.js';
import { createTestDatabase, withClient } from '../support/postgres.js';
import { limitedUserKubeconfig } from '../support/rbac.js';

const TEST_RESTORE_NOW = 'rollback.nxtnewday.io/test-restore-now';

// backup now / backups list / backups verify as real processes against the real control plane, with the
// operator running as a process and the test kubelet running the runner Jobs against the harness PostgreSQL.
// The operator's side of test-restore-now (Part 1) is checked here too: one Job per request, built from the
// backup CronJob (the schedule has no verify.testRestoreSchedule), recorded as status.lastTestRestore.
describe.skipIf(inject('existingCluster'))('CLI: backup now, backups list, backups verify', () => {
  const ns = { main: '', stuck: '' };
  /** Not watched by the operator: a request there is never handled. */
  let unwatched = '';
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  /** The backup `backup now --wait` took, used by the later tests. */
  let backupId = '';

  beforeAll(async () => {
    ns.main = await createTestNamespace('cli-bk');
    ns.stuck = await createTestNamespace('cli-bk-stuck');
    unwatched = await createTestNamespace('cli-bk-unw');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-cli-bk-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: Object.values(ns).join(',') } });
    await op.waitReady();
    const db = await createTestDatabase('clibk');
    await withClient(db.url, async (c) => {
      await c.query('create table notes (id int primary key, body text not null)');
      await c.query("insert into notes select g, 'note ' || g from generate_series(1, 1000) g");
    });
    for (const n of Object.values(ns)) {
      await createDbSecret(n, 'db', dbSecretData(db.name));
      pvs.push(await createBoundClaim(n, 'backups'));
    }
    await applySchedule(ns.main, 'app', scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }));
    // No node carries this label: its Job pods never start (no kubelet runs them).
    await applySchedule(ns.stuck, 'stuck', {
      ...scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }),
      podTemplate: { nodeSelector: { 'nxt.test/no-such-node': 'true' } },
    });
    await applySchedule(ns.stuck, 'other', scheduleSpec('db', 'backups', { schedule: '0 4 * * *' }));
    await waitScheduleCondition(ns.main, 'app', 'Ready', 'True', 'Scheduled');
    await waitScheduleCondition(ns.stuck, 'stuck', 'Ready', 'True', 'Scheduled');
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    await Promise.all([...Object.values(ns), unwatched].map((n) => deleteTestNamespace(n)));
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('backup now --wait takes a real backup of the only schedule and prints it (-o json)', async () => {
    const r = await runCli(['-n', ns.main, 'backup', 'now', '--wait', '--timeout', '90s', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out).toMatchObject({ schedule: 'app', state: 'Succeeded', backup: { verified: true } });
    expect(out.request).toMatch(/^cli-\d{8}t\d{6}z-[0-9a-f]{6}$/);
    expect(out.backup.id).toBe(out.jobName);
    expect(out.backup.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.backup.bytes).toBeGreaterThan(0);
    backupId = out.backup.id;
    const s = await getSchedule(ns.main, 'app');
    expect(s.metadata.annotations['rollback.nxtnewday.io/backup-now']).toBe(out.request);
    expect(s.status.backups.map((b: any) => b.id)).toContain(backupId);

    // The table form: id, size, sha256 prefix, verified, duration.
    const t = await runCli(['-n', ns.main, 'backup', 'now', 'app', '--wait', '--timeout', '90s']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(
      /^ID\s+SIZE\s+SHA256\s+VERIFIED\s+DURATION\n\S+\s+\S+\s+[0-9a-f]{12}…\s+yes\s+\S+/,
    );
  });

  it('backups list shows the recorded backups newest first, as a table and as JSON', async () => {
    const j = await runCli(['-n', ns.main, 'backups', 'list', '-o', 'json']);
    expect(j.code, j.stderr).toBe(0);
    const rows = parseJson(j).backups;
    expect(rows.length).toBe(2);
    expect(rows.map((b: any) => b.id)).toContain(backupId);
    expect(rows[0].finishedAt >= rows[1].finishedAt).toBe(true);
    expect(rows[0]).toMatchObject({ schedule: 'app', purpose: 'emergency', verified: true });
    const t = await runCli(['-n', ns.main, 'backups', 'list', 'app']);
    expect(t.code, t.stderr).toBe(0);
    const [header, ...lines] = t.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+SCHEDULE\s+PURPOSE\s+FINISHED\s+AGE\s+SIZE\s+VERIFIED$/);
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith(backupId) && /\sapp\s+emergency\s/.test(l))).toBe(true);
  });

  it('backups verify --wait test-restores that backup through the operator (one Job) and prints the result', async () => {
    const before = (await scheduleJobs(ns.main, 'app')).length;
    const r = await runCli([
      '-n',
      ns.main,
      'backups',
      'verify',
      backupId,
      '--wait',
      '--timeout',
      '120s',
      '-o',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out).toMatchObject({ schedule: 'app', backupId, result: 'Succeeded' });
    expect(out.request).toMatch(new RegExp(`^${backupId}@cli-`));
    expect(out.message).toContain(`test restore of ${backupId} passed`);
    // The operator's side: one test-restore Job for the request, recorded; status says so.
    const s = await getSchedule(ns.main, 'app');
    expect(s.status.lastTestRestoreNow).toMatchObject({ annotationValue: out.request, backupId });
    expect(s.status.lastTestRestore).toMatchObject({ backupId, result: 'Succeeded' });
    expect(condition(s, 'LastTestRestoreSucceeded')).toMatchObject({
      status: 'True',
      reason: 'RestoreVerified',
    });
    const jobs = await scheduleJobs(ns.main, 'app');
    expect(jobs.length).toBe(before + 1);
    const job = jobs.find((j) => j.metadata!.name === s.status.lastTestRestoreNow.jobName)!;
    expect(job.metadata!.labels!['app.kubernetes.io/component']).toBe('test-restore');
    // Owned by the schedule, not the CronJob (whose controller would call it an UnexpectedJob).
    expect(job.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'BackupSchedule', name: 'app', uid: s.metadata.uid, controller: true }),
    ]);
    expect(s.status.lastTestRestore.jobName).toBe(s.status.lastTestRestoreNow.jobName);
    expect(job.spec!.template.spec!.containers[0]!.args).toEqual([
      'test-restore',
      '--storage-dir',
      '/backups',
      '--id',
      backupId,
    ]);
    // Table form, latest.
    const t = await runCli(['-n', ns.main, 'backups', 'verify', 'latest', '--wait', '--timeout', '120s']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^test restore of \S+: Succeeded in \S+: test restore of/);
  });

  it('operator: a test-restore-now value naming an unknown backup starts no Job and says so (not on the condition)', async () => {
    const before = (await scheduleJobs(ns.main, 'app')).length;
    const previous = condition(await getSchedule(ns.main, 'app'), 'LastTestRestoreSucceeded');
    await kubectl('-n', ns.main, 'annotate', '--overwrite', 'bks', 'app', `${TEST_RESTORE_NOW}=nope@1`);
    const s = await eventually('the refused request in status', async () => {
      const got = await getSchedule(ns.main, 'app');
      return got.status?.lastTestRestoreNow?.annotationValue === 'nope@1' ? got : undefined;
    });
    expect(s.status.lastTestRestoreNow.reason).toBe('BackupNotFound');
    // LastTestRestoreSucceeded reports the last real test restore, not a typo.
    expect(condition(s, 'LastTestRestoreSucceeded')).toEqual(previous);
    expect(s.status.lastTestRestoreNow.message).toContain('backup "nope" is not among');
    expect(s.status.lastTestRestoreNow.jobName).toBeUndefined();
    await eventually('the BackupNotFound Event', async () =>
      (await eventsFor(ns.main, 'app')).some((e: any) => e.reason === 'BackupNotFound'),
    );
    expect((await scheduleJobs(ns.main, 'app')).length).toBe(before);
  });

  it("backups verify exits 1 when the test restore fails (a corrupted dump), with the runner's reason", async () => {
    const file = dumpPath(kubelet.pvcDir(ns.main, 'backups'), backupId);
    const size = readFileSync(file).length;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(64, 0x5a), 0, 64, Math.floor(size / 2));
    closeSync(fd);
    const r = await runCli([
      '-n',
      ns.main,
      'backups',
      'verify',
      backupId,
      '--wait',
      '--timeout',
      '120s',
      '-o',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(parseJson(r)).toMatchObject({
      backupId,
      result: 'Failed',
      message: expect.stringContaining('ChecksumMismatch'),
    });
  });

  it('unknown schedule and unknown backup id exit 3; several schedules without a name is a usage error', async () => {
    const s = await runCli(['-n', ns.main, 'backup', 'now', 'nosuch']);
    expect(s.code).toBe(3);
    expect(s.stderr).toContain('BackupSchedule "nosuch" not found');
    expect((await runCli(['-n', ns.main, 'backups', 'list', 'nosuch'])).code).toBe(3);
    const v = await runCli(['-n', ns.main, 'backups', 'verify', 'no-such-backup', '--wait']);
    expect(v.code).toBe(3);
    expect(v.stderr).toContain('"no-such-backup" is not recorded');
    const v2 = await runCli(['-n', ns.main, 'backups', 'verify', 'no-such-backup', '--schedule', 'app']);
    expect(v2.code).toBe(3);
    const several = await runCli(['-n', ns.stuck, 'backup', 'now']);
    expect(several.code).toBe(2);
    expect(several.stderr).toContain('other, stuck');
  });

  it('a user without patch on backupschedules gets exit 4 naming the verb and the resource', async () => {
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns.main,
      serviceAccount: 'viewer',
      verbs: ['get', 'list', 'watch'],
      resources: ['backupschedules.rollback.nxtnewday.io'],
    });
    const list = await runCli(['backups', 'list', '-o', 'json'], { kubeconfig });
    expect(list.code, list.stderr).toBe(0);
    expect(parseJson(list).backups.length).toBeGreaterThan(0);
    for (const args of [
      ['backup', 'now', 'app'],
      ['backups', 'verify', backupId],
    ]) {
      const r = await runCli(args, { kubeconfig });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/cannot patch resource "backupschedules"/);
    }
  });

  it('backup now --wait --timeout exits 5 when no kubelet runs the Job', async () => {
    const started = Date.now();
    const r = await runCli(['-n', ns.stuck, 'backup', 'now', 'stuck', '--wait', '--timeout', '4s']);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain('timed out after 4s');
    // Far below the default --timeout (5m): the flag bounds the wait. Generous, since the CLI's own start-up
    // (tsx) took 30 s on a machine loaded by several control planes.
    expect(Date.now() - started).toBeLessThan(90_000);
    // The request itself was made: the operator started the Job, which cannot run.
    const s = await getSchedule(ns.stuck, 'stuck');
    expect(s.status.lastBackupNow?.jobName).toMatch(/^stuck-backup-now-/);
  });

  it('backup now --wait: a newer request before the operator handled ours ends the wait, "superseded by" (exit 1)', async () => {
    await applySchedule(unwatched, 'app', scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }));
    const child = spawnCli(['-n', unwatched, 'backup', 'now', 'app', '--wait', '--timeout', '2m']);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // The CLI's own start-up (tsx) took over 30 s on a machine loaded by two test shards and other work.
    const ours = await eventually(
      'our backup-now request',
      async () =>
        (await getSchedule(unwatched, 'app')).metadata.annotations?.['rollback.nxtnewday.io/backup-now'],
      90_000,
    );
    const started = Date.now();
    await kubectl(
      '-n',
      unwatched,
      'annotate',
      '--overwrite',
      'backupschedule',
      'app',
      'rollback.nxtnewday.io/backup-now=newer-request',
    );
    expect(await exited, stderr).toBe(1);
    // Far below --timeout (2m): the newer request ended the wait. Generous, since a machine loaded by two test
    // shards and other work took over 30 s for the watch event and the CLI's exit (a CI run failed at 30 s).
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(stderr).toContain(`backup-now request ${ours} was superseded by newer-request`);
  });
});
