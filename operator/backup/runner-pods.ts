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
  reason: 'RunnerPodUnschedulable' | 'RunnerPodNotStarting' | 'RunnerPodMissing';
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

/**
 * A released Job without any pod this long after it started was refused its pod (a ResourceQuota, a
 * LimitRange, an admission webhook): the Job controller only records that as a FailedCreate Event and keeps
 * trying until the Job's deadline.
 */
export const NO_POD_AFTER_MS = 30_000;

/** When the Job was started (or, before that, created); NaN when neither is known. */
export const jobStartedAt = (job: KubeObject) =>
  Date.parse(job.status?.startTime ?? job.metadata.creationTimestamp ?? '');

/**
 * Why a running Job gets nowhere: one of its pods is stuck (runnerPodProblem), or it has no pod at all
 * NO_POD_AFTER_MS after it started. `pods` are the Job's own pods; a suspended Job is never stuck.
 */
export function runnerJobProblem(
  job: KubeObject,
  pods: readonly KubeObject[],
  now: Date,
): PodProblem | undefined {
  if (job.spec?.suspend === true) return undefined;
  for (const pod of pods) {
    const problem = runnerPodProblem(pod);
    if (problem) return problem;
  }
  const since = jobStartedAt(job);
  if (pods.length || job.status?.active || !(now.getTime() - since >= NO_POD_AFTER_MS)) return undefined;
  return {
    reason: 'RunnerPodMissing',
    message: `Job ${job.metadata.name} has no pod ${Math.round((now.getTime() - since) / 1000)}s after it started: the API server refused it (a ResourceQuota, LimitRange or admission policy; see the Job's FailedCreate events)`,
  };
}

/** True if any container of these pods ever started: the runner may have done something. */
export const runnerEverStarted = (pods: readonly KubeObject[]) =>
  pods.some((p) =>
    (p.status?.containerStatuses ?? []).some(
      (c: { state?: { running?: unknown; terminated?: unknown }; lastState?: { terminated?: unknown } }) =>
        c.state?.running || c.state?.terminated || c.lastState?.terminated,
    ),
  );
