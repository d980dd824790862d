import { describe, expect, it } from 'vitest';
import { runnerJobProblem, runnerPodProblem } from './runner-pods.js';

const pod = (status: object) => ({ metadata: { name: 'p' }, status });

describe('runnerPodProblem', () => {
  it('reports a pod the scheduler cannot place, with the scheduler message', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
        },
      ],
    });
    expect(runnerPodProblem(p)).toEqual({
      reason: 'RunnerPodUnschedulable',
      message:
        'pod p cannot be scheduled: 0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
    });
  });

  it.each(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError'])(
    'reports a container waiting with %s',
    (reason) => {
      const p = pod({ containerStatuses: [{ state: { waiting: { reason, message: 'm' } } }] });
      expect(runnerPodProblem(p)).toEqual({
        reason: 'RunnerPodNotStarting',
        message: `pod p cannot start: ${reason}: m`,
      });
    },
  );

  it.each([
    ['a pod being scheduled', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False' }] }],
    [
      'a container being created',
      { containerStatuses: [{ state: { waiting: { reason: 'ContainerCreating' } } }] },
    ],
    ['a running pod', { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }] }],
    ['a pod without status', {}],
  ])('leaves %s alone', (_what, status) => {
    expect(runnerPodProblem(pod(status))).toBeUndefined();
  });
});

describe('runnerJobProblem', () => {
  const job = (status: object, suspend = false) =>
    ({
      metadata: { name: 'j', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { suspend },
      status,
    }) as any;
  const at = (s: string) => new Date(`2026-01-01T00:00:${s}Z`);
  it('names a Job without any pod 30 s after it started, not before, and never a suspended one', () => {
    expect(runnerJobProblem(job({ startTime: '2026-01-01T00:00:00Z' }), [], at('29'))).toBeUndefined();
    expect(runnerJobProblem(job({ startTime: '2026-01-01T00:00:00Z' }), [], at('30'))).toMatchObject({
      reason: 'RunnerPodMissing',
    });
    expect(runnerJobProblem(job({}, true), [], at('59'))).toBeUndefined();
  });
});
