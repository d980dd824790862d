import { describe, expect, it } from 'vitest';
import {
  equalIgnoreHash,
  findRevisionReplicaSet,
  planDeploymentRollback,
  revisionOf,
  selectorString,
  type LabelSelector,
  type PodTemplate,
  type RawDeployment,
  type RawReplicaSet,
} from './deployment-undo.js';

const UID = 'uid-web';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const CHANGE_CAUSE = 'kubernetes.io/change-cause';
const REVISION = 'deployment.kubernetes.io/revision';

const template = (image: string, hash?: string): PodTemplate => ({
  metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } },
  spec: { containers: [{ name: 'web', image }] },
});

function deployment(image: string, extra: { paused?: boolean; annotations?: Record<string, string> } = {}) {
  return {
    metadata: {
      name: 'web',
      namespace: 'shop',
      uid: UID,
      resourceVersion: '42',
      annotations: extra.annotations,
    },
    spec: { selector: { matchLabels: { app: 'web' } }, paused: extra.paused, template: template(image) },
  } satisfies RawDeployment;
}

type Owner = 'controller' | 'not-controller' | 'other-deployment' | 'none';
function replicaSet(
  name: string,
  revision: string | undefined,
  image: string,
  extra: { owner?: Owner; created?: string; annotations?: Record<string, string> } = {},
): RawReplicaSet {
  const owner = extra.owner ?? 'controller';
  const ownerReferences =
    owner === 'none'
      ? []
      : [{ uid: owner === 'other-deployment' ? 'uid-other' : UID, controller: owner !== 'not-controller' }];
  return {
    metadata: {
      name,
      creationTimestamp: extra.created ?? '2026-01-01T00:00:00Z',
      ownerReferences,
      annotations: { ...(revision === undefined ? {} : { [REVISION]: revision }), ...extra.annotations },
    },
    spec: { template: template(image, `hash-${name}`) },
  };
}

// A Deployment at revision 3 with the usual history: one ReplicaSet per revision.
const history = () => [
  replicaSet('web-1', '1', 'nginx:1.25', { created: '2026-01-01T00:00:01Z' }),
  replicaSet('web-2', '2', 'nginx:1.26', { created: '2026-01-01T00:00:02Z' }),
  replicaSet('web-3', '3', 'nginx:1.27', { created: '2026-01-01T00:00:03Z' }),
];

describe('revisionOf', () => {
  it.each([
    { annotation: undefined, expected: 0, why: 'a missing annotation is revision 0' },
    { annotation: '3', expected: 3, why: 'decimal' },
    { annotation: '+3', expected: 3, why: 'ParseInt accepts a sign' },
    { annotation: '-1', expected: -1, why: 'negative parses' },
    { annotation: 'abc', expected: undefined, why: 'not a number' },
    { annotation: '1.5', expected: undefined, why: 'not an integer' },
    { annotation: ' 2', expected: undefined, why: 'ParseInt rejects spaces' },
    { annotation: '', expected: undefined, why: 'empty string' },
    { annotation: '99999999999999999999', expected: undefined, why: 'out of int64 range' },
  ])('$annotation -> $expected ($why)', ({ annotation, expected }) => {
    expect(revisionOf(replicaSet('rs', annotation, 'x'))).toBe(expected);
  });
});

describe('equalIgnoreHash', () => {
  const base = template('nginx:1.27');
  const withSpec = (spec: Record<string, unknown>): PodTemplate => ({
    ...base,
    spec: { ...base.spec, ...spec },
  });
  it.each([
    { case: 'only pod-template-hash differs', a: template('nginx:1.27', 'abc'), b: base, equal: true },
    { case: 'image differs', a: template('nginx:1.26'), b: base, equal: false },
    {
      case: 'creationTimestamp: null vs absent (nil == zero)',
      a: { ...base, metadata: { ...base.metadata, creationTimestamp: null } },
      b: base,
      equal: true,
    },
    { case: 'empty vs missing slice', a: withSpec({ volumes: [] }), b: base, equal: true },
    { case: 'empty vs missing map', a: withSpec({ nodeSelector: {} }), b: base, equal: true },
    {
      case: 'empty vs missing labels after the hash is removed',
      a: { metadata: { labels: { 'pod-template-hash': 'x' } }, spec: base.spec },
      b: { metadata: {}, spec: base.spec },
      equal: true,
    },
    {
      case: 'empty struct vs nil pointer (emptyDir: {})',
      a: withSpec({ volumes: [{ name: 'tmp', emptyDir: {} }] }),
      b: withSpec({ volumes: [{ name: 'tmp' }] }),
      equal: false,
    },
    {
      case: 'key order is irrelevant',
      a: { spec: base.spec, metadata: base.metadata },
      b: base,
      equal: true,
    },
    {
      case: 'list order matters',
      a: withSpec({ containers: [{ name: 'a' }, { name: 'b' }] }),
      b: withSpec({ containers: [{ name: 'b' }, { name: 'a' }] }),
      equal: false,
    },
  ])('$case -> equal=$equal', ({ a, b, equal }) => {
    expect(equalIgnoreHash(a, b), `templates should ${equal ? '' : 'not '}compare equal`).toBe(equal);
  });
});

