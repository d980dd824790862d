import { describe, expect, it } from 'vitest';
import { describeOwner, gitOpsOwner, parseTrackingId, weakOwnerNote } from './ownership.js';

describe('GitOps ownership', () => {
  it('reads Flux kustomize-controller labels', () => {
    const o = gitOpsOwner({
      name: 'checkout',
      namespace: 'shop',
      labels: {
        'kustomize.toolkit.fluxcd.io/name': 'app',
        'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
      },
    });
    expect(o).toMatchObject({ tool: 'flux', kind: 'Kustomization', name: 'app', namespace: 'flux-system' });
    expect(describeOwner(o!)).toBe('Flux Kustomization flux-system/app');
  });

  it('reads Flux helm-controller labels, after kustomize labels', () => {
    const helm = { 'helm.toolkit.fluxcd.io/name': 'shop', 'helm.toolkit.fluxcd.io/namespace': 'shop' };
    expect(gitOpsOwner({ name: 'c', labels: helm })).toMatchObject({ kind: 'HelmRelease', name: 'shop' });
    expect(
      gitOpsOwner({ name: 'c', labels: { ...helm, 'kustomize.toolkit.fluxcd.io/name': 'k' } })?.kind,
    ).toBe('Kustomization');
  });

  it('parses both tracking-id forms, and refuses malformed ones', () => {
    expect(parseTrackingId('shop:apps/Deployment:shop/checkout')).toEqual({
      app: 'shop',
      group: 'apps',
      kind: 'Deployment',
      namespace: 'shop',
      name: 'checkout',
    });
    expect(parseTrackingId('team-a_shop:apps/Deployment:shop/checkout')).toMatchObject({
      app: 'shop',
      appNamespace: 'team-a',
    });
    expect(parseTrackingId('shop:/Service:shop/checkout')).toMatchObject({ group: '', kind: 'Service' });
    expect(parseTrackingId('shop:apps/Deployment')).toBeUndefined();
    expect(parseTrackingId('shop:apps:Deployment:shop/checkout')).toBeUndefined();
    expect(parseTrackingId(':apps/Deployment:shop/checkout')).toBeUndefined();
  });

  it('trusts a tracking id only when it points at the object carrying it', () => {
    const tracked = (v: string) =>
      gitOpsOwner({
        name: 'checkout',
        namespace: 'shop',
        annotations: { 'argocd.argoproj.io/tracking-id': v },
      });
    expect(tracked('team-a_shop:apps/Deployment:shop/checkout')).toMatchObject({
      tool: 'argocd',
      name: 'shop',
      namespace: 'team-a',
    });
    expect(tracked('shop:apps/Deployment:shop/other')).toBeUndefined();
    expect(tracked('shop:apps/StatefulSet:shop/checkout')).toBeUndefined();
  });

  it('reports the instance label as weak evidence only', () => {
    const o = gitOpsOwner({ name: 'c', labels: { 'app.kubernetes.io/instance': 'shop' } });
    expect(o).toMatchObject({ tool: 'argocd', name: 'shop', weak: true });
    expect(describeOwner(o!)).toBe('Argo CD Application shop (probably)');
    expect(gitOpsOwner({ name: 'c', labels: { app: 'x' } })).toBeUndefined();
    expect(weakOwnerNote(o!)).toBe(
      'may be managed by Argo CD Application shop (label app.kubernetes.io/instance, also set by Helm)',
    );
  });

  it('bounds what it copies from a tracking id (the annotation may be ~256 KiB)', () => {
    const o = gitOpsOwner({
      name: 'checkout',
      namespace: 'shop',
      annotations: {
        'argocd.argoproj.io/tracking-id': `${'n'.repeat(1000)}_${'a'.repeat(256 * 1024)}:apps/Deployment:shop/checkout`,
      },
    });
    expect(o!.name).toHaveLength(253);
    expect(o!.name.endsWith('...')).toBe(true);
    expect(o!.namespace).toHaveLength(63);
  });
});
