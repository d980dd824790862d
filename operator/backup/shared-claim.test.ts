import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import {
  claimOf,
  schedulesSharingClaim,
  schedulesToRecheck,
  sharedClaimReport,
  STORAGE_SHARED_CONDITION,
} from './shared-claim.js';

const schedule = (name: string, pvc: Record<string, unknown>, deleting = false): KubeObject =>
  ({
    metadata: { name, namespace: 'shop', ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { storage: { persistentVolumeClaim: pvc } },
  }) as KubeObject;

const all = [
  schedule('a', { claimName: 'backups' }),
  schedule('b', { claimName: 'backups' }),
  schedule('c', { create: { size: '1Gi' } }),
  schedule('d', { claimName: 'c-backups' }),
  schedule('e', { claimName: 'backups' }, true),
  schedule('f', { claimName: 'other' }),
];

describe('claimOf', () => {
  it('is the named claim, or the one the operator creates for the schedule', () => {
    expect(claimOf(all[0]!)).toBe('backups');
    expect(claimOf(all[2]!)).toBe('c-backups');
    expect(claimOf({ metadata: { name: 'x' } } as KubeObject)).toBeUndefined();
  });
});

describe('schedulesSharingClaim', () => {
  it.each([
    ['a', 'backups', ['b']],
    ['b', 'backups', ['a']],
    ['c', 'c-backups', ['d']],
    ['d', 'c-backups', ['c']],
    ['f', 'other', []],
  ])('%s on %s shares with %j (never with one being deleted)', (self, claim, others) => {
    expect(schedulesSharingClaim(self, claim, all)).toEqual(others);
  });
});

describe('sharedClaimReport', () => {
  it('reports an exclusive claim without an event', () => {
    expect(sharedClaimReport('f', 'other', all, undefined)).toEqual({
      condition: {
        type: STORAGE_SHARED_CONDITION,
        status: 'False',
        reason: 'ClaimExclusive',
        message: 'no other BackupSchedule writes to claim other',
      },
    });
  });

  it('names the other schedules and warns once per change', () => {
    const first = sharedClaimReport('a', 'backups', all, undefined);
    expect(first.condition).toMatchObject({ status: 'True', reason: 'ClaimShared' });
    expect(first.condition.message).toMatch(/claim backups is also written by BackupSchedule\(s\) b;/);
    expect(first.event).toEqual(['Warning', 'ClaimShared', first.condition.message]);
    const stored = [{ ...first.condition, lastTransitionTime: '2026-01-01T00:00:00Z' }];
    expect(
      sharedClaimReport('a', 'backups', all, stored).event,
      'expected no repeated event',
    ).toBeUndefined();
    const more = [...all, schedule('g', { claimName: 'backups' })];
    expect(sharedClaimReport('a', 'backups', more, stored).event?.[2]).toMatch(/b, g;/);
  });
});

describe('schedulesToRecheck', () => {
  it("names the schedules on the changed one's claim and those still reporting a shared claim", () => {
    const reporting = {
      ...schedule('a', { claimName: 'backups' }),
      status: { conditions: [{ type: STORAGE_SHARED_CONDITION, status: 'True' }] },
    } as KubeObject;
    // b moved from `backups` to `own`: a still reports sharing with it and must look again.
    const moved = schedule('b', { claimName: 'own' });
    expect(schedulesToRecheck(moved, [reporting, moved, schedule('f', { claimName: 'other' })])).toEqual([
      'a',
    ]);
    expect(schedulesToRecheck(schedule('d', { claimName: 'c-backups' }), all)).toEqual(['c']);
  });
});
