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

describe('WorkQueue priorities', () => {
  const takeAll = async (q: WorkQueue) => {
    const out: string[] = [];
    while (q.length) {
      const k = (await q.get())!;
      out.push(k);
      q.done(k);
    }
    return out;
  };

  it('hands out high keys before low ones, FIFO within a level', async () => {
    const q = new WorkQueue(undefined, undefined, {
      priorityOf: (k) => (k.startsWith('wait') ? 'low' : 'high'),
    });
    for (const k of ['wait-1', 'new-1', 'wait-2', 'new-2']) q.add(k);
    expect(q.lengths()).toEqual({ high: 2, low: 2 });
    expect(await takeAll(q)).toEqual(['new-1', 'new-2', 'wait-1', 'wait-2']);
  });

  it('without a priority function is the plain FIFO it was', async () => {
    const q = new WorkQueue();
    for (const k of ['c', 'a', 'b']) q.add(k);
    expect(await takeAll(q)).toEqual(['c', 'a', 'b']);
  });

  it('moves a queued low key up when it is added as high, and never down', async () => {
    const q = new WorkQueue();
    q.add('x', 'low');
    q.add('y', 'high');
    q.add('x', 'high');
    expect(q.lengths()).toEqual({ high: 2, low: 0 });
    q.add('y', 'low');
    expect(q.lengths()).toEqual({ high: 2, low: 0 });
    expect(await takeAll(q)).toEqual(['y', 'x']);
  });

  it('gives every lowShare-th take to a low key while high keys keep coming (no starvation)', async () => {
    const q = new WorkQueue(undefined, undefined, { lowShare: 4 });
    q.add('low-1', 'low');
    q.add('low-2', 'low');
    for (let i = 0; i < 8; i++) q.add(`high-${i}`, 'high');
    const order = await takeAll(q);
    expect(order).toEqual([
      'high-0',
      'high-1',
      'high-2',
      'low-1',
      'high-3',
      'high-4',
      'high-5',
      'low-2',
      'high-6',
      'high-7',
    ]);
  });

  it('re-queues a key added during processing once, at the highest priority it was added with', async () => {
    const q = new WorkQueue();
    q.add('a', 'low');
    const k = (await q.get())!;
    q.add('a', 'low');
    q.add('a', 'high');
    q.add('b', 'high');
    expect(q.length, 'a is not queued while it is processed').toBe(1);
    q.done(k);
    expect(q.lengths()).toEqual({ high: 2, low: 0 });
    expect(await takeAll(q)).toEqual(['b', 'a']);
  });

  it('asks the priority function when a delayed key comes due, and queues high if it throws', async () => {
    vi.useFakeTimers();
    try {
      let waiting = true;
      const q = new WorkQueue(undefined, undefined, {
        priorityOf: (k) => {
          if (k === 'broken') throw new Error('boom');
          return waiting ? 'low' : 'high';
        },
      });
      q.addAfter('plan', 1000);
      waiting = false;
      await vi.advanceTimersByTimeAsync(1000);
      expect(q.lengths()).toEqual({ high: 1, low: 0 });
      q.add('broken');
      expect(q.lengths()).toEqual({ high: 2, low: 0 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('drops both levels on shutDown', async () => {
    const q = new WorkQueue();
    q.add('a', 'low');
    q.add('b', 'high');
    q.shutDown();
    expect(q.length).toBe(0);
    expect(await q.get()).toBeUndefined();
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
