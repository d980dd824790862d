import { describe, expect, it } from 'vitest';
import {
  decideResume,
  fluxSourceOf,
  isPaused,
  pausedValue,
  pausePatch,
  restorePatch,
  revisionOf,
} from './owner-pause.js';
import { isPatchTestFailure } from './suspend.js';

/** Applies a JSON patch the way the API server does (enough of RFC 6902 for these tests). */
function apply(obj: any, ops: ReturnType<typeof pausePatch>): any {
  const out = structuredClone(obj);
  for (const op of ops) {
    const keys = op.path.split('/').slice(1);
    const last = keys.pop()!;
    let at = out;
    for (const k of keys) at = at[k];
    if (op.op === 'test') {
      expect(at[last], `test ${op.path}`).toEqual(op.value);
    } else if (op.op === 'remove') delete at[last];
    else at[last] = op.value;
  }
  return out;
}

describe('pausing and resuming a Flux owner', () => {
  it.each([
    ['absent', {}],
    ['false', { suspend: false }],
  ])('spec.suspend %s: pause sets true, resume restores exactly the original', (_, spec) => {
    const ks = { spec: { interval: '1m', ...spec } };
    expect(isPaused('Kustomization', ks)).toBe(false);
    const paused = apply(ks, pausePatch('Kustomization', ks));
    expect(paused.spec.suspend).toBe(true);
    expect(isPaused('Kustomization', paused)).toBe(true);
    const previous = 'suspend' in spec ? JSON.stringify(spec.suspend) : undefined;
    const restore = restorePatch('Kustomization', paused, previous);
    expect(restore).not.toBe('changed');
    expect(apply(paused, restore as ReturnType<typeof pausePatch>)).toEqual(ks);
  });

  it('does not resume an owner someone else resumed (or edited) while suspended', () => {
    expect(restorePatch('Kustomization', { spec: { suspend: false } }, undefined)).toBe('changed');
    expect(restorePatch('HelmRelease', { spec: {} }, 'false')).toBe('changed');
  });

  it("reads a Kustomization's sourceRef and a HelmRelease's chartRef or chart source", () => {
    const meta = { metadata: { namespace: 'flux-system' } };
    expect(
      fluxSourceOf('Kustomization', { ...meta, spec: { sourceRef: { kind: 'GitRepository', name: 'app' } } }),
    ).toEqual({
      kind: 'GitRepository',
      name: 'app',
      namespace: 'flux-system',
    });
    expect(
      fluxSourceOf('HelmRelease', {
        ...meta,
        spec: { chartRef: { kind: 'OCIRepository', name: 'c', namespace: 'x' } },
      }),
    ).toEqual({ kind: 'OCIRepository', name: 'c', namespace: 'x' });
    expect(
      fluxSourceOf('HelmRelease', {
        ...meta,
        spec: { chart: { spec: { chart: 'web', sourceRef: { kind: 'HelmRepository', name: 'repo' } } } },
      }),
    ).toEqual({ kind: 'HelmRepository', name: 'repo', namespace: 'flux-system' });
    expect(fluxSourceOf('Kustomization', { spec: {} })).toBeUndefined();
    expect(revisionOf({ status: { artifact: { revision: 'main@sha1:abc' } } })).toBe('main@sha1:abc');
  });
});

