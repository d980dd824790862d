import { describe, expect, it } from 'vitest';
import {
  isOwnBackup,
  isoWeek,
  isScheduleBackupId,
  scheduleIdentityFromEnv,
  selectBackupsToDelete,
  type RetentionCandidate,
} from './retention.js';

const now = new Date('2026-03-15T12:00:00Z');
const b = (id: string, finishedAt: string, verified = true): RetentionCandidate => ({
  id,
  finishedAt,
  verified,
});

describe('isoWeek', () => {
  it.each([
    ['2026-01-01T00:00:00Z', '2026-W01'], // Thursday
    ['2025-12-29T00:00:00Z', '2026-W01'], // Monday of the week holding Jan 1st 2026
    ['2027-01-01T00:00:00Z', '2026-W53'], // Friday: still the last week of 2026
    ['2024-12-30T10:00:00Z', '2025-W01'],
    ['2026-03-15T23:59:59Z', '2026-W11'], // Sunday ends the week
    ['2026-03-16T00:00:00Z', '2026-W12'],
  ])('%s is in %s', (date, week) => {
    expect(isoWeek(new Date(date))).toBe(week);
  });
});

describe('selectBackupsToDelete', () => {
  const hourly = [
    b('d15-10', '2026-03-15T10:00:00Z'),
    b('d15-08', '2026-03-15T08:00:00Z'),
    b('d14-20', '2026-03-14T20:00:00Z'),
    b('d14-02', '2026-03-14T02:00:00Z'),
    b('d12-23', '2026-03-12T23:00:00Z'),
    b('d09-05', '2026-03-09T05:00:00Z'), // Monday, week 11
    b('d08-05', '2026-03-08T05:00:00Z'), // Sunday, week 10
    b('d01-05', '2026-03-01T05:00:00Z'), // Sunday, week 9
  ];

  it.each([
    ['keepLast 3', { keepLast: 3 }, ['d01-05', 'd08-05', 'd09-05', 'd12-23', 'd14-02']],
    [
      'keepDaily 3 (days with a backup, not calendar days)',
      { keepDaily: 3 },
      ['d01-05', 'd08-05', 'd09-05', 'd14-02', 'd15-08'],
    ],
    ['keepWeekly 2', { keepWeekly: 2 }, ['d01-05', 'd09-05', 'd12-23', 'd14-02', 'd14-20', 'd15-08']],
    [
      'keepLast 1 + keepDaily 2 + keepWeekly 3',
      { keepLast: 1, keepDaily: 2, keepWeekly: 3 },
      ['d09-05', 'd12-23', 'd14-02', 'd15-08'],
    ],
    [
      'a rule of zero keeps only the newest verified',
      { keepLast: 0 },
      hourly
        .slice(1)
        .map((x) => x.id)
        .reverse(),
    ],
  ])('%s', (_name, policy, expected) => {
    expect(
      selectBackupsToDelete(hourly, policy, now),
      `expected exactly these deletions, oldest first`,
    ).toEqual(expected);
  });

  it('deletes nothing when the policy has no rule', () => {
    expect(selectBackupsToDelete(hourly, {}, now)).toEqual([]);
  });

  it('never deletes the newest verified backup, even when newer unverified ones fill keepLast', () => {
    const backups = [
      b('new-bad-1', '2026-03-15T10:00:00Z', false),
      b('new-bad-2', '2026-03-15T09:00:00Z', false),
      b('good', '2026-03-14T10:00:00Z', true),
      b('older-good', '2026-03-13T10:00:00Z', true),
    ];
    expect(selectBackupsToDelete(backups, { keepLast: 2 }, now)).toEqual(['older-good']);
  });

  it('protects the newest verified backup a restore would pick, not a newer safety backup', () => {
    const backups: RetentionCandidate[] = [
      { ...b('plan-safety', '2026-03-15T10:00:00Z'), purpose: 'safety' },
      { ...b('good', '2026-03-14T10:00:00Z'), purpose: 'scheduled' },
      b('older', '2026-03-13T10:00:00Z'),
    ];
    // keepLast 1 keeps the safety backup; the rule for the newest verified keeps `good`, not the safety one.
    expect(selectBackupsToDelete(backups, { keepLast: 1 }, now)).toEqual(['older']);
  });

  it('keeps backups with an unreadable time or a time after now', () => {
    const backups = [
      b('future', '2026-03-16T00:00:00Z'),
      b('garbage', 'not a date'),
      b('old', '2026-01-01T00:00:00Z'),
      b('newest', '2026-03-15T00:00:00Z'),
    ];
    expect(selectBackupsToDelete(backups, { keepLast: 1 }, now)).toEqual(['old']);
  });

  it('does not depend on the order of the input', () => {
    const shuffled = [...hourly].reverse();
    expect(selectBackupsToDelete(shuffled, { keepDaily: 2 }, now)).toEqual(
      selectBackupsToDelete(hourly, { keepDaily: 2 }, now),
    );
  });

  it.each([{ keepLast: -1 }, { keepDaily: 1.5 }, { keepWeekly: Number.NaN }])('rejects %j', (policy) => {
    expect(() => selectBackupsToDelete(hourly, policy, now)).toThrow(RangeError);
  });
});

