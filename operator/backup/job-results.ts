import type { KubeObject } from '../kube/rest.js';
import { ReceivedResultSchema, type ReceivedResult } from './runner/result.js';

/** A finished Job's verdict: the runner's result, or the Job's own failure when the runner left none. */
export interface FinishedOutcome {
  state: 'succeeded' | 'failed';
  finishedAt: string;
  /** The runner's result; its reason may be one a newer runner added (bounded, see ReceivedReasonSchema). */
  result?: ReceivedResult;
  message: string;
  reason: string;
}

export type JobOutcome =
  | { state: 'running' }
  | FinishedOutcome
  /**
   * The Job is Complete or Failed, but no pod shows a terminated runner container: the pod watch has not
   * delivered it yet, or the pod is gone. Not a verdict: wait (RESULT_WAIT_MS from `finishedAt`, re-reading
   * the pods live), then treat the outcome as unknown (outcomeUnknown).
   */
  | { state: 'unread'; finishedAt: string; jobSucceeded: boolean; message: string; reason: 'OutcomeUnknown' };

/** How long after a Job finished its runner result may still be on its way (pod watch lag, a slow kubelet). */
export const RESULT_WAIT_MS = 60_000;

/** A finished Job's runner result is overdue: report the outcome as unknown instead of waiting longer. */
export const resultOverdue = (o: { finishedAt: string }, now: Date) =>
  now.getTime() - Date.parse(o.finishedAt) >= RESULT_WAIT_MS;

/** What is recorded for a Job whose result never arrived: a failure that says the outcome is unknown. */
export function outcomeUnknown(o: Extract<JobOutcome, { state: 'unread' }>): FinishedOutcome {
  return {
    state: 'failed',
    finishedAt: o.finishedAt,
    reason: 'OutcomeUnknown',
    message: `the outcome is unknown: ${o.message}`,
  };
}

const jobCondition = (job: KubeObject, type: string) =>
  (job.status?.conditions ?? []).find(
    (c: { type: string; status: string }) => c.type === type && c.status === 'True',
  );

/** The runner container's name in every runner Job's pod (pod-builders, rollback/runner-jobs). */
export const RUNNER_CONTAINER = 'runner';

/**
 * Kubernetes keeps at most 4096 bytes of a termination message (the runner writes at most 3584); anything
 * longer did not come from the kubelet, and is not parsed.
 */
const TERMINATION_MESSAGE_LIMIT = 4096;

interface Terminated {
  exitCode?: number;
  reason?: string;
  message?: string;
  finishedAt?: string;
}

/** The pods this Job controls: the same owner-UID rule as for Jobs (a same-named older Job's pods may linger). */
const ownedBy = (job: KubeObject, pods: readonly KubeObject[]) =>
  pods.filter((p) =>
    (p.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid && r.controller === true),
  );

/** The runner's JSON result in a termination message, if it is one. */
export function parseResult(text: string | undefined): ReceivedResult | undefined {
  if (!text || Buffer.byteLength(text, 'utf8') > TERMINATION_MESSAGE_LIMIT) return undefined;
  try {
    const parsed = ReceivedResultSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // not JSON: a crash before the runner wrote its result
  }
}

const finishedFrom = (r: ReceivedResult): FinishedOutcome => ({
  state: r.success ? 'succeeded' : 'failed',
  finishedAt: r.finishedAt,
  result: r,
  message: r.message,
  reason: r.success ? 'Succeeded' : (r.reason ?? 'Failed'),
});

/**
 * A running Job's verdict, taken from its pod as soon as the runner container has terminated, instead of
 * about a second later when the Job controller (syncing a Job at most once per second) sets Complete or
 * Failed. Only where the pod's result is final: a Job of one pod that never restarts, whose pod this Job
 * controls (owner UID); a success with exit code 0, or a failure the Job will not retry (failureIsFinal:
 * its podFailurePolicy applied to this very pod). Everything else waits for the Job's condition.
 */
function earlyOutcome(job: KubeObject, pods: readonly KubeObject[]): FinishedOutcome | undefined {
  if ((job.spec?.completions ?? 1) !== 1 || (job.spec?.parallelism ?? 1) > 1) return undefined;
  const terminated = ownedBy(job, pods)
    .filter((p) => p.spec?.restartPolicy === 'Never')
    .flatMap((pod) =>
      (pod.status?.containerStatuses ?? [])
        .filter((c: { name?: string }) => c.name === RUNNER_CONTAINER)
        .map((c: { state?: { terminated?: Terminated } }) => c.state?.terminated)
        .filter((t: Terminated | undefined): t is Terminated => !!t)
        .map((t: Terminated) => ({ pod, t })),
    )
    .sort((a, b) => String(b.t.finishedAt ?? '').localeCompare(String(a.t.finishedAt ?? '')));
  const newest = terminated[0];
  const r = parseResult(newest?.t.message);
  if (!newest || !r) return undefined;
  if (r.success && newest.t.exitCode === 0) return finishedFrom(r);
  if (!r.success && newest.t.exitCode !== 0 && failureIsFinal(job, newest.pod, newest.t))
    return finishedFrom(r);
  return undefined;
}

