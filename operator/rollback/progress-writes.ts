import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';

/**
 * How often a waiting plan writes a status whose only change is a progress note (a running step's message,
 * a condition's message under the same status and reason): at most once per this interval. Everything a user
 * or `kubectl wait` acts on (phase, a step's start or result, a condition's status or reason, the plan's
 * records) is written at once.
 */
export const PROGRESS_WRITE_INTERVAL_MS = 5_000;

export type ProgressWrite =
  | { write: true; why: 'decision' | 'events' | 'first' | 'interval' }
  /** Not now: the note is due in retryInMs; none when nothing at all changed. */
  | { write: false; retryInMs?: number };

/**
 * Whether a waiting plan writes `next` over `written` (the status the API server holds), given when this
 * process last wrote the plan's status (epoch ms, undefined when it has not). A skipped note is not lost: the
 * status in the API server still lacks it, so the next reconcile (a watch event, or the retry this asks for
 * at the end of the interval) sees the same difference and writes the latest note then.
 */
export function progressWrite(
  written: RollbackPlanStatus,
  next: RollbackPlanStatus,
  lastWriteAt: number | undefined,
  now: number,
  eventsPending = false,
  intervalMs = PROGRESS_WRITE_INTERVAL_MS,
): ProgressWrite {
  // Events are recorded after the status write that carries their change: never held back.
  if (eventsPending) return { write: true, why: 'events' };
  if (canonical(withoutNotes(written)) !== canonical(withoutNotes(next)))
    return { write: true, why: 'decision' };
  // The same status in another key order (the API server's vs ours): a write would change nothing.
  if (canonical(written) === canonical(next)) return { write: false };
  if (lastWriteAt === undefined) return { write: true, why: 'first' };
  const since = now - lastWriteAt;
  if (since >= intervalMs || since < 0) return { write: true, why: 'interval' };
  return { write: false, retryInMs: intervalMs - since };
}

/** The status without its progress notes: what is left must be written at once when it changes. */
function withoutNotes(status: RollbackPlanStatus): unknown {
  return {
    ...status,
    ...(status.steps
      ? {
          steps: status.steps.map((s) => {
            if (s.result !== 'Running') return s;
            const { message: _note, ...rest } = s;
            return rest;
          }),
        }
      : {}),
    ...(status.conditions
      ? {
          conditions: status.conditions.map((c) => {
            const { message: _note, ...rest } = c;
            return rest;
          }),
        }
      : {}),
  };
}

/**
 * JSON with every object's keys sorted: the status read back from the API server has its keys in another
 * order than the one this process builds (and absent keys equal undefined ones, as in JSON).
 */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
