import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cappedDelay, MAX_TIMER_DELAY_MS, setLongInterval, setLongTimeout, sleep } from './timers.js';

const HOUR = 3_600_000;

describe('cappedDelay', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [1500, 1500],
    [MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS],
    [MAX_TIMER_DELAY_MS + 1, MAX_TIMER_DELAY_MS],
    [600 * HOUR, MAX_TIMER_DELAY_MS],
    [Infinity, MAX_TIMER_DELAY_MS],
    [NaN, MAX_TIMER_DELAY_MS],
  ])('%d ms -> %d ms', (ms, want) => expect(cappedDelay(ms)).toBe(want));
});

describe('setLongTimeout', () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  // A plain setTimeout(fn, 600h) fires after 1 ms: the hot loop of defect 8.
  it('fires a 600 h delay after 600 h, not after 1 ms, re-arming at the cap', () => {
    const fn = vi.fn();
    setLongTimeout(fn, 600 * HOUR);
    vi.advanceTimersByTime(1000);
    expect(fn, 'fired within a second').not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS);
    expect(fn, 'fired at the first capped piece').not.toHaveBeenCalled();
    vi.advanceTimersByTime(600 * HOUR - MAX_TIMER_DELAY_MS - 1000 - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('never fires for Infinity or NaN within a year', () => {
    const fn = vi.fn();
    setLongTimeout(fn, Infinity);
    setLongTimeout(fn, NaN);
    vi.advanceTimersByTime(365 * 24 * HOUR);
    expect(fn).not.toHaveBeenCalled();
  });

  it('fires asynchronously for 0 and negative delays, and not at all once cancelled', () => {
    const fn = vi.fn();
    setLongTimeout(fn, 0);
    setLongTimeout(fn, -1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(0);
    expect(fn).toHaveBeenCalledTimes(2);
    const never = vi.fn();
    const t = setLongTimeout(never, 600 * HOUR);
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS + 10);
    t.cancel();
    vi.advanceTimersByTime(600 * HOUR);
    expect(never).not.toHaveBeenCalled();
  });
});

describe('setLongInterval and sleep', () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('repeats every period, also beyond the cap', () => {
    const fn = vi.fn();
    const t = setLongInterval(fn, 1000 * HOUR);
    vi.advanceTimersByTime(999 * HOUR);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(HOUR);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1000 * HOUR);
    expect(fn).toHaveBeenCalledTimes(2);
    t.cancel();
    vi.advanceTimersByTime(5000 * HOUR);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('sleep ends on abort', async () => {
    const ac = new AbortController();
    let woke = false;
    const p = sleep(600 * HOUR, ac.signal).then(() => (woke = true));
    await vi.advanceTimersByTimeAsync(10 * HOUR);
    expect(woke).toBe(false);
    ac.abort();
    await p;
    expect(woke).toBe(true);
  });
});
