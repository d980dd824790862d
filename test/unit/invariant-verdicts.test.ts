import { describe, expect, it } from 'vitest';
import { planVerdict, scheduleVerdict } from '../support/invariant-verdicts.js';

// The predicate of the invariant test must be able to fail: these pin what counts as "names its problem".
const c = (type: string, status: string, reason: string, message = '') => ({ type, status, reason, message });
const obj = (status: object | undefined, annotations?: Record<string, string>) => ({
  metadata: { name: 'x', ...(annotations ? { annotations } : {}) },
  ...(status ? { status } : {}),
});

describe('planVerdict', () => {
  it.each([
    ['no status', obj(undefined), false],
    [
      'Running, generic Ready',
      obj({ phase: 'Running', conditions: [c('Ready', 'False', 'Running', 'rolling back')] }),
      false,
    ],
    [
      'Ready=False with a specific reason but no message',
      obj({ conditions: [c('Ready', 'False', 'HTTPCheckFailing')] }),
      false,
    ],
    ['Stalled=True without a message', obj({ conditions: [c('Stalled', 'True', 'Oops')] }), false],
    ['Failed', obj({ phase: 'Failed' }), true],
    ['DryRunComplete', obj({ phase: 'DryRunComplete' }), true],
    [
      'Ready=False naming the problem',
      obj({ phase: 'Running', conditions: [c('Ready', 'False', 'HTTPCheckFailing', 'GET /x: 500')] }),
      true,
    ],
    ['Stalled=True with a message', obj({ conditions: [c('Stalled', 'True', 'InvalidSpec', 'bad')] }), true],
  ])('%s', (_n, plan, ok) => expect(planVerdict(plan).ok).toBe(ok));
});

describe('scheduleVerdict', () => {
  const ready = { conditions: [c('Ready', 'True', 'Scheduled', 'CronJob x')] };
  const job = (annotations: Record<string, string> = {}) => ({
    metadata: { name: 'x-backup-now-1', annotations },
    status: { active: 1 },
  });
  it.each([
    ['no status', obj(undefined), [], false],
    ['Ready=True', obj(ready), [], true],
    [
      'Ready=False/SecretNotFound with a message',
      obj({ conditions: [c('Ready', 'False', 'SecretNotFound', 'no db')] }),
      [],
      true,
    ],
    ['backup-now not acknowledged', obj(ready, { 'rollback.nxtnewday.io/backup-now': 'now' }), [], false],
    [
      'backup-now acknowledged, Job not recorded',
      obj(
        { ...ready, lastBackupNow: { annotationValue: 'now', jobName: 'x-backup-now-1' } },
        { 'rollback.nxtnewday.io/backup-now': 'now' },
      ),
      [job()],
      false,
    ],
    [
      'backup-now acknowledged and recorded',
      obj(
        { ...ready, lastBackupNow: { annotationValue: 'now', jobName: 'x-backup-now-1' } },
        { 'rollback.nxtnewday.io/backup-now': 'now' },
      ),
      [job({ 'rollback.nxtnewday.io/recorded': 'failed' })],
      true,
    ],
    [
      'backup-now Job stuck, named on LastBackupSucceeded',
      obj(
        {
          conditions: [
            ...ready.conditions,
            c(
              'LastBackupSucceeded',
              'False',
              'RunnerPodUnschedulable',
              'backup Job x-backup-now-1: pod p cannot be scheduled',
            ),
          ],
          lastBackupNow: { annotationValue: 'now', jobName: 'x-backup-now-1' },
        },
        { 'rollback.nxtnewday.io/backup-now': 'now' },
      ),
      [job()],
      true,
    ],
  ])('%s', (_n, s, jobs, ok) => expect(scheduleVerdict(s, jobs, []).ok).toBe(ok));
});
