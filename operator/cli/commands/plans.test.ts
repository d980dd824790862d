import { describe, expect, it } from 'vitest';
import { Annotation } from '../../api/v1alpha1/common.js';
import type { PlanObject } from '../plan-view.js';
import { decidedByOther, decisionHeld, decisionPatch, decisionPending } from './plans.js';

const plan = (annotations: Record<string, string>) =>
  ({
    metadata: { name: 'p', namespace: 'shop', annotations },
    spec: { scope: 'app' },
  }) as unknown as PlanObject;

describe('approve and veto', () => {
  it('exit 0 after --wait only for the outcome asked: approve → Running/Succeeded, veto → Vetoed', () => {
    for (const phase of ['Running', 'Succeeded']) expect(decisionHeld('approve', phase), phase).toBe(true);
    for (const phase of ['Vetoed', 'Failed', 'Expired'])
      expect(decisionHeld('approve', phase), `approve then ${phase}`).toBe(false);
    expect(decisionHeld('veto', 'Vetoed')).toBe(true);
    for (const phase of ['Running', 'Succeeded', 'Failed'])
      expect(decisionHeld('veto', phase), `veto then ${phase}: the plan ran anyway`).toBe(false);
  });

  it('--wait goes on while the decision has not taken effect', () => {
    expect(decisionPending('approve', 'AwaitingApproval')).toBe(true);
    expect(decisionPending('veto', 'Armed')).toBe(true);
    expect(decisionPending('approve', 'Running')).toBe(false);
    expect(decisionPending('veto', 'Vetoed')).toBe(false);
  });

  it("names who else decided (so approve refuses to overwrite it), not the user's own earlier decision", () => {
    expect(decidedByOther('approve', plan({ [Annotation.ApprovedBy]: 'alice' }), 'bob')).toBe('alice');
    expect(decidedByOther('approve', plan({ [Annotation.ApprovedBy]: 'bob' }), 'bob')).toBeUndefined();
    expect(decidedByOther('veto', plan({ [Annotation.ApprovedBy]: 'alice' }), 'bob')).toBeUndefined();
    expect(decidedByOther('veto', plan({ [Annotation.VetoedBy]: 'carol' }), 'bob')).toBe('carol');
  });

  it('sends the resourceVersion it decided on, so a concurrent change is a conflict (409)', () => {
    expect(decisionPatch('approve', 'bob', 'ok', '123')).toEqual({
      metadata: {
        resourceVersion: '123',
        annotations: { [Annotation.ApprovedBy]: 'bob', [Annotation.ApprovalReason]: 'ok' },
      },
    });
  });

  it("removes the reason when none is given, so an earlier decider's reason is not recorded as this one's", () => {
    expect(decisionPatch('veto', 'bob', undefined, '7').metadata.annotations).toEqual({
      [Annotation.VetoedBy]: 'bob',
      [Annotation.VetoReason]: null,
    });
  });
});
