import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';

export type Armed = NonNullable<RollbackPlanStatus['armed']>;
export type WatchedRevision = NonNullable<Armed['revisions']>[number];

/** A target Deployment's current revision and when its ReplicaSet was created (if known). */
export interface CurrentRevision extends WatchedRevision {
  createdAt?: Date;
}

const iso = (d: Date) => d.toISOString();

export const sameRevisions = (a: readonly WatchedRevision[] = [], b: readonly WatchedRevision[] = []) =>
  a.length === b.length &&
  a.every((r, i) => r.deployment === b[i]!.deployment && r.revision === b[i]!.revision);

/**
 * status.armed, pure. On the first arm the window starts when the targets' newest revision appeared (the
 * newest creation of their current ReplicaSets) but never before the plan was created: a plan applied for a
 * stable app (or after an undo to an old ReplicaSet) watches from its creation, not from last week. The first
 * arm never yields a window that already passed (an operator that first sees the plan late starts it now). A
 * rearm starts it afresh at the rearm. When a target rolls out another revision while armed, the window moves
 * to it; a revision whose ReplicaSet is no newer than the window's start (an undo to an old ReplicaSet) moves
 * it to now, when the change was seen. Returns `prev` itself when nothing changed.
 */
export function armedWindow(input: {
  prev: Armed | undefined;
  current: readonly CurrentRevision[];
  planCreated: Date;
  watchWindowMs: number | undefined;
  now: Date;
  /** A rearm being handled: the window starts now. */
  rearm?: boolean;
}): Armed {
  const { prev, current, now } = input;
  const revisions = current.map(({ deployment, revision }) => ({ deployment, revision }));
  if (prev && !input.rearm && sameRevisions(prev.revisions, revisions)) return prev;
  const newest = current.reduce<Date | undefined>(
    (m, r) => (r.createdAt && (!m || r.createdAt > m) ? r.createdAt : m),
    undefined,
  );
  let since: Date;
  if (input.rearm) since = now;
  else if (!prev) {
    since = newest && newest > input.planCreated ? newest : input.planCreated;
    if (input.watchWindowMs !== undefined && since.getTime() + input.watchWindowMs <= now.getTime())
      since = now;
  } else since = newest && newest.getTime() > Date.parse(prev.since) ? newest : now;
  const until =
    input.watchWindowMs !== undefined ? new Date(since.getTime() + input.watchWindowMs) : undefined;
  return {
    since: iso(since),
    ...(until ? { until: iso(until) } : {}),
    ...(revisions.length ? { revisions } : {}),
  };
}

/** The window moved (a target rolled out another revision): holds and probe state of the old one are stale. */
export const windowMoved = (prev: Armed | undefined, next: Armed) => prev !== undefined && prev !== next;

/** The watch window has passed: the plan expires unfired. */
export const windowPassed = (armed: Armed, now: Date) =>
  armed.until !== undefined && now.getTime() >= Date.parse(armed.until);
