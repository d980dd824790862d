import { describe, expect, it } from 'vitest';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';
import { RunnerFailure } from './failure.js';
import { decideExistingBackup, originFromEnv, sameWriter, type BackupOrigin } from './origin.js';

const job = (uid: string, name = 'j') => ({ name, uid });
const scheduled = (jobUid: string): BackupOrigin => ({
  purpose: 'scheduled',
  schedule: { name: 'db', uid: 's-1' },
  job: job(jobUid),
});
const safety = (planUid: string, jobUid: string): BackupOrigin => ({
  purpose: 'safety',
  plan: { name: 'undo', uid: planUid },
  job: job(jobUid, 'undo-safety'),
});

describe('originFromEnv', () => {
  it('reads what the pod builders set; empty downward-API values count as unset', () => {
    expect(
      originFromEnv({
        NXT_BACKUP_PURPOSE: 'safety',
        NXT_SCHEDULE_NAME: 'db',
        NXT_SCHEDULE_UID: 's-1',
        NXT_PLAN_NAME: 'undo',
        NXT_PLAN_UID: 'p-1',
        NXT_JOB_NAME: 'undo-safety',
        NXT_JOB_UID: '',
      }),
    ).toEqual({
      purpose: 'safety',
      schedule: { name: 'db', uid: 's-1' },
      plan: { name: 'undo', uid: 'p-1' },
      job: { name: 'undo-safety' },
    });
  });
  it('is undefined without a purpose (a run by hand)', () => {
    expect(originFromEnv({ NXT_JOB_UID: 'x' })).toBeUndefined();
  });
  it('rejects an unknown purpose as InvalidArguments', () => {
    expect(() => originFromEnv({ NXT_BACKUP_PURPOSE: 'nightly' })).toThrow(RunnerFailure);
  });
});

describe('sameWriter', () => {
  it.each<[string, BackupOrigin | undefined, BackupOrigin | undefined, boolean]>([
    ['the same Job (a retried pod)', scheduled('j-1'), scheduled('j-1'), true],
    ['another Job of the same schedule', scheduled('j-1'), scheduled('j-2'), false],
    ['a safety backup of the same plan, re-created Job', safety('p-1', 'j-1'), safety('p-1', 'j-2'), true],
    ['a plan of the same name, a week later', safety('p-1', 'j-1'), safety('p-2', 'j-2'), false],
    ['a scheduled backup vs a safety backup of some plan', scheduled('j-1'), safety('p-1', 'j-2'), false],
    ['a manifest without origin', undefined, scheduled('j-1'), false],
    ['a run without origin', scheduled('j-1'), undefined, false],
    [
      'names alone',
      { purpose: 'scheduled', job: { name: 'j' } },
      { purpose: 'scheduled', job: { name: 'j' } },
      false,
    ],
  ])('%s: %s', (_what, theirs, ours, expected) => {
    expect(sameWriter(theirs, ours)).toBe(expected);
  });
});

describe('decideExistingBackup', () => {
  const at = '2026-03-01T02:00:00Z';
  it('reuses a verified backup with its dump, written by this Job', () => {
    const m = fakeManifest('b', at, { origin: scheduled('j-1') });
    expect(decideExistingBackup(m, true, scheduled('j-1'))).toEqual({ action: 'reuse' });
  });
  it('redoes its own unverified backup, or one whose dump is missing', () => {
    expect(
      decideExistingBackup(
        fakeManifest('b', at, { verified: false, origin: scheduled('j-1') }),
        true,
        scheduled('j-1'),
      ),
    ).toEqual({ action: 'redo' });
    expect(
      decideExistingBackup(fakeManifest('b', at, { origin: scheduled('j-1') }), false, scheduled('j-1')),
    ).toEqual({ action: 'redo' });
  });
  it("never adopts or redoes someone else's backup, verified or not, and says whose it is", () => {
    for (const verified of [true, false]) {
      const m = fakeManifest('undo-safety', at, { verified, origin: safety('p-1', 'j-1') });
      const d = decideExistingBackup(m, true, safety('p-2', 'j-2'));
      expect(d.action).toBe('conflict');
      expect(d.action === 'conflict' && d.message).toMatch(/RollbackPlan "undo" \(uid p-1\).*uid p-2/);
    }
    const legacy = decideExistingBackup(fakeManifest('b', at), true, scheduled('j-1'));
    expect(legacy.action === 'conflict' && legacy.message).toMatch(/records no origin/);
  });
});