interface PodFailureRule {
  action?: string;
  onExitCodes?: { containerName?: string; operator?: string; values?: number[] };
  onPodConditions?: { type?: string; status?: string }[];
}

/**
 * Whether the Job controller ends the Job on this failed pod, by the Job's podFailurePolicy as Kubernetes
 * applies it: the first rule that matches the pod decides (FailJob: the Job fails; Ignore: a new pod, not
 * counted; Count, or no rule: counted against backoffLimit). So a failure is final on FailJob, or when it
 * is counted and backoffLimit is 0; a pod the cluster disrupted (DisruptionTarget) that an Ignore rule
 * matches is replaced, so its failure is not final, while the same Job's other failures are.
 */
function failureIsFinal(job: KubeObject, pod: KubeObject, t: Terminated): boolean {
  const rules: PodFailureRule[] = job.spec?.podFailurePolicy?.rules ?? [];
  const action = rules.find((rule) => ruleMatches(rule, pod, t))?.action ?? 'Count';
  if (action === 'FailJob' || action === 'FailIndex') return true;
  if (action === 'Count') return job.spec?.backoffLimit === 0;
  return false; // Ignore, or an action this operator does not know: not a verdict
}

function ruleMatches(rule: PodFailureRule, pod: KubeObject, t: Terminated): boolean {
  if (rule.onExitCodes) {
    const { containerName, operator, values = [] } = rule.onExitCodes;
    if (containerName !== undefined && containerName !== RUNNER_CONTAINER) return false;
    // Kubernetes never matches exit code 0 with an onExitCodes rule.
    if (t.exitCode === undefined || t.exitCode === 0) return false;
    const listed = values.includes(t.exitCode);
    return operator === 'NotIn' ? !listed : listed;
  }
  if (rule.onPodConditions) {
    const conditions: { type?: string; status?: string }[] = pod.status?.conditions ?? [];
    return rule.onPodConditions.some((want) =>
      conditions.some((c) => c.type === want.type && c.status === (want.status ?? 'True')),
    );
  }
  return false;
}

/**
 * What a runner Job produced: the runner's JSON result from the newest terminated pod's termination message,
 * or, when there is none (pod deleted, image missing, OOM), the Job's own failure reason. A Job without a
 * Complete or Failed condition yet is finished when its pod's result is final (earlyOutcome); a Failed Job
 * whose pod's result is a final success (earlyOutcome's rules: its own controlled pod, exit 0) succeeded, so
 * the order of the Job and pod watch events never changes the verdict.
 */
export function readJobOutcome(job: KubeObject, pods: readonly KubeObject[]): JobOutcome {
  const complete = jobCondition(job, 'Complete');
  const failed = jobCondition(job, 'Failed');
  if (!complete && !failed) return earlyOutcome(job, pods) ?? { state: 'running' };
  if (!complete) {
    // Failed, yet its own pod's runner exited 0 with a success result (the Job controller counted the pod
    // only after activeDeadlineSeconds had passed): the work was done. The same facts give the same verdict
    // whether the pod event (earlyOutcome) or the Job's Failed condition arrived first.
    const early = earlyOutcome(job, pods);
    if (early?.state === 'succeeded') return early;
  }
  const state = complete ? 'succeeded' : 'failed';
  const finishedAt: string =
    job.status?.completionTime ?? (complete ?? failed).lastTransitionTime ?? new Date().toISOString();
  const terminated: Terminated[] = pods
    .flatMap((p) => (p.status?.containerStatuses ?? []).map((c: any) => c.state?.terminated).filter(Boolean))
    .sort((a: any, b: any) => String(b.finishedAt ?? '').localeCompare(String(a.finishedAt ?? '')));
  for (const t of terminated) {
    const r = parseResult(t.message);
    if (r) return { ...finishedFrom(r), state: r.success ? state : 'failed' };
  }
  if (!terminated.length) {
    // Job and pod caches come from separate watches: a Complete Job says nothing about what its runner
    // reported until the pod's terminated container arrives (or is known to be lost).
    return {
      state: 'unread',
      finishedAt:
        job.status?.completionTime ??
        (complete ?? failed).lastTransitionTime ??
        job.status?.startTime ??
        job.metadata.creationTimestamp ??
        new Date(0).toISOString(),
      jobSucceeded: !!complete,
      reason: 'OutcomeUnknown',
      message: `Job ${job.metadata.name} ${complete ? 'completed' : `failed (${`${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.trim()})`}, but ${pods.length ? 'its pod shows no finished runner' : 'its pod is gone'}, so no runner result could be read`,
    };
  }
  const last = terminated[0] as { exitCode?: number; reason?: string; message?: string } | undefined;
  const why = failed
    ? `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.trim()
    : 'completed without a runner result';
  const tail = last?.message
    ? ` (last output: ${last.message.slice(-300)})`
    : ` (exit code ${last?.exitCode}, ${last?.reason})`;
  return { state: 'failed', finishedAt, message: `${why}${tail}`, reason: failed?.reason ?? 'NoResult' };
}
