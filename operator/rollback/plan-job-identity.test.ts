import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import { foreignJobOutcome, judgePlanJob, lostJobOutcome } from './plan-job-identity.js';

const plan = { name: 'undo', uid: 'plan-2' };
const job = (
  owner?: { kind?: string; name?: string; uid: string },
  extra: Partial<KubeObject['metadata']> = {},
) =>
  ({
    metadata: {
      name: 'undo-restore',
      uid: 'job-1',
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'x/v1',
                kind: owner.kind ?? 'RollbackPlan',
                name: owner.name ?? 'undo',
                uid: owner.uid,
                controller: true,
              },
            ],
          }
        : {}),
      ...extra,
    },
  }) as KubeObject;

describe('judgePlanJob', () => {
  it('trusts a Job controlled by this plan, and once recorded only that Job', () => {
    expect(judgePlanJob(job({ uid: 'plan-2' }), plan).kind).toBe('ours');
    expect(judgePlanJob(job({ uid: 'plan-2' }), plan, 'job-1').kind).toBe('ours');
    expect(judgePlanJob(job({ uid: 'plan-2' }), plan, 'job-0')).toMatchObject({
      kind: 'replaced',
      message: expect.stringMatching(/uid job-1, not the uid job-0/),
    });
    expect(judgePlanJob(undefined, plan, 'job-1').kind).toBe('absent');
  });
  it("never trusts an earlier same-named plan's Job, and expects it to go", () => {
    expect(judgePlanJob(job({ uid: 'plan-1' }), plan)).toMatchObject({
      kind: 'foreign',
      goingAway: true,
      message: expect.stringMatching(/earlier RollbackPlan "undo" \(uid plan-1\)/),
    });
  });
  it("treats a Job of another owner, or of none, as someone else's that stays", () => {
    expect(judgePlanJob(job({ kind: 'CronJob', name: 'x', uid: 'c' }), plan)).toMatchObject({
      kind: 'foreign',
      goingAway: false,
    });
    expect(judgePlanJob(job(), plan)).toMatchObject({ kind: 'foreign', goingAway: false });
    expect(judgePlanJob(job(undefined, { deletionTimestamp: '2026-01-01T00:00:00Z' }), plan)).toMatchObject({
      kind: 'foreign',
      goingAway: true,
      message: expect.stringMatching(/being deleted/),
    });
  });
});

describe('foreignJobOutcome', () => {
  const since = '2026-01-01T00:00:00.000Z';
  const at = (s: number) => new Date(Date.parse(since) + s * 1000);
  const going = judgePlanJob(job({ uid: 'plan-1' }), plan) as Extract<
    ReturnType<typeof judgePlanJob>,
    { kind: 'foreign' }
  >;
  it('waits, naming the Job, while it is going away, then fails with JobNameConflict', () => {
    expect(foreignJobOutcome(going, since, at(10), 120_000)).toMatchObject({
      kind: 'wait',
      reason: 'JobNameTaken',
      message: expect.stringMatching(/Job "undo-restore" belongs to an earlier RollbackPlan/),
      requeueAfterMs: 5_000,
    });
    expect(foreignJobOutcome(going, since, at(120), 120_000)).toMatchObject({
      kind: 'failed',
      reason: 'JobNameConflict',
      message: expect.stringMatching(/still there after 120s/),
    });
  });
  it('fails at once for a Job that will not go away by itself', () => {
    const stays = judgePlanJob(job(), plan) as typeof going;
    expect(foreignJobOutcome(stays, since, at(0), 120_000)).toMatchObject({
      kind: 'failed',
      reason: 'JobNameConflict',
    });
  });
});

describe('lostJobOutcome', () => {
  it('fails a lost restore as RestoreJobLost and tells the user to check the database', () => {
    expect(lostJobOutcome('restore', 'undo-restore', 'job-1')).toMatchObject({
      kind: 'failed',
      reason: 'RestoreJobLost',
      message: expect.stringMatching(/may have run partly or fully.*never restores again/),
    });
    expect(lostJobOutcome('verify', 'undo-verify', 'job-1').reason).toBe('VerifyJobLost');
    expect(lostJobOutcome('safety', 'undo-safety', 'job-1').reason).toBe('SafetyBackupJobLost');
  });
});
