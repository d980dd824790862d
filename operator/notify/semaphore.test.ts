import { describe, expect, it } from 'vitest';
import { Semaphore } from './semaphore.js';

describe('Semaphore', () => {
  it('lets at most `limit` hold it, then the waiters in order', async () => {
    const s = new Semaphore(2);
    let peak = 0;
    const order: number[] = [];
    const work = async (i: number) => {
      const release = await s.acquire();
      peak = Math.max(peak, s.active);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      release();
      release(); // twice is once
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(work));
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.active).toBe(0);
  });

  it('an aborted wait leaves the queue and never takes a slot', async () => {
    const s = new Semaphore(1);
    const release = await s.acquire();
    const ac = new AbortController();
    const waiting = s.acquire(ac.signal);
    ac.abort();
    await expect(waiting).rejects.toThrow('aborted');
    release();
    expect(s.active).toBe(0);
    const again = await s.acquire();
    expect(s.active).toBe(1);
    again();
  });
});