describe('selectorString', () => {
  it.each<{ selector: LabelSelector | undefined; expected: string }>([
    { selector: undefined, expected: '' },
    { selector: { matchLabels: { tier: 'web', app: 'shop' } }, expected: 'app=shop,tier=web' },
    {
      selector: {
        matchLabels: { app: 'shop' },
        matchExpressions: [
          { key: 'zone', operator: 'In', values: ['b', 'a'] },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'canary', operator: 'DoesNotExist' },
          { key: 'beta', operator: 'Exists' },
        ],
      },
      expected: 'app=shop,beta,!canary,env notin (dev),zone in (a,b)',
    },
  ])('$expected', ({ selector, expected }) => {
    expect(selectorString(selector)).toBe(expected);
  });

  it.each([
    { expr: { key: 'a', operator: 'Gt', values: ['1'] }, error: /not a valid operator/ },
    { expr: { key: 'a', operator: 'In', values: [] }, error: /needs values/ },
  ])('rejects $expr.operator with values $expr.values', ({ expr, error }) => {
    expect(() => selectorString({ matchExpressions: [expr] })).toThrow(error);
  });
});

describe('findRevisionReplicaSet', () => {
  const cases: {
    case: string;
    replicaSets: RawReplicaSet[];
    toRevision: number;
    expected: string | undefined;
  }[] = [
    {
      case: 'default is the second-highest revision',
      replicaSets: history(),
      toRevision: 0,
      expected: 'web-2',
    },
    { case: 'explicit revision', replicaSets: history(), toRevision: 1, expected: 'web-1' },
    { case: 'explicit current revision', replicaSets: history(), toRevision: 3, expected: 'web-3' },
    { case: 'revision missing', replicaSets: history(), toRevision: 7, expected: undefined },
    { case: 'negative revision', replicaSets: history(), toRevision: -1, expected: undefined },
    { case: 'no history', replicaSets: [history()[2]!], toRevision: 0, expected: undefined },
    {
      case: 'ReplicaSets not controlled by this Deployment are ignored',
      replicaSets: [
        ...history(),
        replicaSet('adopted-by-other', '2', 'evil:1', { owner: 'other-deployment' }),
        replicaSet('not-controller', '9', 'evil:2', { owner: 'not-controller' }),
        replicaSet('orphan', '8', 'evil:3', { owner: 'none' }),
      ],
      toRevision: 0,
      expected: 'web-2',
    },
    {
      case: 'an uncontrolled ReplicaSet is not found by its revision',
      replicaSets: [...history(), replicaSet('orphan', '8', 'evil:3', { owner: 'none' })],
      toRevision: 8,
      expected: undefined,
    },
    {
      case: 'an unparsable revision is skipped',
      replicaSets: [...history(), replicaSet('garbage', 'v9', 'nginx:0')],
      toRevision: 0,
      expected: 'web-2',
    },
    {
      case: 'a missing revision annotation counts as 0',
      replicaSets: [replicaSet('legacy', undefined, 'nginx:1.0'), history()[2]!],
      toRevision: 0,
      expected: 'legacy',
    },
    {
      case: 'equal revisions: the earlier-created ReplicaSet wins, as in kubectl',
      replicaSets: [
        replicaSet('later', '2', 'nginx:b', { created: '2026-01-01T00:00:09Z' }),
        replicaSet('earlier', '2', 'nginx:a', { created: '2026-01-01T00:00:01Z' }),
        history()[2]!,
      ],
      toRevision: 2,
      expected: 'earlier',
    },
  ];
  it.each(cases)('$case', ({ replicaSets, toRevision, expected }) => {
    const found = findRevisionReplicaSet(deployment('nginx:1.27'), replicaSets, toRevision);
    expect(found?.metadata.name, `revision ${toRevision} resolves to ${expected ?? 'nothing'}`).toBe(
      expected,
    );
  });
});

