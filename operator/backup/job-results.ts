import type { KubeObject } from '../kube/rest.js';
import { RunnerResultSchema, type RunnerResult } from './runner/result.js';

export type JobOutcome =
  | { state: 'running' }
  | {
      state: 'succeeded' | 'failed';
      finishedAt: string;
      result?: RunnerResult;
      message: string;
      reason: string;
    };

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
  const last = terminated[0] as { exitCode?: number; reason?: string; message?: string } | undefined;
  const why = failed
    ? `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.trim()
    : 'completed without a runner result';
  const tail = last?.message
    ? ` (last output: ${last.message.slice(-300)})`
    : last
      ? ` (exit code ${last.exitCode}, ${last.reason})`
      : '';
  return { state: 'failed', finishedAt, message: `${why}${tail}`, reason: failed?.reason ?? 'NoResult' };
}