describe('pausing and resuming an Argo CD Application', () => {
  const syncPolicy = {
    automated: { prune: true, selfHeal: true },
    syncOptions: ['CreateNamespace=true'],
    retry: { limit: 2 },
  };

  it('turns automated sync off with enabled: false and puts the original syncPolicy back exactly', () => {
    const app = { spec: { project: 'default', syncPolicy } };
    expect(isPaused('Application', app)).toBe(false);
    const paused = apply(app, pausePatch('Application', app));
    expect(paused.spec.syncPolicy.automated).toEqual({ prune: true, selfHeal: true, enabled: false });
    expect(isPaused('Application', paused)).toBe(true);
    expect(paused.spec.syncPolicy).toEqual(pausedValue('Application', syncPolicy));
    const restore = restorePatch('Application', paused, JSON.stringify(syncPolicy));
    expect(apply(paused, restore as ReturnType<typeof pausePatch>)).toEqual(app);
  });

  it('counts no automated block, or enabled false, as paused already', () => {
    expect(isPaused('Application', { spec: {} })).toBe(true);
    expect(isPaused('Application', { spec: { syncPolicy: { automated: { enabled: false } } } })).toBe(true);
    expect(isPaused('Application', { spec: { syncPolicy: { automated: { enabled: true } } } })).toBe(false);
  });

  it('leaves a syncPolicy edited while suspended alone', () => {
    const edited = { spec: { syncPolicy: { automated: { prune: false, enabled: false } } } };
    expect(restorePatch('Application', edited, JSON.stringify(syncPolicy))).toBe('changed');
  });

  it('reads the sync revision(s)', () => {
    expect(revisionOf({ status: { sync: { revision: 'abc' } } }, true)).toBe('abc');
    expect(revisionOf({ status: { sync: { revisions: ['a', 'b'] } } }, true)).toBe('a,b');
    expect(revisionOf({ status: {} }, true)).toBeUndefined();
  });
});

describe('decideResume', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  const base = { resume: 'onNewRevision' as const, now, suspendedAt: '2026-11-29T11:59:00Z' };
  it.each([
    ['same revision: wait', { revisionAtSuspend: 'a', currentRevision: 'a' }, { wait: true }],
    ['new revision', { revisionAtSuspend: 'a', currentRevision: 'b' }, { resume: 'newRevision' }],
    [
      'new revision, resume manual: wait',
      { resume: 'manual' as const, revisionAtSuspend: 'a', currentRevision: 'b' },
      { wait: true },
    ],
    ['no revision known: wait', { currentRevision: 'b' }, { wait: true }],
    ['new annotation value', { annotation: 'x' }, { resume: 'annotation' }],
    ['annotation already acted on', { annotation: 'x', lastResumeRequest: 'x' }, { wait: true }],
    ['resumeAfter passed', { resumeAfterMs: 60_000 }, { resume: 'resumeAfter' }],
    ['resumeAfter not yet', { resumeAfterMs: 90_000 }, { wait: true, dueInMs: 30_000 }],
  ])('%s', (_, input, expected) => {
    expect(decideResume({ ...base, ...input })).toEqual(expected);
  });
});

describe('the pause patch applies only to the owner as read', () => {
  it('tests the resourceVersion first, so a concurrent change (e.g. a human pausing a Kustomization without spec.suspend) fails it', () => {
    const ks = { metadata: { name: 'apps', resourceVersion: '41' }, spec: { interval: '1m' } };
    const ops = pausePatch('Kustomization', ks, 'plan-uid');
    expect(ops[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '41' });
    const changed = { ...ks, metadata: { ...ks.metadata, resourceVersion: '42' } };
    expect(() => apply(changed, ops)).toThrow();
    expect(pausePatch('Application', { metadata: { resourceVersion: '7' }, spec: {} })[0]).toEqual({
      op: 'test',
      path: '/metadata/resourceVersion',
      value: '7',
    });
  });

  it("knows the API server's message for a failed test op", () => {
    expect(
      isPatchTestFailure(
        'Kustomization.kustomize.toolkit.fluxcd.io "apps" is invalid: patch: Invalid value: "[...]": testing value /metadata/resourceVersion failed: test failed',
      ),
    ).toBe(true);
    expect(isPatchTestFailure('Testing value /spec/suspend failed')).toBe(true);
    expect(
      isPatchTestFailure('test operation does not apply: is missing path: /metadata/annotations/x'),
    ).toBe(true);
    expect(isPatchTestFailure('spec.suspend: Invalid value: "string": must be a boolean')).toBe(false);
  });
});
