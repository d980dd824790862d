import { boundText } from '../kube/bounded.js';
import type { KubeObject } from '../kube/rest.js';

/** Waiting reasons of a container that will not start without a change (image, config, Secret). */
const NOT_STARTING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export interface PodProblem {
  reason: 'RunnerPodUnschedulable' | 'RunnerPodNotStarting';
  message: string;
}

/**
 * Why a runner pod of a running Job does not get going, if it is stuck for a reason that waiting will not
 * fix soon: the scheduler found no node (nodeSelector, tolerations, resources, an unbound claim), or the
 * container cannot be created (image, Secret key). Without this the Job would only fail at its deadline.
 */
export function runnerPodProblem(pod: KubeObject): PodProblem | undefined {
  const scheduled = (pod.status?.conditions ?? []).find((c: { type: string }) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return {
      reason: 'RunnerPodUnschedulable',
      message: `pod ${pod.metadata.name} cannot be scheduled: ${boundText(String(scheduled.message ?? ''), 512)}`,
    };
  }
  for (const c of pod.status?.containerStatuses ?? []) {
    const waiting = c.state?.waiting;
    if (waiting && NOT_STARTING.has(waiting.reason)) {
      return {
        reason: 'RunnerPodNotStarting',
        message: `pod ${pod.metadata.name} cannot start: ${waiting.reason}: ${boundText(String(waiting.message ?? ''), 512)}`,
      };
    }
  }
  return undefined;
}
