import { describe, expect, it } from 'vitest';
import { Annotation } from '../../api/v1alpha1/common.js';
import type { PlanObject } from '../plan-view.js';
import {
  decide,
  decidedByOther,
  DECISION_ATTEMPTS,
  decisionHeld,
  decisionPatch,
  decisionPending,
} from './plans.js';

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

describe('approve when the plan changes under it', () => {
  const conflict = Object.assign(new Error('the object has been modified'), { code: 409 });
  /** A client whose plan gets a new resourceVersion (an operator status write) before each of `writes` patches. */
  const fakeCtx = (writes: number, annotations: Record<string, string> = {}) => {
    let rv = 1;
    let moved = 0;
    const patches: unknown[] = [];
    const current = () =>
      ({
        metadata: { name: 'p', namespace: 'shop', resourceVersion: String(rv), annotations },
        spec: { scope: 'app', severity: 'medium' },
        status: { phase: 'AwaitingApproval' },
      }) as unknown as PlanObject;
    const ctx = {
      namespace: 'shop',
      username: async () => 'bob',
      out: { result: () => undefined, line: () => undefined, warn: () => undefined },
      client: {
        get: async () => current(),
        patch: async (_ref: unknown, _type: string, body: { metadata: { resourceVersion?: string } }) => {
          patches.push(body);
          if (moved < writes) {
            moved++;
            rv++;
          }
          if (body.metadata.resourceVersion !== String(rv)) throw conflict;
          return current();
        },
      },
    };
    return { ctx: ctx as unknown as Parameters<typeof decide>[0], patches };
  };

  it('re-reads and decides again after a status write moved the resourceVersion (was: exit 1 "changed while you decided")', async () => {
    const { ctx, patches } = fakeCtx(2);
    await expect(decide(ctx, 'approve', 'p', { timeout: '5m' })).resolves.toBe(0);
    expect(patches).toHaveLength(3);
  });

  it('gives up after a bounded number of tries when the plan keeps changing', async () => {
    const { ctx, patches } = fakeCtx(100);
    await expect(decide(ctx, 'approve', 'p', { timeout: '5m' })).rejects.toThrow(/kept changing/);
    expect(patches).toHaveLength(DECISION_ATTEMPTS);
  });

  it("a re-read that finds someone else's decision refuses instead of overwriting it", async () => {
    const { ctx } = fakeCtx(0, { [Annotation.ApprovedBy]: 'alice' });
    await expect(decide(ctx, 'approve', 'p', { timeout: '5m' })).rejects.toThrow(/already approved by alice/);
  });
});
