import { describe, expect, it, vi } from 'vitest';
import { ExponentialBackoff, WorkQueue } from './workqueue.js';

describe('WorkQueue', () => {
  it('deduplicates keys that are already queued', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key being processed to a second worker, and re-queues it once on done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((v) => (second = v));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(k!);
    await Promise.resolve();
    expect(second).toBe('a');
    expect(q.length).toBe(0);
  });

  it('keeps the earliest ready time for delayed adds', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 10_000);
    q.addAfter('a', 20);
    const t0 = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  // Defect 8: setTimeout(fn, 600h) fires after 1 ms, so a 600h requeue became a hot loop.
  it('holds a requeue beyond 2^31-1 ms for its whole delay', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
    try {
      const q = new WorkQueue();
      q.addAfter('rpo', 600 * 3_600_000);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(q.length, 'queued within a minute').toBe(0);
      await vi.advanceTimersByTimeAsync(600 * 3_600_000);
      expect(q.length, 'queued after 600 h').toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves pending getters with undefined on shutdown and waits for in-flight work', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    const pending = q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    expect(await pending).toBeUndefined();
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(k!);
    await drain;
    expect(drained).toBe(true);
    q.add('b');
    expect(q.length).toBe(0);
  });
});

describe('ExponentialBackoff', () => {
  it('doubles per failure up to the cap and resets on forget', () => {
    const b = new ExponentialBackoff(5, 100);
    expect([b.when('k'), b.when('k'), b.when('k'), b.when('k'), b.when('k'), b.when('k')]).toEqual([
      5, 10, 20, 40, 80, 100,
    ]);
    expect(b.numRequeues('k')).toBe(6);
    b.forget('k');
    expect(b.when('k')).toBe(5);
  });
});
