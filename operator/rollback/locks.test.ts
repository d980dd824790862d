import { describe, expect, it } from 'vitest';
import { activePlanConflicts } from './locks.js';

const plan = (
  name: string,
  created: string,
  phase: string | undefined,
  deps: string[],
  extra: object = {},
  validated = false,
) =>
  ({
    metadata: { name, namespace: 'shop', uid: name, creationTimestamp: created },
    spec: { scope: 'app', targets: { deployments: deps.map((d) => ({ name: d })) }, ...extra },
    status: phase
      ? { phase, steps: validated ? [{ name: 'PreValidation', result: 'Succeeded' }] : [] }
      : undefined,
  }) as any;

describe('activePlanConflicts', () => {
  const self = plan('me', '2026-11-28T10:00:05Z', undefined, ['web']);
  it.each([
    [
      'a newer plan that passed pre-validation',
      plan('a', '2026-11-28T10:00:09Z', 'Running', ['web'], {}, true),
      1,
    ],
    ['a newer running plan still pre-validating', plan('a', '2026-11-28T10:00:09Z', 'Running', ['web']), 0],
    ['an older running plan still pre-validating', plan('a', '2026-11-28T10:00:00Z', 'Running', ['web']), 1],
    ['an older pending plan', plan('a', '2026-11-28T10:00:00Z', 'Pending', ['web']), 1],
    ['a newer pending plan', plan('a', '2026-11-28T10:00:09Z', 'Pending', ['web']), 0],
    ['a finished plan', plan('a', '2026-11-28T10:00:00Z', 'Succeeded', ['web']), 0],
    ['a failed plan', plan('a', '2026-11-28T10:00:00Z', 'Failed', ['web']), 0],
    ['another deployment', plan('a', '2026-11-28T10:00:00Z', 'Running', ['api']), 0],
    ['a dry run', plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], { dryRun: true }), 0],
    ['same time, earlier name', plan('a', '2026-11-28T10:00:05Z', undefined, ['web']), 1],
    ['same time, later name', plan('z', '2026-11-28T10:00:05Z', undefined, ['web']), 0],
  ])('%s', (_n, other, count) => {
    expect(activePlanConflicts(self, [self, other], ['web'])).toHaveLength(count);
  });

  it('ignores other namespaces', () => {
    const other = plan('a', '2026-11-28T10:00:00Z', 'Running', ['web']);
    other.metadata.namespace = 'billing';
    expect(activePlanConflicts(self, [other], ['web'])).toEqual([]);
  });
});
