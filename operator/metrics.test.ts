import { describe, expect, it } from 'vitest';
import { createMetrics, forgetPlan, forgetSchedule, setBackupLocation } from './metrics.js';

const seriesOf = async (m: ReturnType<typeof createMetrics>, name: string) =>
  (await m.registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('forgetting the series of objects that are gone', () => {
  it('drops every series of one schedule (gauges, counters, histogram buckets) and keeps the others', async () => {
    const m = createMetrics({ defaultMetrics: false });
    for (const schedule of ['gone', 'kept']) {
      const labels = { namespace: 'shop', schedule };
      m.rpoSeconds.set(labels, 60);
      m.rpoObjectiveSeconds.set(labels, 3600);
      m.backupLastSuccess.set(labels, 1_700_000_000);
      m.backupSize.set(labels, 1024);
      m.backupTotal.inc({ ...labels, result: 'succeeded' });
      m.backupTotal.inc({ ...labels, result: 'failed' });
      m.backupDuration.observe(labels, 12);
      m.testRestoreTotal.inc({ ...labels, result: 'failed' });
      await setBackupLocation(m, 'shop', schedule, `s3://bucket/${schedule}`);
    }
    m.rpoSeconds.set({ namespace: 'other', schedule: 'gone' }, 5);
    await forgetSchedule(m, 'shop', 'gone');
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/namespace="shop",schedule="gone"/);
    for (const name of [
      'nxt_rpo_seconds',
      'nxt_rpo_objective_seconds',
      'nxt_backup_last_success_timestamp_seconds',
      'nxt_backup_size_bytes',
      'nxt_backup_total',
      'nxt_backup_duration_seconds_bucket',
      'nxt_test_restore_total',
      'nxt_backup_location_info',
    ])
      expect(
        (await seriesOf(m, name)).some((l) => l.includes('schedule="kept"')),
        name,
      ).toBe(true);
    expect(text).toContain('nxt_rpo_seconds{namespace="other",schedule="gone"} 5');
  });

  it('drops the nxt_rto_seconds series of one plan, whatever its scope', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.rtoSeconds.set({ namespace: 'shop', plan: 'gone', scope: 'full' }, 42);
    m.rtoSeconds.set({ namespace: 'shop', plan: 'kept', scope: 'app' }, 3);
    m.rollbackDuration.observe({ scope: 'full', result: 'succeeded' }, 42);
    await forgetPlan(m, 'shop', 'gone');
    expect(await seriesOf(m, 'nxt_rto_seconds')).toEqual([
      'nxt_rto_seconds{namespace="shop",plan="kept",scope="app"} 3',
    ]);
    expect((await seriesOf(m, 'nxt_rollback_duration_seconds_count')).length).toBe(1);
  });
});

describe('nxt_rollback_plans_awaiting_approval', () => {
  it('is counted from its source at each scrape, so a plan that stops waiting (or is deleted) drops out', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let waiting = new Map([
      ['shop', 2],
      ['blog', 1],
    ]);
    m.countAwaitingApprovalFrom(() => waiting);
    expect(await seriesOf(m, 'nxt_rollback_plans_awaiting_approval')).toEqual([
      'nxt_rollback_plans_awaiting_approval{namespace="shop"} 2',
      'nxt_rollback_plans_awaiting_approval{namespace="blog"} 1',
    ]);
    waiting = new Map([['shop', 1]]);
    expect(await seriesOf(m, 'nxt_rollback_plans_awaiting_approval')).toEqual([
      'nxt_rollback_plans_awaiting_approval{namespace="shop"} 1',
    ]);
  });
});

describe('nxt_backup_location_info', () => {
  it('names the location with one series per schedule: a changed location replaces it, a long one is cut', async () => {
    const m = createMetrics({ defaultMetrics: false });
    await setBackupLocation(m, 'shop', 'db', 'claim db-backups');
    await setBackupLocation(m, 'shop', 'db', 'claim db-backups');
    await setBackupLocation(m, 'shop', 'other', 's3://b/other');
    expect(await seriesOf(m, 'nxt_backup_location_info')).toEqual([
      'nxt_backup_location_info{namespace="shop",schedule="db",type="pvc",location="claim db-backups"} 1',
      'nxt_backup_location_info{namespace="shop",schedule="other",type="s3",location="s3://b/other"} 1',
    ]);
    await setBackupLocation(m, 'shop', 'db', `s3://bucket/${'p'.repeat(300)}`);
    const series = await seriesOf(m, 'nxt_backup_location_info');
    expect(series).toHaveLength(2);
    const db = series.find((l) => l.includes('schedule="db"'))!;
    expect(db).toContain('type="s3"');
    const location = /location="([^"]*)"/.exec(db)![1]!;
    expect([...location].length).toBe(128);
    expect(location.startsWith('s3://bucket/ppp')).toBe(true);
  });
});
