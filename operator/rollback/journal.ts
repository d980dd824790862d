import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';

export type Step = NonNullable<RollbackPlanStatus['steps']>[number];
export type StepResult = Step['result'];

// Millisecond precision: an emergency rollback takes well under a second, and RTO is computed from these.
const ts = (d: Date) => d.toISOString();

export function findStep(steps: readonly Step[] | undefined, name: string): Step | undefined {
  return steps?.find((s) => s.name === name);
}

/** Adds a Running entry for `name` unless one exists (a resumed step keeps its original start time). */
export function startStep(
  steps: readonly Step[] | undefined,
  name: string,
  now: Date,
  message?: string,
): Step[] {
  const list = [...(steps ?? [])];
  if (!list.some((s) => s.name === name))
    list.push({ name, startedAt: ts(now), result: 'Running', ...(message ? { message } : {}) });
  return list;
}

/** Marks `name` finished (adding it if it never started), with a bounded message. */
export function finishStep(
  steps: readonly Step[] | undefined,
  name: string,
  result: Exclude<StepResult, 'Running'>,
  message: string,
  now: Date,
): Step[] {
  const list = startStep(steps, name, now);
  const msg = message.length > 1024 ? message.slice(0, 1021) + '...' : message;
  return list.map((s) => (s.name === name ? { ...s, finishedAt: ts(now), result, message: msg } : s));
}

/** Updates the message of a running step (progress shown by kubectl describe). */
export function noteStep(steps: readonly Step[] | undefined, name: string, message: string): Step[] {
  const msg = message.length > 1024 ? message.slice(0, 1021) + '...' : message;
  return (steps ?? []).map((s) => (s.name === name && s.result === 'Running' ? { ...s, message: msg } : s));
}

export const isFinished = (s: Step | undefined) => !!s && s.result !== 'Running';

export const secondsBetween = (from: string, to: Date) =>
  Math.max(0, Math.round((to.getTime() - Date.parse(from)) / 10) / 100);

export { ts as timestamp };
