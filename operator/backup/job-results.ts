import type { KubeObject } from '../kube/rest.js';
import { RunnerResultSchema, type RunnerResult } from './runner/result.js';

/** A finished Job's verdict: the runner's result, or the Job's own failure when the runner left none. */
export interface FinishedOutcome {
  state: 'succeeded' | 'failed';
  finishedAt: string;
  result?: RunnerResult;
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

/**
 * What a finished runner Job produced: the runner's JSON result from the newest terminated pod's termination
 * message, or, when there is none (pod deleted, image missing, OOM), the Job's own failure reason.
 */
export function readJobOutcome(job: KubeObject, pods: readonly KubeObject[]): JobOutcome {
  const complete = jobCondition(job, 'Complete');
  const failed = jobCondition(job, 'Failed');
  if (!complete && !failed) return { state: 'running' };
  const state = complete ? 'succeeded' : 'failed';
  const finishedAt: string =
    job.status?.completionTime ?? (complete ?? failed).lastTransitionTime ?? new Date().toISOString();
  const terminated = pods
    .flatMap((p) => (p.status?.containerStatuses ?? []).map((c: any) => c.state?.terminated).filter(Boolean))
    .sort((a: any, b: any) => String(b.finishedAt ?? '').localeCompare(String(a.finishedAt ?? '')));
  for (const t of terminated) {
    const text: string = t.message ?? '';
    try {
      const parsed = RunnerResultSchema.safeParse(JSON.parse(text));
      if (parsed.success) {
        const r = parsed.data;
        return {
          state: r.success ? state : 'failed',
          finishedAt: r.finishedAt,
          result: r,
          message: r.message,
          reason: r.success ? 'Succeeded' : (r.reason ?? 'Failed'),
        };
      }
    } catch {
      /* not JSON: a crash before the runner wrote its result; fall through */
    }
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
