import { describe, expect, it } from 'vitest';
import {
  planDeploymentRollback,
  type PodTemplate,
  type RawDeployment,
  type RawReplicaSet,
} from './deployment-undo.js';
import { buildDeploymentDryRun, imageChanges, renderTemplateYaml } from './dry-run.js';

const UID = 'uid-web';
const podTemplate = (
  image: string,
  extra: { hash?: string; env?: { name: string; value: string }[] } = {},
) => ({
  metadata: {
    creationTimestamp: null,
    labels: { app: 'web', ...(extra.hash ? { 'pod-template-hash': extra.hash } : {}) },
  },
  spec: {
    containers: [{ name: 'web', image, ...(extra.env ? { env: extra.env } : {}) }],
    initContainers: [{ name: 'migrate', image: 'migrate:1' }],
  },
});
const deployment = (template: PodTemplate, paused = false): RawDeployment => ({
  metadata: { name: 'web', uid: UID, resourceVersion: '7' },
  spec: { selector: { matchLabels: { app: 'web' } }, paused, template },
});
const LEGACY_ENV = [{ name: 'MODE', value: 'legacy' }];
const replicaSet = (revision: number, template: PodTemplate): RawReplicaSet => ({
  metadata: {
    name: `web-${revision}`,
    creationTimestamp: `2026-01-01T00:00:0${revision}Z`,
    annotations: { 'deployment.kubernetes.io/revision': String(revision) },
    ownerReferences: [{ uid: UID, controller: true }],
  },
  spec: { template },
});
const history = [
  replicaSet(1, podTemplate('nginx:1.25', { hash: 'h1', env: LEGACY_ENV })),
  replicaSet(2, podTemplate('nginx:1.26', { hash: 'h2' })),
];

describe('buildDeploymentDryRun', () => {
  it('reports a rollback with image changes and a unified diff of the pod templates', () => {
    const d = deployment(podTemplate('nginx:1.26'));
    const report = buildDeploymentDryRun(d, planDeploymentRollback(d, history, 0));
    expect(report).toMatchObject({
      name: 'web',
      action: 'rollback',
      reason: null,
      fromRevision: 2,
      toRevision: 1,
      imageChanges: [{ container: 'web', from: 'nginx:1.26', to: 'nginx:1.25' }],
      message:
        'would roll back deployment "web" from revision 2 to revision 1 (web: nginx:1.26 -> nginx:1.25)',
    });
    expect(report.templateDiff, 'diff of sorted YAML, without pod-template-hash or null fields').toBe(
      [
        '--- deployment/web (revision 2)',
        '+++ replicaset/web-1 (revision 1)',
        '@@ -3,7 +3,10 @@',
        '     app: web',
        ' spec:',
        '   containers:',
        '-    - image: nginx:1.26',
        '+    - env:',
        '+        - name: MODE',
        '+          value: legacy',
        '+      image: nginx:1.25',
        '       name: web',
        '   initContainers:',
        '     - image: migrate:1',
        '',
      ].join('\n'),
    );
  });

  it.each([
    {
      case: 'paused (refuse)',
      d: deployment(podTemplate('nginx:1.26'), true),
      expected: { action: 'refuse', reason: 'DeploymentPaused', toRevision: 1 },
    },
    {
      case: 'already there (skip)',
      d: deployment(podTemplate('nginx:1.25', { env: LEGACY_ENV })),
      expected: { action: 'skip', reason: 'AlreadyAtRevision', fromRevision: 1, toRevision: 1 },
    },
  ])('$case: no diff, the plan message', ({ d, expected }) => {
    const plan = planDeploymentRollback(d, history, d.spec.paused ? 0 : 1);
    if (plan.action === 'rollback') throw new Error(`expected no rollback, got one to ${plan.toRevision}`);
    expect(buildDeploymentDryRun(d, plan)).toMatchObject({
      ...expected,
      imageChanges: [],
      templateDiff: '',
      message: plan.message,
    });
  });
});

describe('the GitOps owner in the dry-run report', () => {
  it('names the Flux Kustomization that applies the Deployment, with the warning', () => {
    const d = deployment(podTemplate('nginx:1.26'));
    d.metadata.labels = {
      'kustomize.toolkit.fluxcd.io/name': 'apps',
      'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
    };
    const report = buildDeploymentDryRun(d, planDeploymentRollback(d, history, 0));
    expect(report.gitops).toMatchObject({
      tool: 'flux',
      kind: 'Kustomization',
      owner: 'Flux Kustomization flux-system/apps',
    });
    expect(report.gitops?.warning).toMatch(/may put the current template back .*suspend the Kustomization/);
  });

  it('gives weak evidence (the instance label Helm also sets) a neutral note, no owner and no warning', () => {
    const d = deployment(podTemplate('nginx:1.26'));
    d.metadata.labels = { 'app.kubernetes.io/instance': 'web' };
    const report = buildDeploymentDryRun(d, planDeploymentRollback(d, history, 0));
    expect(report.gitops).toEqual({
      tool: 'argocd',
      kind: 'Application',
      name: 'web',
      evidence: "label app.kubernetes.io/instance (also Helm's standard label: weak evidence)",
      weak: true,
      note: 'may be managed by Argo CD Application web (label app.kubernetes.io/instance, also set by Helm)',
    });
  });

  it('says nothing about GitOps for a Deployment no GitOps tool claims', () => {
    const d = deployment(podTemplate('nginx:1.26'));
    expect(buildDeploymentDryRun(d, planDeploymentRollback(d, history, 0))).not.toHaveProperty('gitops');
  });
});

describe('renderTemplateYaml', () => {
  it('sorts keys and drops pod-template-hash and nulls, so equal templates render equally', () => {
    expect(renderTemplateYaml(podTemplate('nginx:1.25', { hash: 'h1' }))).toBe(
      [
        'metadata:',
        '  labels:',
        '    app: web',
        'spec:',
        '  containers:',
        '    - image: nginx:1.25',
        '      name: web',
        '  initContainers:',
        '    - image: migrate:1',
        '      name: migrate',
        '',
      ].join('\n'),
    );
  });
});

describe('imageChanges', () => {
  it.each([
    { case: 'no change', current: ['web=a'], target: ['web=a'], expected: [] },
    {
      case: 'changed',
      current: ['web=a'],
      target: ['web=b'],
      expected: [{ container: 'web', from: 'a', to: 'b' }],
    },
    {
      case: 'container only in the target',
      current: ['web=a'],
      target: ['web=a', 'sidecar=s'],
      expected: [{ container: 'sidecar', from: null, to: 's' }],
    },
    {
      case: 'container removed by the rollback',
      current: ['web=a', 'sidecar=s'],
      target: ['web=a'],
      expected: [{ container: 'sidecar', from: 's', to: null }],
    },
  ])('$case', ({ current, target, expected }) => {
    const t = (specs: string[]): PodTemplate => ({
      spec: { containers: specs.map((s) => ({ name: s.split('=')[0]!, image: s.split('=')[1] })) },
    });
    expect(imageChanges(t(current), t(target))).toEqual(expected);
  });
});
