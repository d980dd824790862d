/**
 * Node's timers hold a signed 32-bit delay: anything above 2^31-1 ms (about 24.8 days), and NaN, fires after
 * 1 ms instead. A requeue computed from a user's objective (an RPO of 600h, an HTTP check period of 600h)
 * would become a hot loop. Every delay the operator schedules goes through this module.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** The delay a single setTimeout may be given for `ms`: clamped to [0, MAX_TIMER_DELAY_MS]; NaN waits longest. */
export function cappedDelay(ms: number): number {
  if (Number.isNaN(ms)) return MAX_TIMER_DELAY_MS;
  return Math.min(Math.max(ms, 0), MAX_TIMER_DELAY_MS);
}

export interface LongTimer {
  cancel(): void;
  /** Like Timeout.unref(): a pending timer no longer keeps the process alive. */
  unref(): LongTimer;
}

/**
 * setTimeout for any delay: a delay beyond the cap is slept in capped pieces, re-evaluating the remaining time
 * (by the wall clock) each time a piece fires.
 */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const deadline = Date.now() + cappedDelayForDeadline(ms);
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  let ref = true;
  // Never calls fn synchronously, even for a delay of 0, as setTimeout does not.
  const arm = () => {
    timer = setTimeout(
      () => {
        if (cancelled) return;
        if (Date.now() >= deadline) fn();
        else arm();
      },
      cappedDelay(deadline - Date.now()),
    );
    if (!ref) timer.unref();
  };
  arm();
  const handle: LongTimer = {
    cancel() {
      cancelled = true;
      if (timer) clearTimeout(timer);
    },
    unref() {
      ref = false;
      timer?.unref();
      return handle;
    },
  };
  return handle;
}

/** A repeating timer with a capped period (setInterval has the same 32-bit limit). */
export function setLongInterval(fn: () => void, ms: number): LongTimer {
  let current: LongTimer | undefined;
  let cancelled = false;
  let ref = true;
  const tick = () => {
    if (cancelled) return;
    current = setLongTimeout(
      () => {
        fn();
        tick();
      },
      Math.max(ms, 1),
    );
    if (!ref) current.unref();
  };
  tick();
  const handle: LongTimer = {
    cancel() {
      cancelled = true;
      current?.cancel();
    },
    unref() {
      ref = false;
      current?.unref();
      return handle;
    },
  };
  return handle;
}

/** Resolves after `ms` (any size), or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      t.cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setLongTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Infinity and NaN mean "as late as representable", not "now". */
function cappedDelayForDeadline(ms: number): number {
  if (Number.isNaN(ms) || ms === Infinity) return Number.MAX_SAFE_INTEGER / 2;
  return Math.max(ms, 0);
}
