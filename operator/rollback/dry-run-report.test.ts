import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeClient } from '../kube/rest.js';
import { buildDryRunReport } from './dry-run-report.js';

const template = (image: string, hash?: string) => ({
  metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } },
  spec: { containers: [{ name: 'web', image }] },
});

/** A client that answers GET deployment and LIST replicasets for Deployments with a two-revision history. */
function cluster(
  meta: Record<string, { labels?: Record<string, string>; annotations?: Record<string, string> }>,
) {
  const dep = (name: string) => ({
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '7', ...meta[name] },
    spec: { selector: { matchLabels: { app: 'web' } }, template: template('web:2') },
  });
  const rs = (name: string, revision: number) => ({
    metadata: {
      name: `${name}-${revision}`,
      creationTimestamp: `2026-01-01T00:00:0${revision}Z`,
      annotations: { 'deployment.kubernetes.io/revision': String(revision) },
      ownerReferences: [{ uid: `uid-${name}`, controller: true }],
    },
    spec: { template: template(`web:${revision}`, `h${revision}`) },
  });
  let current = '';
  return {
    get: async (ref: { plural: string; name: string }) => {
      if (ref.plural !== 'deployments' || !meta[ref.name])
        throw new KubeApiError(404, 'NotFound', 'not found', 'GET', '/x');
      current = ref.name;
      return dep(ref.name);
    },
    list: async () => ({ metadata: {}, items: [rs(current, 1), rs(current, 2)] }),
  } as unknown as KubeClient;
}

const spec = (...names: string[]) =>
  withRollbackPlanDefaults({
    scope: 'app',
    targets: { deployments: names.map((name) => ({ name })) },
  } as RollbackPlanSpec);

describe('buildDryRunReport: GitOps owners', () => {
  it("keeps a Helm release's instance label (weak evidence) out of the summary: a neutral note per Deployment only", async () => {
    const helm = { labels: { 'app.kubernetes.io/instance': 'shop', 'app.kubernetes.io/managed-by': 'Helm' } };
    const r = await buildDryRunReport(cluster({ web: helm }), 'shop', spec('web'), []);
    expect(r.summary).toBe(
      'dry run: would roll back 1 of 1 Deployment(s): deployment "web" from revision 2 to revision 1 (web: web:2 -> web:1)',
    );
    expect(r.summary).not.toMatch(/Argo|GitOps|suspend/);
    const g = (r.deployments[0] as { gitops?: Record<string, unknown> }).gitops;
    expect(g).toMatchObject({ tool: 'argocd', name: 'shop', weak: true });
    expect(g?.note).toBe(
      'may be managed by Argo CD Application shop (label app.kubernetes.io/instance, also set by Helm)',
    );
    expect(g).not.toHaveProperty('warning');
    expect(g).not.toHaveProperty('owner');
  });

  it('names strong owners (Flux labels) in the summary, as before', async () => {
    const flux = {
      labels: {
        'kustomize.toolkit.fluxcd.io/name': 'apps',
        'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
      },
    };
    const r = await buildDryRunReport(cluster({ web: flux }), 'shop', spec('web'), []);
    expect(r.summary).toMatch(
      /; GitOps: web is applied from Git by Flux Kustomization flux-system\/apps \(policy suspend: paused before the rollback, resumed when Git moves on\)$/,
    );
  });

  it('bounds owner values from a huge tracking-id annotation (two such Deployments stay small)', async () => {
    const huge = (name: string) => ({
      annotations: {
        'argocd.argoproj.io/tracking-id': `${'n'.repeat(100_000)}_${'a'.repeat(256 * 1024)}:apps/Deployment:shop/${name}`,
      },
    });
    const r = await buildDryRunReport(cluster({ a: huge('a'), b: huge('b') }), 'shop', spec('a', 'b'), []);
    expect(r.summary.length).toBeLessThanOrEqual(32768); // the Ready condition's message limit;
    expect(r.summary).toMatch(/GitOps: a is applied from Git by Argo CD Application n+\.\.\.\/a+\.\.\./);
    for (const d of r.deployments) {
      const g = (d as { gitops?: Record<string, string> }).gitops!;
      expect(g.name!.length).toBeLessThanOrEqual(253);
      expect(g.namespace!.length).toBeLessThanOrEqual(63);
      expect(g.owner!.length).toBeLessThanOrEqual(1024);
      expect(g.warning!.length).toBeLessThanOrEqual(1024);
    }
    expect(JSON.stringify(r).length).toBeLessThan(16 * 1024);
  });
});
