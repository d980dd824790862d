import { describe, expect, it } from 'vitest';
import { checkDrill, isResultOf } from './drill.js';

describe('drill: the test restore result of its own request', () => {
  const r = (jobName: string | undefined, finishedAt: string, backupId = 'b1') => ({
    backupId,
    finishedAt,
    result: 'Succeeded' as const,
    ...(jobName ? { jobName } : {}),
  });
  const handled = { jobName: 'app-restore-now-1', backupId: 'b1' };
  it("is not another Job's newer result of the same backup (a scheduled test restore)", () => {
    expect(
      isResultOf(r('app-verify-1', '2026-01-01T00:02:00Z'), handled, r(undefined, '2026-01-01T00:01:00Z')),
    ).toBe(false);
  });
  it("is the request's own Job's result", () => {
    expect(isResultOf(r('app-restore-now-1', '2026-01-01T00:02:00Z'), handled, undefined)).toBe(true);
  });
});

describe('drill: its flag checks', () => {
  it('refuses --schedule with --no-database (the schedule would be ignored), as readiness does', () => {
    expect(() => checkDrill({ database: false, schedule: 'shop-db' })).toThrow(
      '--schedule and --no-database exclude each other',
    );
    expect(() => checkDrill({ database: true, schedule: 'shop-db' })).not.toThrow();
    expect(() => checkDrill({ database: false })).not.toThrow();
  });
});
