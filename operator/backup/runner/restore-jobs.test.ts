import { describe, expect, it } from 'vitest';
import {
  cpuQuota,
  MAX_RESTORE_JOBS,
  podRestoreJobs,
  RESTORE_JOBS_ENV,
  restoreJobs,
  restoreJobsOverride,
} from './restore-jobs.js';
import { RunnerFailure } from './failure.js';
import { withSerialFallback } from './restore.js';

describe('cpuQuota', () => {
  it.each([
    ['max 100000', undefined],
    ['200000 100000', 2],
    ['150000 100000\n', 1.5],
    ['50000 100000', 0.5],
    ['garbage', undefined],
    ['0 100000', undefined],
  ])('cgroup v2 cpu.max %j -> %j CPUs', (text, cpus) => {
    expect(cpuQuota(text)).toBe(cpus);
  });

  it('reads cgroup v1 quota/period; -1 means no limit', () => {
    expect(cpuQuota(undefined, { quota: '300000\n', period: '100000\n' })).toBe(3);
    expect(cpuQuota(undefined, { quota: '-1', period: '100000' })).toBeUndefined();
    expect(cpuQuota(undefined)).toBeUndefined();
  });
});

describe('restoreJobs', () => {
  it.each([
    [{ available: 2 }, 2],
    [{ available: 1 }, 1],
    [{ available: 64 }, MAX_RESTORE_JOBS],
    [{ available: 16, quota: 2 }, 2],
    [{ available: 16, quota: 1.5 }, 2],
    [{ available: 16, quota: 0.5 }, 1],
    [{ available: 2, quota: 8 }, 2],
  ])('%j -> %d jobs', (cpus, jobs) => {
    expect(restoreJobs(cpus)).toBe(jobs);
  });
});

describe('NXT_RESTORE_JOBS', () => {
  it('overrides the CPU-derived count within 1..MAX_RESTORE_JOBS; anything else is ignored', () => {
    expect(restoreJobsOverride('1')).toBe(1);
    expect(restoreJobsOverride(' 3 ')).toBe(3);
    expect(restoreJobsOverride('99')).toBe(MAX_RESTORE_JOBS);
    for (const bad of [undefined, '', '0', '-2', '1.5', 'four'])
      expect(restoreJobsOverride(bad)).toBeUndefined();
    expect(podRestoreJobs({ [RESTORE_JOBS_ENV]: '1' })).toBe(1);
  });
});

describe('withSerialFallback', () => {
  it('a failed parallel restore starts over once with one job; a serial failure is final', async () => {
    const calls: number[] = [];
    let resets = 0;
    await withSerialFallback(
      4,
      async (jobs) => {
        calls.push(jobs);
        if (jobs > 1) throw new RunnerFailure('RestoreFailed', 'FATAL: too many connections for role "app"');
      },
      async () => void resets++,
    );
    expect(calls).toEqual([4, 1]);
    expect(resets).toBe(1);

    const serial: number[] = [];
    await expect(
      withSerialFallback(
        1,
        async (jobs) => {
          serial.push(jobs);
          throw new Error('broken archive');
        },
        async () => void resets++,
      ),
    ).rejects.toThrow('broken archive');
    expect(serial).toEqual([1]);

    const both: number[] = [];
    await expect(
      withSerialFallback(
        2,
        async (jobs) => {
          both.push(jobs);
          throw new RunnerFailure('RestoreFailed', `failed with ${jobs}`);
        },
        async () => undefined,
      ),
    ).rejects.toThrow('failed with 1');
    expect(both).toEqual([2, 1]);

    // A storage error would fail the serial run the same way: no second try.
    const storage: number[] = [];
    await expect(
      withSerialFallback(
        4,
        async (jobs) => {
          storage.push(jobs);
          throw new RunnerFailure('StorageFailed', 'reading backup x: EIO');
        },
        async () => undefined,
      ),
    ).rejects.toThrow('EIO');
    expect(storage).toEqual([4]);
  });
});