describe('isScheduleBackupId', () => {
  it.each([
    ['shop-backup-29412360', 'shop', true],
    ['shop-backup-now-0a1b2c3d', 'shop', true],
    ['shop-backup-backup-29412360', 'shop', false],
    ['shop-backup-backup-29412360', 'shop-backup', true],
    ['shop-backup-now-0a1b2c3d', 'shop-backup', false],
    ['shop2-backup-29412360', 'shop', false],
    ['shop-backup-', 'shop', false],
    ['shop-backup-now-xyz', 'shop', false],
    ['undo-safety', 'shop', false],
    ['manual-1', 'shop', false],
  ])('%s belongs to schedule %s: %s', (id, schedule, expected) => {
    expect(isScheduleBackupId(id, schedule)).toBe(expected);
  });
});

describe('isOwnBackup', () => {
  const self = { uid: 'uid-a', name: 'a' };
  it.each([
    ['its own origin', { id: 'x', origin: { schedule: { name: 'a', uid: 'uid-a' } } }, true],
    ['another schedule', { id: 'x', origin: { schedule: { name: 'b', uid: 'uid-b' } } }, false],
    // A schedule deleted and applied again (GitOps, helm reinstall) has a new UID but the same name and
    // claim: the backups its earlier incarnation wrote are still its to prune.
    [
      'an earlier schedule of the same name (another UID)',
      { id: 'a-backup-1', origin: { schedule: { name: 'a', uid: 'uid-old' } } },
      true,
    ],
    [
      'another schedule that once had our UID',
      { id: 'x', origin: { schedule: { name: 'b', uid: 'uid-a' } } },
      false,
    ],
    ['an origin without a schedule', { id: 'a-backup-1', origin: {} }, false],
    ['no origin and its own Job name', { id: 'a-backup-29412360' }, true],
    ['no origin and its own emergency Job name', { id: 'a-backup-now-0a1b2c3d' }, true],
    ["no origin and another schedule's Job name", { id: 'b-backup-29412360' }, false],
    ['no origin and a plan safety backup', { id: 'undo-safety' }, false],
  ])('%s: %s', (_what, backup, expected) => {
    expect(isOwnBackup(backup, self)).toBe(expected);
  });

  it('compares UIDs when the runner knows only its UID', () => {
    expect(isOwnBackup({ id: 'x', origin: { schedule: { name: 'a', uid: 'u' } } }, { uid: 'u' })).toBe(true);
    expect(isOwnBackup({ id: 'x', origin: { schedule: { name: 'a', uid: 'v' } } }, { uid: 'u' })).toBe(false);
  });

  it('compares names when the runner knows only its name', () => {
    expect(isOwnBackup({ id: 'x', origin: { schedule: { name: 'a', uid: 'u' } } }, { name: 'a' })).toBe(true);
    expect(isOwnBackup({ id: 'x', origin: { schedule: { name: 'b', uid: 'u' } } }, { name: 'a' })).toBe(
      false,
    );
  });

  it('treats every backup as a candidate without an identity (a prune run by hand)', () => {
    expect(isOwnBackup({ id: 'b-backup-1', origin: { schedule: { name: 'b', uid: 'u' } } }, undefined)).toBe(
      true,
    );
  });

  it('reads the identity from NXT_SCHEDULE_UID and NXT_SCHEDULE_NAME', () => {
    expect(scheduleIdentityFromEnv({})).toBeUndefined();
    expect(scheduleIdentityFromEnv({ NXT_SCHEDULE_UID: 'u', NXT_SCHEDULE_NAME: 'a' })).toEqual({
      uid: 'u',
      name: 'a',
    });
  });
});
