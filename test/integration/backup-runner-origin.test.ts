import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import type { BackupManifest } from '../../operator/backup/runner/manifest.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import { createTestDatabase, runnerPgEnv, withClient } from '../support/postgres.js';

// Issue 9, defect 1: the backup runner adopts only a backup its own Job (or, for a safety backup, its own
// plan) wrote. Runs the runner exactly as a Job pod would, against the real PostgreSQL, with the provenance
// variables the pod builders set.

const root = mkdtempSync(join(tmpdir(), 'nxt-runner-origin-'));
const storageDir = join(root, 'backups');
let runs = 0;

async function backup(id: string, origin: Record<string, string>, database: string): Promise<RunnerResult> {
  return run(['backup', '--storage-dir', storageDir, '--id', id], origin, database);
}

async function run(argv: string[], origin: Record<string, string>, database: string): Promise<RunnerResult> {
  const terminationLog = join(root, `termination-${runs++}`);
  await runnerMain([...argv, '--termination-log', terminationLog], runnerPgEnv(database, origin), {
    writeLog: () => {},
  });
  return RunnerResultSchema.parse(JSON.parse(readFileSync(terminationLog, 'utf8')));
}

const file = (id: string, ext: 'dump' | 'manifest.json') => join(storageDir, `${id}.${ext}`);
const fingerprint = (id: string) =>
  (['dump', 'manifest.json'] as const).map((ext) =>
    createHash('sha256')
      .update(readFileSync(file(id, ext)))
      .digest('hex'),
  );
const manifestOf = (id: string) =>
  JSON.parse(readFileSync(file(id, 'manifest.json'), 'utf8')) as BackupManifest;

const safetyOf = (planUid: string, jobUid: string) => ({
  NXT_BACKUP_PURPOSE: 'safety',
  NXT_SCHEDULE_NAME: 'shop-db',
  NXT_SCHEDULE_UID: 'schedule-uid',
  NXT_PLAN_NAME: 'undo',
  NXT_PLAN_UID: planUid,
  NXT_JOB_NAME: 'undo-safety',
  NXT_JOB_UID: jobUid,
});

