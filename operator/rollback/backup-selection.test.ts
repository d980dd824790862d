import { describe, expect, it } from 'vitest';
import { selectBackup } from './backup-selection.js';

const status = {
  backups: [
    { id: 'b3', finishedAt: '2026-11-28T12:00:00Z', verified: false },
    { id: 'b2', finishedAt: '2026-11-28T08:00:00Z', verified: true },
    { id: 'b1', finishedAt: '2026-11-28T04:00:00Z', verified: true },
  ],
};

describe('selectBackup', () => {
  it.each([
    ['newest verified', { latestVerified: true as const }, 'b2'],
    ['by id', { id: 'b1' }, 'b1'],
    ['before a time', { before: '2026-11-28T07:00:00Z' }, 'b1'],
    ['before a time, exact finish excluded', { before: '2026-11-28T08:00:00Z' }, 'b1'],
  ])('%s', (_n, sel, id) => {
    const r = selectBackup(status, sel);
    expect('backup' in r && r.backup.id).toBe(id);
  });

  it.each([
    ['an unknown id', { id: 'nope' }, 'BackupNotFound', /"nope" is not among.*b3, b2, b1/],
    ['an unverified id', { id: 'b3' }, 'BackupNotVerified', /did not pass verification/],
    ['nothing before', { before: '2026-11-28T01:00:00Z' }, 'BackupNotFound', /before 2026/],
  ])('refuses %s', (_n, sel, reason, msg) => {
    const r = selectBackup(status, sel);
    expect(r).toMatchObject({ reason, message: expect.stringMatching(msg) });
  });

  it('refuses when there is no verified backup', () => {
    expect(selectBackup({ backups: [] }, { latestVerified: true })).toMatchObject({
      reason: 'BackupNotFound',
    });
    expect(selectBackup(undefined, { latestVerified: true })).toMatchObject({ reason: 'BackupNotFound' });
  });
});
