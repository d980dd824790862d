import { describe, expect, it } from 'vitest';
import { cpuQuota, MAX_RESTORE_JOBS, restoreJobs } from './restore-jobs.js';

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