describe('planDeploymentRollback', () => {
  it.each([
    { case: 'previous revision', toRevision: 0, toImage: 'nginx:1.26', resolved: 2, rs: 'web-2' },
    { case: 'explicit revision', toRevision: 1, toImage: 'nginx:1.25', resolved: 1, rs: 'web-1' },
  ])('rolls back to the $case', ({ toRevision, toImage, resolved, rs }) => {
    const plan = planDeploymentRollback(deployment('nginx:1.27'), history(), toRevision);
    expect(plan).toMatchObject({ action: 'rollback', fromRevision: 3, toRevision: resolved, replicaSet: rs });
    if (plan.action !== 'rollback') return;
    expect(plan.template, 'restored template is the ReplicaSet template without pod-template-hash').toEqual(
      template(toImage),
    );
    expect(
      plan.patch.map((op) => `${op.op} ${op.path}`),
      'resourceVersion precondition first, then template and annotations',
    ).toEqual(['replace /metadata/resourceVersion', 'replace /spec/template', 'add /metadata/annotations']);
    expect(plan.patch[0]!.value, 'precondition carries the resourceVersion that was read').toBe('42');
    expect(plan.patch[1]!.value).toEqual(plan.template);
    expect(plan.patch[2]!.value).toEqual(plan.annotations);
  });

  it.each([
    {
      case: 'revision missing',
      d: deployment('nginx:1.27'),
      rss: history(),
      toRevision: 7,
      expected: {
        action: 'refuse',
        reason: 'RevisionNotFound',
        toRevision: null,
        message: 'unable to find specified revision 7 in history',
      },
    },
    {
      case: 'no history',
      d: deployment('nginx:1.27'),
      rss: [history()[2]!],
      toRevision: 0,
      expected: {
        action: 'refuse',
        reason: 'NoRolloutHistory',
        message: 'no rollout history found for deployment "web"',
      },
    },
    {
      case: 'paused',
      d: deployment('nginx:1.27', { paused: true }),
      rss: history(),
      toRevision: 0,
      expected: {
        action: 'refuse',
        reason: 'DeploymentPaused',
        toRevision: 2,
        message:
          "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again",
      },
    },
    {
      case: 'paused with a missing revision (lookup comes first, like kubectl)',
      d: deployment('nginx:1.27', { paused: true }),
      rss: history(),
      toRevision: 7,
      expected: { action: 'refuse', reason: 'RevisionNotFound' },
    },
    {
      case: 'negative revision',
      d: deployment('nginx:1.27'),
      rss: history(),
      toRevision: -1,
      expected: {
        action: 'refuse',
        reason: 'InvalidRevision',
        message: 'unable to find specified revision -1 in history',
      },
    },
    {
      case: 'non-integer revision',
      d: deployment('nginx:1.27'),
      rss: history(),
      toRevision: 1.5,
      expected: { action: 'refuse', reason: 'InvalidRevision' },
    },
    {
      case: 'already at the requested revision',
      d: deployment('nginx:1.27'),
      rss: history(),
      toRevision: 3,
      expected: {
        action: 'skip',
        reason: 'AlreadyAtRevision',
        toRevision: 3,
        message: 'skipped rollback (current template already matches revision 3)',
      },
    },
    {
      case: 'previous revision has the same template (kubectl prints the requested 0)',
      d: deployment('nginx:1.26'),
      rss: history(),
      toRevision: 0,
      expected: {
        action: 'skip',
        reason: 'AlreadyAtRevision',
        fromRevision: 2,
        toRevision: 2,
        message: 'skipped rollback (current template already matches revision 0)',
      },
    },
  ])('$case', ({ d, rss, toRevision, expected }) => {
    expect(planDeploymentRollback(d, rss, toRevision)).toMatchObject(expected);
  });

  it('takes change-cause from the ReplicaSet, bookkeeping from the Deployment, and drops the rest', () => {
    const d = deployment('nginx:1.27', {
      annotations: {
        [CHANGE_CAUSE]: 'rev 3',
        [LAST_APPLIED]: '{"rev":3}',
        [REVISION]: '3',
        'deployment.kubernetes.io/revision-history': '1',
        'example.com/deployment-only': 'dropped',
      },
    });
    const rss = history();
    rss[1]!.metadata.annotations = {
      ...rss[1]!.metadata.annotations,
      [CHANGE_CAUSE]: 'rev 2',
      'deployment.kubernetes.io/desired-replicas': '3',
      'deployment.kubernetes.io/max-replicas': '4',
      'example.com/from-rev-2': 'kept',
    };
    const plan = planDeploymentRollback(d, rss, 0);
    expect(plan.action === 'rollback' && plan.annotations, 'annotations after kubectl-style merge').toEqual({
      [CHANGE_CAUSE]: 'rev 2',
      [LAST_APPLIED]: '{"rev":3}',
      [REVISION]: '3',
      'deployment.kubernetes.io/revision-history': '1',
      'example.com/from-rev-2': 'kept',
    });
    expect(plan.warnings, 'kubectl warns about last-applied-configuration going stale').toEqual([
      expect.stringContaining("resource deployments/web was previously managed with 'kubectl apply'"),
    ]);
  });

  it('removes pod-template-hash without mutating the ReplicaSet it read', () => {
    const rss = history();
    const plan = planDeploymentRollback(deployment('nginx:1.27'), rss, 0);
    expect(plan.action === 'rollback' && plan.template.metadata?.labels).toEqual({ app: 'web' });
    expect(rss[1]!.spec?.template?.metadata?.labels?.['pod-template-hash'], 'input left intact').toBe(
      'hash-web-2',
    );
  });

  it('reports fromRevision null when no ReplicaSet matches the current template yet', () => {
    const plan = planDeploymentRollback(deployment('nginx:9.9'), history(), 0);
    expect(plan).toMatchObject({ action: 'rollback', fromRevision: null, toRevision: 2, warnings: [] });
  });

  it('refuses to build a patch without a resourceVersion to guard it', () => {
    const d = deployment('nginx:1.27');
    delete (d.metadata as { resourceVersion?: string }).resourceVersion;
    expect(() => planDeploymentRollback(d, history(), 0)).toThrow(/no metadata.resourceVersion/);
  });
});
