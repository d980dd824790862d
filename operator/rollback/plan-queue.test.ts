import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import { planPriority, PlansByDeployment } from './plan-queue.js';

const plan = (name: string, extra: Partial<KubeObject> = {}, namespace = 'shop'): KubeObject => ({
  metadata: { name, namespace, generation: 1 },
  spec: { scope: 'app', targets: { deployments: [{ name: 'web' }] } },
  ...extra,
});

describe('planPriority', () => {
  it('is high for a new plan and a plan mid-step, low while it only waits for its rollout or is finished', () => {
    expect(planPriority(plan('new'))).toBe('high');
    expect(planPriority(undefined), 'gone from the cache: its reconcile cleans up').toBe('high');
    const running = (steps: object[]) =>
      plan('p', { status: { phase: 'Running', observedGeneration: 1, steps } });
    expect(planPriority(running([{ name: 'AppRollback', result: 'Running' }]))).toBe('high');
    expect(
      planPriority(
        running([
          { name: 'AppRollback', result: 'Succeeded' },
          { name: 'PostValidation', result: 'Running' },
        ]),
      ),
    ).toBe('low');
    expect(planPriority(plan('done', { status: { phase: 'Succeeded', observedGeneration: 1 } }))).toBe('low');
    expect(planPriority(plan('armed', { status: { phase: 'Armed', observedGeneration: 1 } }))).toBe('high');
  });

  it('is high for a finished plan whose spec changed (new generation)', () => {
    const p = plan('edited', { status: { phase: 'Succeeded', observedGeneration: 1 } });
    p.metadata.generation = 2;
    expect(planPriority(p)).toBe('high');
  });
});

describe('planPriority of finished plans with work left', () => {
  const done = (extra: Partial<KubeObject> = {}, status: object = {}) =>
    plan('done', { ...extra, status: { phase: 'Succeeded', observedGeneration: 1, ...status } });
  it('is high while a GitOps owner is held suspended, on a rearm or resume request, and while deleted', () => {
    expect(planPriority(done({}, { gitops: { owners: [{ state: 'Suspended' }] } }))).toBe('high');
    expect(planPriority(done({}, { gitops: { owners: [{ state: 'Resumed' }] } }))).toBe('low');
    const annotated = (key: string) =>
      done({ metadata: { name: 'done', namespace: 'shop', generation: 1, annotations: { [key]: 'v1' } } });
    expect(planPriority(annotated('rollback.nxtnewday.io/gitops-resume'))).toBe('high');
    const handledResume = annotated('rollback.nxtnewday.io/gitops-resume');
    (handledResume.status as { gitops?: object }).gitops = { lastResumeRequest: 'v1' };
    expect(planPriority(handledResume), 'a request handled long ago').toBe('low');
    expect(planPriority(annotated('rollback.nxtnewday.io/rearm'))).toBe('low');
    expect(
      planPriority(
        done({
          metadata: {
            name: 'done',
            namespace: 'shop',
            generation: 1,
            deletionTimestamp: '2026-11-29T00:00:00Z',
          },
        }),
      ),
    ).toBe('high');
  });
});

describe('PlansByDeployment', () => {
  it('finds the non-terminal plans that target or watch a Deployment, per namespace', () => {
    const idx = new PlansByDeployment();
    idx.upsert(plan('a'));
    idx.upsert(
      plan('b', {
        spec: { trigger: { conditions: [{ type: 'DeploymentUnavailable', deployment: 'web' }] } },
      }),
    );
    idx.upsert(plan('c', { spec: { targets: { deployments: [{ name: 'api' }] } } }));
    idx.upsert(plan('a', {}, 'other'));
    expect(idx.plansFor('shop', 'web').sort()).toEqual(['shop/a', 'shop/b']);
    expect(idx.plansFor('shop', 'api')).toEqual(['shop/c']);
    expect(idx.plansFor('other', 'web')).toEqual(['other/a']);
    expect(idx.plansFor('shop', 'nothing')).toEqual([]);
  });

  it('follows updates: a changed target moves the plan, a terminal phase or a delete removes it', () => {
    const idx = new PlansByDeployment();
    idx.upsert(plan('a'));
    idx.upsert(plan('a', { spec: { targets: { deployments: [{ name: 'api' }] } } }));
    expect(idx.plansFor('shop', 'web')).toEqual([]);
    expect(idx.plansFor('shop', 'api')).toEqual(['shop/a']);
    idx.upsert(
      plan('a', { spec: { targets: { deployments: [{ name: 'api' }] } }, status: { phase: 'Failed' } }),
    );
    expect(idx.plansFor('shop', 'api')).toEqual([]);
    idx.upsert(plan('b'));
    idx.delete(plan('b'));
    expect(idx.plansFor('shop', 'web')).toEqual([]);
  });

  it('ignores malformed specs (the reconcile reports them)', () => {
    const idx = new PlansByDeployment();
    idx.upsert(plan('x', { spec: { targets: { deployments: 'web' }, trigger: { conditions: [null, 3] } } }));
    expect(idx.plansFor('shop', 'web')).toEqual([]);
  });
});
