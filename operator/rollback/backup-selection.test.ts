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
    expect(r.backup?.id).toBe(id);
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

describe('selectBackup and safety backups', () => {
  const withSafety = {
    backups: [
      { id: 'undo-safety', finishedAt: '2026-11-28T13:00:00Z', verified: true, purpose: 'safety' as const },
      { id: 'b2', finishedAt: '2026-11-28T08:00:00Z', verified: true, purpose: 'scheduled' as const },
      { id: 'b1', finishedAt: '2026-11-28T04:00:00Z', verified: true },
    ],
  };

  it.each([
    ['latestVerified', { latestVerified: true as const }, 'b2'],
    ['before a time after the safety backup', { before: '2026-11-28T14:00:00Z' }, 'b2'],
    ['the safety backup named by id', { id: 'undo-safety' }, 'undo-safety'],
  ])('%s picks %s', (_n, sel, id) => {
    const r = selectBackup(withSafety, sel);
    expect(r.backup?.id, `expected ${id}`).toBe(id);
  });

  it('says why a schedule with only safety backups has nothing to restore', () => {
    const r = selectBackup({ backups: withSafety.backups.slice(0, 1) }, { latestVerified: true });
    expect(r).toMatchObject({
      reason: 'BackupNotFound',
      message: expect.stringMatching(
        /1 safety backup\(s\) of earlier plans are only restored when named by id/,
      ),
    });
  });
});

describe('selectBackup and a prefix of another cluster (spec.storage.s3.foreignCluster)', () => {
  const s3 = (allow?: 'Restore' | 'TakeOver') => ({
    s3: {
      bucket: 'backups',
      prefix: 'dr/orders',
      ...(allow ? { foreignCluster: { clusterId: 'cluster-a', allow } } : {}),
    },
  });

  it.each(['Restore', 'TakeOver'] as const)(
    'takes an id the schedule has not recorded from the prefix with allow %s',
    (allow) => {
      const r = selectBackup(
        { backups: [] },
        { id: 'orders-20261128', latestVerified: undefined },
        s3(allow),
      );
      expect(r.fromPrefix).toMatchObject({ id: 'orders-20261128', location: 's3://backups/dr/orders' });
      expect(r.fromPrefix?.message).toMatch(
        /taken from the prefix s3:\/\/backups\/dr\/orders.*cluster-a, allow/,
      );
    },
  );

  it('still prefers the recorded backup, and still refuses a recorded unverified one', () => {
    expect(selectBackup(status, { id: 'b1' }, s3('Restore')).backup?.id).toBe('b1');
    expect(selectBackup(status, { id: 'b3' }, s3('Restore'))).toMatchObject({ reason: 'BackupNotVerified' });
  });

  it('never selects from the prefix without foreignCluster, and says how to', () => {
    const r = selectBackup({ backups: [] }, { id: 'orders-20261128' }, s3());
    expect(r).toMatchObject({ reason: 'BackupNotFound' });
    expect(r.fromPrefix).toBeUndefined();
    expect('message' in r && r.message).toMatch(
      /s3:\/\/backups\/dr\/orders.*spec\.storage\.s3\.foreignCluster \{clusterId: .*allow: Restore\}/,
    );
    const claim = selectBackup({ backups: [] }, { id: 'x' }, { persistentVolumeClaim: { claimName: 'c' } });
    expect('message' in claim && claim.message).not.toMatch(/foreignCluster/);
  });

  it("never reads the prefix when foreignCluster names this cluster's own id", () => {
    const own = selectBackup({ backups: [] }, { id: 'orders-20261128' }, s3('Restore'), 'cluster-a');
    expect(own).toMatchObject({ reason: 'BackupNotFound' });
    expect(own.fromPrefix).toBeUndefined();
    expect('message' in own && own.message).toMatch(/this cluster's own id \(cluster-a\)/);
    const other = selectBackup({ backups: [] }, { id: 'orders-20261128' }, s3('Restore'), 'cluster-b');
    expect(other.fromPrefix?.id).toBe('orders-20261128');
  });

  it('does not resolve latestVerified or before from the prefix: it says to name the id', () => {
    for (const sel of [{ latestVerified: true as const }, { before: '2026-11-28T01:00:00Z' }]) {
      const r = selectBackup({ backups: [] }, sel, s3('Restore'));
      expect(r).toMatchObject({ reason: 'BackupNotFound' });
      expect('message' in r && r.message).toMatch(/named by id \(spec\.targets\.database\.backup\.id\)/);
    }
  });
});
