import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import type { RawDeployment, RawReplicaSet } from './deployment-undo.js';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import type { TriggerContext } from './auto-trigger.js';
import { detectRevert, reconcileRevertArmed, rolledBackByPlan } from './revert-trigger.js';

const dep = (revision: number): RawDeployment => ({
  metadata: {
    name: 'web',
    uid: 'dep-uid',
    annotations: { 'deployment.kubernetes.io/revision': String(revision) },
  },
  spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: {}, spec: { containers: [] } } },
});
const rs = (name: string, revision: number, history?: string, owner = 'dep-uid'): RawReplicaSet => ({
  metadata: {
    name,
    annotations: {
      'deployment.kubernetes.io/revision': String(revision),
      ...(history !== undefined ? { 'deployment.kubernetes.io/revision-history': history } : {}),
    },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: owner, controller: true },
    ],
  },
});

describe('detectRevert', () => {
  it('history 1,2,3 at revision 3, revert to 2: replicaset "2" re-used as 4 fires (research §3)', () => {
    const seen = detectRevert(dep(4), [rs('web-a', 1), rs('web-b', 4, '2'), rs('web-c', 3)], 3);
    expect(seen).toEqual({
      kind: 'reverted',
      fromRevision: 3,
      reusedRevision: 2,
      revision: 4,
      replicaSet: 'web-b',
    });
  });

  it('a plain new rollout (new template, new replicaset without history) is not a revert', () => {
    expect(detectRevert(dep(4), [rs('web-a', 1), rs('web-b', 2), rs('web-c', 3), rs('web-d', 4)], 3)).toEqual(
      {
        kind: 'none',
        revision: 4,
      },
    );
  });

  it('a revert that happened before arming (revision at or below the baseline) does not fire', () => {
    // Reverted 2 -> 4 before the plan was armed on revision 4.
    expect(detectRevert(dep(4), [rs('web-a', 1), rs('web-b', 4, '2'), rs('web-c', 3)], 4).kind).toBe('none');
    // ...and a later new rollout does not make that old revert count either.
    expect(
      detectRevert(dep(5), [rs('web-a', 1), rs('web-b', 4, '2'), rs('web-c', 3), rs('web-d', 5)], 4).kind,
    ).toBe('none');
  });

  it('a replicaset re-used several times: the last history entry is the revision it came back from', () => {
    const seen = detectRevert(dep(7), [rs('web-a', 7, '1,3,5'), rs('web-b', 6)], 6);
    expect(seen).toMatchObject({ kind: 'reverted', reusedRevision: 5, revision: 7, fromRevision: 6 });
  });

  it('only the current replicaset counts: a revert a new rollout already replaced does not fire', () => {
    // Failed before the fix (it fired on web-b, revision 4, though the Deployment is on web-d, revision 5).
    const seen = detectRevert(
      dep(5),
      [rs('web-a', 1), rs('web-b', 4, '2'), rs('web-c', 3), rs('web-d', 5)],
      3,
    );
    expect(seen).toEqual({ kind: 'none', revision: 5 });
  });

  it('an older re-used replicaset does not fire again after a rearm (a later new rollout moved on)', () => {
    // Fired on web-b (4); rearmed with the baseline moved to 4; then a new rollout (5) and its revert to 3 (6).
    expect(detectRevert(dep(6), [rs('web-b', 4, '2'), rs('web-c', 6, '3'), rs('web-d', 5)], 4)).toMatchObject(
      { kind: 'reverted', replicaSet: 'web-c', revision: 6 },
    );
    expect(detectRevert(dep(7), [rs('web-b', 4, '2'), rs('web-d', 5), rs('web-e', 7)], 3).kind).toBe('none');
  });

  it('ignores replicasets the Deployment does not control and unparsable annotations', () => {
    expect(detectRevert(dep(4), [rs('other', 4, '2', 'someone-else'), rs('web-c', 3)], 3).kind).toBe('none');
    expect(detectRevert(dep(4), [rs('web-b', 4, '2,x'), rs('web-c', 3)], 3).kind).toBe('none');
    expect(detectRevert(dep(4), [rs('web-b', 4, ''), rs('web-c', 3)], 3).kind).toBe('none');
  });
});

