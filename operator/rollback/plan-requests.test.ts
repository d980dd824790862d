import { describe, expect, it } from 'vitest';
import { Annotation } from '../api/v1alpha1/common.js';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { planEpisode } from '../notify/due.js';
import { applyRearm, rearmRequest, reviewOf, reviewRequest } from './plan-requests.js';

const now = new Date('2026-11-29T10:00:00.000Z');
const plan = (annotations: Record<string, string>, mode = 'auto') =>
  ({ metadata: { name: 'p', namespace: 'n', annotations }, spec: { trigger: { mode } } }) as any;

describe('rearm', () => {
  it('acts on an Expired or Vetoed automatic plan, once per value', () => {
    const p = plan({ [Annotation.Rearm]: '1' });
    expect(rearmRequest(p, { phase: 'Expired' })).toBe('1');
    expect(rearmRequest(p, { phase: 'Vetoed' })).toBe('1');
    expect(
      rearmRequest(p, { phase: 'Expired', lastRearm: { rearmedAt: 'x', annotationValue: '1' } }),
    ).toBeUndefined();
  });

  it('never re-arms a plan that ran, is still armed, or is manual', () => {
    const p = plan({ [Annotation.Rearm]: '1' });
    for (const phase of ['Succeeded', 'Failed', 'Armed', 'AwaitingApproval', 'Running'] as const)
      expect(rearmRequest(p, { phase }), phase).toBeUndefined();
    expect(rearmRequest(plan({ [Annotation.Rearm]: '1' }, 'manual'), { phase: 'Expired' })).toBeUndefined();
  });

  it('clears the trigger history and starts the window at the rearm', () => {
    const status: RollbackPlanStatus = {
      phase: 'Vetoed',
      armed: {
        since: '2026-11-29T09:00:00Z',
        until: '2026-11-29T09:10:00Z',
        revisions: [{ deployment: 'a', revision: 2 }],
      },
      trigger: { firedAt: '2026-11-29T09:05:00Z', condition: 'c', type: 'HTTPCheck' },
      veto: { vetoedBy: 'bob', vetoedAt: '2026-11-29T09:05:01Z' },
      triggerConditions: [{ name: 'c', type: 'HTTPCheck', state: 'Firing' }],
      conditions: [
        { type: 'Triggered', status: 'True', reason: 'HTTPCheck', message: '', lastTransitionTime: 'x' },
        { type: 'Ready', status: 'True', reason: 'Vetoed', message: '', lastTransitionTime: 'x' },
      ],
    };
    expect(applyRearm(plan({ [Annotation.Rearm]: 'again' }), status, 'again', now, 600_000)).toBeUndefined();
    expect(status).toMatchObject({
      phase: 'Armed',
      armed: {
        since: now.toISOString(),
        until: '2026-11-29T10:10:00.000Z',
        revisions: [{ deployment: 'a', revision: 2 }],
      },
      lastRearm: { rearmedAt: now.toISOString(), annotationValue: 'again' },
    });
    expect(status.trigger).toBeUndefined();
    expect(status.veto).toBeUndefined();
    expect(status.triggerConditions).toBeUndefined();
    expect(status.conditions!.map((c) => c.type)).toEqual(['Ready']);
  });

  it('refuses while the veto annotation is still set (it would veto again at once), recording the value', () => {
    const status: RollbackPlanStatus = { phase: 'Vetoed' };
    const p = plan({ [Annotation.Rearm]: '2', [Annotation.VetoedBy]: 'bob' });
    expect(applyRearm(p, status, '2', now, undefined)).toBe(Annotation.VetoedBy);
    expect(status.phase).toBe('Vetoed');
    expect(status.lastRearmRefused?.annotationValue).toBe('2');
    // Acts once: the same value does not ask again.
    expect(rearmRequest(p, status)).toBeUndefined();
  });

  it('a refused rearm starts no episode: the notifications of the last one keep their ids (no re-send)', () => {
    const earlier = { rearmedAt: '2026-11-29T08:00:00Z', annotationValue: '1' };
    const status: RollbackPlanStatus = { phase: 'Vetoed', lastRearm: { ...earlier } };
    const before = planEpisode(status);
    expect(applyRearm(plan({ [Annotation.VetoedBy]: 'bob' }), status, '2', now, undefined)).toBe(
      Annotation.VetoedBy,
    );
    expect(planEpisode(status)).toBe(before);
    expect(status.lastRearm).toEqual(earlier);
  });

  it('refuses while an approval is still set: an approval of an earlier firing must not run the next one', () => {
    const status: RollbackPlanStatus = {
      phase: 'Expired',
      approval: { approvedBy: 'alice', approvedAt: '2026-11-29T09:00:00Z' },
    };
    const p = plan({ [Annotation.Rearm]: '3', [Annotation.ApprovedBy]: 'alice' });
    expect(applyRearm(p, status, '3', now, undefined)).toBe(Annotation.ApprovedBy);
    expect(status.phase).toBe('Expired');
    expect(status.lastRearmRefused?.annotationValue).toBe('3');
    // Once removed, a new value rearms.
    expect(applyRearm(plan({ [Annotation.Rearm]: '4' }), status, '4', now, undefined)).toBeUndefined();
    expect(status.phase).toBe('Armed');
  });

  it('bounds a long value and still tells two long values apart', () => {
    const long = 'x'.repeat(400);
    const status: RollbackPlanStatus = { phase: 'Expired' };
    applyRearm(plan({}), status, long, now, undefined);
    expect(status.lastRearm!.annotationValue.length).toBeLessThanOrEqual(253);
    status.phase = 'Expired';
    expect(rearmRequest(plan({ [Annotation.Rearm]: long }), status)).toBeUndefined();
    expect(rearmRequest(plan({ [Annotation.Rearm]: long + 'y' }), status)).toBe(long + 'y');
  });
});

describe('unnecessary', () => {
  it('is recorded once, on a plan that ran to the end', () => {
    const p = plan({ [Annotation.Unnecessary]: 'flaky probe' });
    expect(reviewRequest(p, { phase: 'Succeeded', startedAt: 'x' })).toBe('flaky probe');
    expect(reviewRequest(p, { phase: 'Failed', startedAt: 'x' })).toBe('flaky probe');
    expect(reviewRequest(p, { phase: 'Expired' })).toBeUndefined();
    expect(reviewRequest(p, { phase: 'Running', startedAt: 'x' })).toBeUndefined();
    expect(
      reviewRequest(p, { phase: 'Succeeded', startedAt: 'x', review: { unnecessary: true, markedAt: 'x' } }),
    ).toBeUndefined();
    expect(reviewOf('y'.repeat(3000), now).reason!.length).toBeLessThanOrEqual(1024);
    expect(reviewOf('  ', now)).toEqual({ unnecessary: true, markedAt: now.toISOString() });
  });
});
