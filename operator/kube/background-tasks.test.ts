import { describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { BackgroundTasks } from './background-tasks.js';
import { sleep } from './timers.js';

const log = winston.createLogger({ silent: true });
const tick = () => new Promise((r) => setImmediate(r));

describe('BackgroundTasks', () => {
  it('starts a task once per key, keeps its progress note, and notifies its result', async () => {
    const tasks = new BackgroundTasks(log);
    const notify = vi.fn();
    let release!: () => void;
    const start = vi.fn(async (t: { progress(m: string): void }) => {
      t.progress('attempt 1 failed');
      await new Promise<void>((r) => (release = r));
      return 'passed';
    });
    expect(tasks.ensure('uid-1', 'http/0', start, notify)).toEqual({ state: 'running' });
    await tick();
    expect(tasks.ensure('uid-1', 'http/0', start, notify)).toEqual({
      state: 'running',
      progress: 'attempt 1 failed',
    });
    expect(start).toHaveBeenCalledTimes(1);
    expect(notify, 'progress does not wake the owner').not.toHaveBeenCalled();
    release();
    await tick();
    expect(notify).toHaveBeenCalledTimes(1);
    expect(tasks.ensure('uid-1', 'http/0', start, notify)).toEqual({ state: 'done', result: 'passed' });
    expect(start).toHaveBeenCalledTimes(1);
  });

  it('wakes the owner on a progress note given with wake, never after an abort', async () => {
    const tasks = new BackgroundTasks(log);
    const notify = vi.fn();
    let report!: (wake: boolean) => void;
    tasks.ensure(
      'uid-1',
      'http/0',
      async (t: { signal: AbortSignal; progress(m: string, o?: { wake?: boolean }): void }) => {
        report = (wake) => t.progress('attempt 1 of 3: got HTTP 503', { wake });
        await sleep(3_600_000, t.signal);
        return 'aborted';
      },
      notify,
    );
    await tick();
    report(false);
    expect(notify, 'a plain note does not wake').not.toHaveBeenCalled();
    report(true);
    expect(notify).toHaveBeenCalledTimes(1);
    expect(tasks.ensure('uid-1', 'http/0', async () => 'x', notify)).toEqual({
      state: 'running',
      progress: 'attempt 1 of 3: got HTTP 503',
    });
    tasks.abort('uid-1');
    report(true);
    await tick();
    expect(notify, 'nothing after the abort').toHaveBeenCalledTimes(1);
  });

  it('aborts the tasks of one owner without waking it, and keeps other owners running', async () => {
    const tasks = new BackgroundTasks(log);
    const notify = vi.fn();
    const signals: AbortSignal[] = [];
    const start = async ({ signal }: { signal: AbortSignal }) => {
      signals.push(signal);
      await sleep(3_600_000, signal);
      return signal.aborted ? 'aborted' : 'slept';
    };
    tasks.ensure('a', 'x', start, notify);
    tasks.ensure('a', 'y', start, notify);
    tasks.ensure('b', 'x', start, notify);
    await tick();
    expect(tasks.running()).toBe(3);
    tasks.forget('a');
    await tick();
    expect(signals.map((s) => s.aborted)).toEqual([true, true, false]);
    expect(tasks.running()).toBe(1);
    expect(notify).not.toHaveBeenCalled();
    tasks.stop();
    expect(signals[2]!.aborted).toBe(true);
    expect(tasks.ensure('c', 'x', start, notify)).toEqual({ state: 'running' });
    await tick();
    expect(signals).toHaveLength(3); // nothing starts after stop()
  });

  it('reports a task that throws as crashed', async () => {
    const tasks = new BackgroundTasks(log);
    const notify = vi.fn();
    tasks.ensure('a', 'x', () => Promise.reject(new Error('boom')), notify);
    await tick();
    expect(tasks.ensure('a', 'x', async () => 'never', notify)).toMatchObject({
      state: 'crashed',
      error: expect.stringMatching(/boom/),
    });
    expect(notify).toHaveBeenCalledTimes(1);
  });
});
