import { describe, expect, it } from 'vitest';
import { rolloutProgress } from './rollout.js';

const dep = (generation: number, spec: object, status: object) =>
  ({ metadata: { name: 'web', generation }, spec: { template: {}, selector: {}, ...spec }, status }) as any;

describe('rolloutProgress', () => {
  it.each([
    [
      'generation not observed',
      dep(3, { replicas: 2 }, { observedGeneration: 2 }),
      'progressing',
      /spec update/,
    ],
    [
      'too few updated',
      dep(3, { replicas: 3 }, { observedGeneration: 3, updatedReplicas: 1, replicas: 3 }),
      'progressing',
      /1 of 3 updated/,
    ],
    [
      'old replicas left',
      dep(
        3,
        { replicas: 2 },
        { observedGeneration: 3, updatedReplicas: 2, replicas: 3, availableReplicas: 2 },
      ),
      'progressing',
      /1 old replicas/,
    ],
    [
      'not available',
      dep(
        3,
        { replicas: 2 },
        { observedGeneration: 3, updatedReplicas: 2, replicas: 2, availableReplicas: 1 },
      ),
      'progressing',
      /1 of 2 updated replicas of "web" are available/,
    ],
    [
      'complete',
      dep(
        3,
        { replicas: 2 },
        { observedGeneration: 3, updatedReplicas: 2, replicas: 2, availableReplicas: 2 },
      ),
      'complete',
      /successfully rolled out/,
    ],
    [
      'default one replica',
      dep(1, {}, { observedGeneration: 1, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }),
      'complete',
      /1\/1/,
    ],
    [
      'deadline exceeded',
      dep(
        3,
        { replicas: 2 },
        {
          observedGeneration: 3,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
        },
      ),
      'failed',
      /progress deadline/,
    ],
  ])('%s', (_name, d, state, msg) => {
    const p = rolloutProgress(d);
    expect(p.state).toBe(state);
    expect(p.message).toMatch(msg);
  });
});
