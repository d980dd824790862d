import { describe, expect, it } from 'vitest';
import { leaseHealth } from './health-report.js';
import {
  accessCheck,
  backupFreshCheck,
  dryRunCheck,
  leaderCheck,
  noScheduleCheck,
  readinessLine,
  readinessOf,
  testRestoreCheck,
} from './readiness-checks.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const schedule = (status: Record<string, unknown>, rpo?: string) => ({
  metadata: { name: 'db' },
  spec: rpo ? { objectives: { rpo } } : {},
  status,
});
const backups = (ageSeconds: number) => ({
  backups: [{ id: 'b1', finishedAt: ago(ageSeconds), verified: true }],
});

describe('readiness checks', () => {
  it('backup freshness: the RPO objective, or --max-backup-age', () => {
    expect(backupFreshCheck(schedule(backups(1800)), undefined, NOW).result).toBe('Pass');
    expect(backupFreshCheck(schedule(backups(1800), '15m'), undefined, NOW)).toMatchObject({
      name: 'fresh backup (db)',
      result: 'Fail',
      detail: 'newest verified backup b1 finished 30m ago (limit RPO 15m)',
    });
    expect(backupFreshCheck(schedule(backups(1800)), 600_000, NOW).detail).toContain('--max-backup-age 10m');
    expect(backupFreshCheck(schedule({}), undefined, NOW)).toMatchObject({
      result: 'Fail',
      detail: 'no verified backup yet (limit RPO 1h)',
    });
  });
  it('test restore: succeeded and recent enough', () => {
    const week = 7 * 86_400_000;
    const t = (result: string, age: number) =>
      schedule({ lastTestRestore: { backupId: 'b1', finishedAt: ago(age), result, durationSeconds: 4 } });
    expect(testRestoreCheck(t('Succeeded', 3600), week, NOW)).toMatchObject({
      result: 'Pass',
      detail: 'test restore of b1 Succeeded 1h ago in 4s',
    });
    expect(testRestoreCheck(t('Failed', 3600), week, NOW).result).toBe('Fail');
    expect(testRestoreCheck(t('Succeeded', 8 * 86_400), week, NOW)).toMatchObject({ result: 'Fail' });
    expect(testRestoreCheck(schedule({}), week, NOW).detail).toMatch(/^never test-restored/);
  });
  it('dry run: a finished report that would succeed', () => {
    const plan = (status: Record<string, unknown>) => ({ metadata: { name: 'readiness-dry-run-x' }, status });
    const report = (wouldSucceed: boolean, message: string) => ({
      phase: 'DryRunComplete',
      dryRunReport: { wouldSucceed, summary: 's', deployments: [{ name: 'web', message }] },
    });
    expect(dryRunCheck('web', plan(report(true, 'would roll back web from revision 3 to 2')))).toMatchObject({
      name: 'rollback dry run (web)',
      result: 'Pass',
      detail: 'would roll back web from revision 3 to 2',
    });
    expect(
      dryRunCheck('web', plan(report(false, 'no rollout history found for deployment "web"'))).result,
    ).toBe('Fail');
    expect(
      dryRunCheck(
        'web',
        plan({ phase: 'Failed', conditions: [{ type: 'Ready', status: 'False', message: 'bad spec' }] }),
      ).detail,
    ).toBe('plan readiness-dry-run-x ended Failed: bad spec');
  });
  it('leader and access: Unknown when the CLI could not ask', () => {
    const where = { namespace: 's', name: 'l' };
    expect(leaderCheck(leaseHealth(where, undefined, NOW)).result).toBe('Fail');
    expect(leaderCheck(leaseHealth(where, { unreadable: 'forbidden' }, NOW)).result).toBe('Unknown');
    expect(accessCheck('a', 'create x', { allowed: true })).toMatchObject({
      result: 'Pass',
      detail: 'create x: allowed',
    });
    expect(accessCheck('a', 'create x', { allowed: false, reason: 'no rule' }).detail).toBe(
      'create x: denied (no rule)',
    );
    expect(accessCheck('a', 'x', { unreadable: 'forbidden' }).result).toBe('Unknown');
  });
  it('Unknown fails the gate unless --allow-unknown, and the verdict line names what could not be checked', () => {
    const pass = { name: 'p', result: 'Pass', detail: '' } as const;
    const unknown = { name: 'operator leader', result: 'Unknown', detail: '' } as const;
    const fail = { name: 'fresh backup (db)', result: 'Fail', detail: '' } as const;
    const skip = { name: 'backups', result: 'Skip', detail: '' } as const;
    const strict = readinessOf([pass, unknown, skip]);
    expect(strict).toMatchObject({ ready: false, failed: [], unknown: ['operator leader'] });
    expect(readinessLine(strict)).toBe(
      'not ready: could not check operator leader (--allow-unknown accepts that)',
    );
    const lenient = readinessOf([pass, unknown, skip], { allowUnknown: true });
    expect(lenient.ready).toBe(true);
    expect(readinessLine(lenient)).toBe('ready (--allow-unknown: could not check operator leader)');
    const both = readinessOf([fail, unknown], { allowUnknown: true });
    expect(both.ready).toBe(false);
    expect(readinessLine(both)).toBe(
      'not ready: failed fresh backup (db); could not check operator leader (--allow-unknown accepts that)',
    );
    expect(readinessLine(readinessOf([pass, skip]))).toBe('ready');
  });
  it('no BackupSchedule: a failure only when a plan that may act has a database target', () => {
    expect(noScheduleCheck('shop', ['db-restore'])).toEqual({
      name: 'backups',
      result: 'Fail',
      detail: 'no BackupSchedule in namespace shop, but RollbackPlan db-restore has a database target',
    });
    expect(noScheduleCheck('shop', [])).toMatchObject({ result: 'Skip' });
    expect(readinessOf([noScheduleCheck('shop', [])]).ready).toBe(true);
  });
});
