import { describe, expect, it } from 'vitest';
import { ownersOfTargets, revertNeeded, suspendedOwners, type OwnerEntry } from './suspend.js';

const flux = (name: string, ns = 'flux-system') => ({
  labels: { 'kustomize.toolkit.fluxcd.io/name': name, 'kustomize.toolkit.fluxcd.io/namespace': ns },
});

describe('ownersOfTargets', () => {
  it('groups the targets by owner and fills in the namespace an owner reference leaves out', () => {
    const { owners, weak } = ownersOfTargets(
      [
        { name: 'web', metadata: { name: 'web', ...flux('apps') } },
        { name: 'api', metadata: { name: 'api', ...flux('apps') } },
        {
          name: 'shop',
          metadata: {
            name: 'shop',
            namespace: 'shop',
            annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:shop/shop' },
          },
        },
        { name: 'plain', metadata: { name: 'plain' } },
      ],
      'shop',
      'argocd',
    );
    expect(weak).toEqual([]);
    expect(owners).toEqual([
      {
        tool: 'flux',
        kind: 'Kustomization',
        name: 'apps',
        namespace: 'flux-system',
        deployments: ['web', 'api'],
        state: 'Pending',
      },
      {
        tool: 'argocd',
        kind: 'Application',
        name: 'shop',
        namespace: 'argocd',
        deployments: ['shop'],
        state: 'Pending',
      },
    ]);
  });

  it('never acts on weak evidence (the instance label alone, also set by Helm): it is only noted', () => {
    const { owners, weak } = ownersOfTargets(
      [{ name: 'web', metadata: { name: 'web', labels: { 'app.kubernetes.io/instance': 'web' } } }],
      'shop',
      'argocd',
    );
    expect(owners).toEqual([]);
    expect(weak).toEqual([
      { deployment: 'web', note: expect.stringMatching(/may be managed by Argo CD Application web/) },
    ]);
  });
});

describe('revertNeeded', () => {
  it('names the revision and images to go back to in Git', () => {
    const histories = new Map([
      [
        'web',
        {
          deployment: { metadata: { name: 'web' } },
          replicaSets: [
            {
              metadata: { name: 'web-1' },
              spec: { template: { spec: { containers: [{ name: 'a', image: 'nginx:1.25' }] } } },
            },
          ],
        },
      ],
    ]) as never;
    const status = { deployments: [{ name: 'web', toRevision: 1, replicaSet: 'web-1' }] };
    const owner = {
      tool: 'flux',
      kind: 'Kustomization',
      name: 'apps',
      namespace: 'f',
      deployments: ['web'],
      state: 'Pending',
    } as OwnerEntry;
    expect(revertNeeded({ status, histories }, owner)).toBe(
      'revert the release in Git (Deployment web back to the template of revision 1 (image nginx:1.25))',
    );
  });
});

describe('suspendedOwners', () => {
  it('counts owners this plan paused (or is pausing), not those it found paused or resumed', () => {
    const o = (state: string) => ({ state }) as never;
    expect(
      suspendedOwners({
        gitops: {
          policy: 'suspend',
          owners: [o('Suspended'), o('Suspending'), o('AlreadySuspended'), o('Resumed')],
        },
      }),
    ).toHaveLength(2);
  });
});