describe('backup runner provenance (issue 9, defect 1)', () => {
  let db: { name: string; url: string };
  beforeAll(async () => {
    mkdirSync(storageDir);
    db = await createTestDatabase('origin');
    await withClient(db.url, async (c) => {
      await c.query('create table notes (id int primary key)');
      await c.query('insert into notes select generate_series(1, 100)');
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes origin into the manifest and reuses the backup only for a retried pod of the same Job', async () => {
    const job = { NXT_BACKUP_PURPOSE: 'scheduled', NXT_JOB_NAME: 'nightly-1', NXT_JOB_UID: 'job-a' };
    const first = await backup(
      'nightly-1',
      { ...job, NXT_SCHEDULE_NAME: 'db', NXT_SCHEDULE_UID: 's' },
      db.name,
    );
    expect(first, first.message).toMatchObject({ success: true });
    expect(manifestOf('nightly-1').origin).toEqual({
      purpose: 'scheduled',
      schedule: { name: 'db', uid: 's' },
      job: { name: 'nightly-1', uid: 'job-a' },
    });
    expect(await backup('nightly-1', job, db.name)).toMatchObject({ success: true, reused: true });

    const before = fingerprint('nightly-1');
    const other = await backup('nightly-1', { ...job, NXT_JOB_UID: 'job-b' }, db.name);
    expect(other).toMatchObject({ success: false, reason: 'BackupIdConflict' });
    expect(other.message).toMatch(/taken by a backup .* by Job "nightly-1" \(uid job-a\)/);
    const byHand = await backup('nightly-1', {}, db.name);
    expect(byHand).toMatchObject({ success: false, reason: 'BackupIdConflict' });
    expect(fingerprint('nightly-1'), "the other backup's files are untouched").toEqual(before);
  });

  it("never adopts a same-named plan's safety backup from a week before", async () => {
    const id = 'undo-safety';
    expect(await backup(id, safetyOf('plan-week-1', 'job-1'), db.name)).toMatchObject({ success: true });
    // The same plan re-creating its safety Job reuses its own backup.
    expect(await backup(id, safetyOf('plan-week-1', 'job-2'), db.name)).toMatchObject({
      success: true,
      reused: true,
    });
    const lastWeek = fingerprint(id);
    await withClient(db.url, (c) => c.query('insert into notes select generate_series(101, 150)'));
    const nextWeek = await backup(id, safetyOf('plan-week-2', 'job-3'), db.name);
    expect(
      nextWeek,
      'a new plan of the same name must not get last week\'s data as "its" safety backup',
    ).toMatchObject({
      success: false,
      reason: 'BackupIdConflict',
    });
    expect(nextWeek.message).toMatch(/RollbackPlan "undo" \(uid plan-week-1\)/);
    expect(fingerprint(id)).toEqual(lastWeek);
    expect(manifestOf(id).tables['public.notes']).toBe(100);
  });

  it("treats a manifest without origin (written before provenance existed) as someone else's", async () => {
    const job = { NXT_BACKUP_PURPOSE: 'emergency', NXT_JOB_NAME: 'legacy', NXT_JOB_UID: 'job-l' };
    expect(await backup('legacy', job, db.name)).toMatchObject({ success: true });
    const { origin: _dropped, ...legacy } = manifestOf('legacy');
    writeFileSync(file('legacy', 'manifest.json'), JSON.stringify(legacy));
    const before = fingerprint('legacy');
    expect(await backup('legacy', job, db.name)).toMatchObject({
      success: false,
      reason: 'BackupIdConflict',
    });
    expect(fingerprint('legacy')).toEqual(before);
  });

  it('restores once per plan: a second run with the same NXT_PLAN_UID refuses before touching the database', async () => {
    const target = await createTestDatabase('fence');
    await withClient(target.url, async (c) => {
      await c.query('create table notes (id int primary key)');
      await c.query('insert into notes select generate_series(1, 10)');
    });
    expect(
      await backup('fence-1', { NXT_JOB_NAME: 'fence-1', NXT_JOB_UID: 'job-f' }, target.name),
    ).toMatchObject({ success: true });
    const count = () =>
      withClient(target.url, async (c) => (await c.query('select count(*)::int as n from notes')).rows[0].n);
    const restore = (planUid: string, job: string) =>
      run(
        ['restore', '--storage-dir', storageDir, '--id', 'fence-1', '--mode', 'inPlace'],
        { NXT_PLAN_NAME: 'undo', NXT_PLAN_UID: planUid, NXT_JOB_NAME: job },
        target.name,
      );
    await withClient(target.url, (c) => c.query('insert into notes select generate_series(11, 20)'));
    const first = await restore('plan-fence-1', 'undo-restore');
    expect(first, first.message).toMatchObject({ success: true });
    expect(await count()).toBe(10);
    const marker = JSON.parse(readFileSync(join(storageDir, '.restores', 'plan-fence-1'), 'utf8'));
    expect(marker).toMatchObject({ planUid: 'plan-fence-1', id: 'fence-1', job: 'undo-restore' });

    // Writes after the restore; then a second Job of the same plan (re-created, un-suspended by someone else)
    // runs the same restore: it must not overwrite them.
    await withClient(target.url, (c) => c.query('insert into notes select generate_series(11, 15)'));
    const second = await restore('plan-fence-1', 'undo-restore');
    expect(second).toMatchObject({ success: false, reason: 'RestoreAlreadyStarted' });
    expect(second.operation === 'restore' && second.restoreSeconds).toBeFalsy();
    expect(await count(), 'the writes made after the first restore are still there').toBe(15);

    // Another plan is another restore.
    expect(await restore('plan-fence-2', 'other-restore')).toMatchObject({ success: true });
    expect(await count()).toBe(10);
  });
});