describe('rolledBackByPlan', () => {
  const plan = (name: string, uid: string, startedAt: string, replicaSet: string): KubeObject => ({
    metadata: { name, uid },
    status: { startedAt, deployments: [{ name: 'web', replicaSet, result: 'RolledBack' }] },
  });
  it('names another plan that put this replicaset back after the plan was armed', () => {
    const plans = [plan('undo', 'u1', '2026-01-01T10:05:00Z', 'web-b')];
    expect(rolledBackByPlan(plans, 'self', 'web', 'web-b', '2026-01-01T10:00:00Z')).toBe('undo');
    expect(rolledBackByPlan(plans, 'self', 'web', 'web-x', '2026-01-01T10:00:00Z')).toBeUndefined();
    // before arming, and the Deployment moved on since (another generation): a later GitOps revert to the same
    // replicaset is GitOps's
    expect(rolledBackByPlan(plans, 'self', 'web', 'web-b', '2026-01-01T10:10:00Z')).toBeUndefined();
    // itself
    expect(rolledBackByPlan(plans, 'u1', 'web', 'web-b', '2026-01-01T10:00:00Z')).toBeUndefined();
  });

  it('also names a plan still rolling back (Pending, no result yet) and one that started before arming', () => {
    // Both failed before the fix (only RolledBack entries of plans started after arming counted).
    const running = (result?: string, phase = 'Running'): KubeObject => ({
      metadata: { name: 'undo', uid: 'u1' },
      status: {
        phase,
        startedAt: '2026-01-01T09:00:00Z',
        deployments: [{ name: 'web', replicaSet: 'web-b', ...(result ? { result } : {}) }],
      },
    });
    const armed = '2026-01-01T10:00:00Z';
    expect(rolledBackByPlan([running('Pending')], 'self', 'web', 'web-b', armed)).toBe('undo');
    expect(rolledBackByPlan([running()], 'self', 'web', 'web-b', armed)).toBe('undo');
    expect(rolledBackByPlan([running('Failed')], 'self', 'web', 'web-b', armed)).toBeUndefined();
    // A plan that failed before it patched keeps its Pending entry: not in flight, it must not hide a revert.
    expect(rolledBackByPlan([running('Pending', 'Failed')], 'self', 'web', 'web-b', armed)).toBeUndefined();
    expect(rolledBackByPlan([running(undefined, 'Failed')], 'self', 'web', 'web-b', armed)).toBeUndefined();
    const before: KubeObject = {
      metadata: { name: 'early', uid: 'u2' },
      status: {
        startedAt: '2026-01-01T09:00:00Z',
        deployments: [{ name: 'web', replicaSet: 'web-b', result: 'RolledBack', generation: 7 }],
      },
    };
    expect(rolledBackByPlan([before], 'self', 'web', 'web-b', armed, 7)).toBe('early');
    expect(rolledBackByPlan([before], 'self', 'web', 'web-b', armed, 9)).toBeUndefined();
  });
});

describe('reconcileRevertArmed', () => {
  it('moves the baseline to the revision of the revert it fired on (a rearm does not refire on it)', async () => {
    // Failed before the fix: status.armed.revisions kept web at 3, so after a rearm the same web-b fired again.
    const deployment = { ...dep(4), spec: { ...dep(4).spec } };
    const t = {
      plan: { metadata: { name: 'p', uid: 'self' } },
      namespace: 'ns',
      spec: withRollbackPlanDefaults({
        scope: 'app',
        targets: { deployments: [{ name: 'web' }] },
        trigger: { mode: 'onRevert' },
      } as unknown as RollbackPlanSpec),
      status: {
        phase: 'Armed',
        armed: { since: '2026-01-01T00:00:00Z', revisions: [{ deployment: 'web', revision: 3 }] },
      },
      now: () => new Date('2026-01-01T01:00:00Z'),
      cond: () => {},
      event: () => {},
      write: async () => {},
      deployment: () => deployment,
      client: {
        get: async () => deployment,
        list: async () => ({ items: [rs('web-a', 1), rs('web-b', 4, '2'), rs('web-c', 3)] }),
      },
    } as unknown as TriggerContext;
    expect(await reconcileRevertArmed(t, () => [])).toEqual({ kind: 'fired' });
    expect(t.status.armed?.revisions).toEqual([{ deployment: 'web', revision: 4 }]);
  });
});
