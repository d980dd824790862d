import { describe, expect, it } from 'vitest';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import { recordBackupJob } from '../backup/record.js';
import {
  failedBackupRun,
  keyOfId,
  notificationId,
  planNotificationsDue,
  scheduleNotificationsDue,
  type NotifyTarget,
} from './due.js';

const t = (name: string, extra: Partial<NotifyTarget> = {}): NotifyTarget => ({
  name,
  type: 'webhook',
  urlSecretRef: { name: 's', key: 'url' },
  ...extra,
});
const NOW = new Date('2026-11-29T10:00:00Z');
const plan = (status: RollbackPlanStatus, spec: object = {}) => ({
  metadata: { creationTimestamp: '2026-11-29T09:00:00Z' },
  spec,
  status,
});
const ids = (r: { due: { id: string }[] }) => r.due.map((d) => d.id);

describe('planNotificationsDue', () => {
  it.each<[string, RollbackPlanStatus, string[]]>([
    ['nothing yet', {}, []],
    ['started', { phase: 'Running', startedAt: '2026-11-29T09:59:00Z' }, ['all/Started']],
    [
      'succeeded',
      { phase: 'Succeeded', startedAt: '2026-11-29T09:59:00Z' },
      ['all/Started', 'all/Succeeded'],
    ],
    ['failed before it started (invalid spec)', { phase: 'Failed' }, ['all/Failed']],
    [
      'fired, waiting for approval',
      {
        phase: 'AwaitingApproval',
        trigger: { firedAt: '2026-11-29T09:58:00Z', condition: 'down', type: 'DeploymentUnavailable' },
      },
      ['all/Triggered', 'all/AwaitingApproval'],
    ],
    [
      'a manual trigger record is not a Triggered event',
      {
        phase: 'Running',
        startedAt: '2026-11-29T09:59:00Z',
        trigger: { firedAt: '2026-11-29T09:59:00Z', condition: 'Manual', type: 'Manual' },
      },
      ['all/Started'],
    ],
    [
      'approved by a human, then started',
      {
        phase: 'Running',
        startedAt: '2026-11-29T09:59:00Z',
        approval: { approvedBy: 'alice', approvedAt: '2026-11-29T09:59:00Z' },
      },
      ['all/Approved', 'all/Started'],
    ],
    [
      'automatic approval is no Approved event',
      { phase: 'Running', approval: { approvedAt: '2026-11-29T09:59:00Z', automatic: true } },
      [],
    ],
    [
      'vetoed',
      { phase: 'Vetoed', veto: { vetoedBy: 'bob', vetoedAt: '2026-11-29T09:59:00Z' } },
      ['all/Vetoed'],
    ],
    ['expired', { phase: 'Expired' }, ['all/Expired']],
  ])('%s', (_what, status, want) => {
    expect(ids(planNotificationsDue(plan(status), [t('all')], NOW))).toEqual(want);
  });

  it('gives a target with events only those', () => {
    const status: RollbackPlanStatus = { phase: 'Failed', startedAt: '2026-11-29T09:59:00Z' };
    const r = planNotificationsDue(plan(status), [t('pager', { events: ['Failed', 'Escalated'] })], NOW);
    expect(ids(r)).toEqual(['pager/Failed']);
  });

  it('notifies nothing for a dry run', () => {
    const status: RollbackPlanStatus = { phase: 'DryRunComplete' };
    expect(planNotificationsDue(plan(status, { dryRun: true }), [t('all')], NOW).due).toEqual([]);
  });

  it('notifies nothing for a validateOnly plan, not even an escalation while its checks run an hour', () => {
    const running: RollbackPlanStatus = { phase: 'Running' };
    expect(ids(planNotificationsDue(plan(running), [t('cto', { after: '30m' })], NOW))).toEqual([
      'cto/Escalated',
    ]);
    const r = planNotificationsDue(
      plan(running, { validateOnly: 'post' }),
      [t('all'), t('cto', { after: '30m' })],
      NOW,
    );
    expect(r.due).toEqual([]);
  });

  describe('escalation', () => {
    const esc = t('cto', { after: '30m' });
    it('is due `after` the trigger fired, once the time has come, and only to the escalation target', () => {
      const status: RollbackPlanStatus = {
        phase: 'AwaitingApproval',
        trigger: { firedAt: '2026-11-29T09:20:00Z', condition: 'c', type: 'Alert' },
      };
      expect(ids(planNotificationsDue(plan(status), [esc], NOW))).toEqual(['cto/Escalated']);
      const early = planNotificationsDue(plan(status), [esc], new Date('2026-11-29T09:40:00Z'));
      expect(early.due).toEqual([]);
      expect(early.nextAt).toBe(Date.parse('2026-11-29T09:50:00Z'));
    });
    it('counts from the start, else the creation, for a manual plan', () => {
      const started = planNotificationsDue(
        plan({ phase: 'Running', startedAt: '2026-11-29T09:45:00Z' }),
        [esc],
        NOW,
      );
      expect(started.nextAt).toBe(Date.parse('2026-11-29T10:15:00Z'));
      expect(ids(planNotificationsDue(plan({ phase: 'Pending' }), [esc], NOW))).toEqual(['cto/Escalated']);
    });
    it.each(['Succeeded', 'Failed', 'Expired', 'Vetoed', 'DryRunComplete', 'Armed'] as const)(
      'never for a plan that is %s',
      (phase) => {
        const r = planNotificationsDue(
          plan({ phase, startedAt: '2026-11-29T08:00:00Z' }, { trigger: { mode: 'auto' } }),
          [esc],
          NOW,
        );
        expect(r).toEqual({ due: [] });
      },
    );
    it('not for an automatic plan that has not fired', () => {
      const r = planNotificationsDue(plan({ phase: 'Pending' }, { trigger: { mode: 'auto' } }), [esc], NOW);
      expect(r).toEqual({ due: [] });
    });
  });
});

describe('plan episodes (rearm)', () => {
  const expired = (lastRearm?: { rearmedAt: string; annotationValue: string }): RollbackPlanStatus => ({
    phase: 'Expired',
    ...(lastRearm ? { lastRearm } : {}),
  });
  it('sends an event again after a rearm, but not again within one episode', () => {
    const first = ids(planNotificationsDue(plan(expired()), [t('all')], NOW));
    expect(first).toEqual(['all/Expired']);
    const r1 = { rearmedAt: '2026-11-29T09:30:00Z', annotationValue: 'again' };
    const second = ids(planNotificationsDue(plan(expired(r1)), [t('all')], NOW));
    expect(second).toEqual(['all/Expired/rearm-2026-11-29T09:30:00Z']);
    // A replayed reconcile of the same episode finds the same id.
    expect(ids(planNotificationsDue(plan(expired({ ...r1 })), [t('all')], NOW))).toEqual(second);
    // The same annotation value used again later is a new episode all the same.
    const r2 = { rearmedAt: '2026-11-29T09:50:00Z', annotationValue: 'again' };
    expect(ids(planNotificationsDue(plan(expired(r2)), [t('all')], NOW))).toEqual([
      'all/Expired/rearm-2026-11-29T09:50:00Z',
    ]);
  });
  it('escalates once per episode', () => {
    const fired = (lastRearm?: { rearmedAt: string; annotationValue: string }): RollbackPlanStatus => ({
      phase: 'AwaitingApproval',
      trigger: { firedAt: '2026-11-29T09:40:00Z', condition: 'down', type: 'DeploymentUnavailable' },
      ...(lastRearm ? { lastRearm } : {}),
    });
    const esc = t('cto', { after: '10m' });
    const auto = { trigger: { mode: 'auto' } };
    expect(ids(planNotificationsDue(plan(fired(), auto), [esc], NOW))).toEqual(['cto/Escalated']);
    expect(
      ids(
        planNotificationsDue(
          plan(fired({ rearmedAt: '2026-11-29T09:30:00Z', annotationValue: '1' }), auto),
          [esc],
          NOW,
        ),
      ),
    ).toEqual(['cto/Escalated/rearm-2026-11-29T09:30:00Z']);
  });
});

describe('scheduleNotificationsDue', () => {
  const failedJob = (name: string): BackupScheduleStatus => {
    const status: BackupScheduleStatus = {};
    // The condition exactly as the controller records a failed Job.
    recordBackupJob(
      status,
      { metadata: { name } },
      {
        state: 'failed',
        reason: 'DatabaseUnreachable',
        message: 'connection refused',
        finishedAt: '2026-11-29T09:00:00Z',
      } as never,
      { retention: {} } as never,
      (c) => (status.conditions = [{ ...c, lastTransitionTime: '2026-11-29T09:00:00Z' }]),
      { namespace: 'n', name: 's' },
    );
    return status;
  };

  it('keys BackupFailed by the Job that failed, so each run notifies once', () => {
    const a = scheduleNotificationsDue(failedJob('db-backup-29001'), [t('ops')], NOW, '1h');
    const b = scheduleNotificationsDue(failedJob('db-backup-29002'), [t('ops')], NOW, '1h');
    expect(ids(a)).toEqual(['ops/BackupFailed/db-backup-29001']);
    expect(ids(b)).toEqual(['ops/BackupFailed/db-backup-29002']);
  });

  it('keys BackupSucceeded by the newest backup the schedule made (not a safety backup)', () => {
    const status: BackupScheduleStatus = {
      conditions: [
        {
          type: 'LastBackupSucceeded',
          status: 'True',
          reason: 'BackupVerified',
          message: '',
          lastTransitionTime: 'x',
        },
      ],
      backups: [
        { id: 'plan-safety', finishedAt: '2026-11-29T09:30:00Z', verified: true, purpose: 'safety' },
        { id: 'b2', finishedAt: '2026-11-29T09:00:00Z', verified: true, purpose: 'scheduled' },
        { id: 'b1', finishedAt: '2026-11-29T08:00:00Z', verified: true, purpose: 'scheduled' },
      ],
    };
    expect(ids(scheduleNotificationsDue(status, [t('ops')], NOW, '1h'))).toEqual(['ops/BackupSucceeded/b2']);
  });

  it('reports an RPO breach once per breach, but not a schedule that has no backup yet', () => {
    const breach = (reason: string, since: string): BackupScheduleStatus => ({
      conditions: [{ type: 'RPOMet', status: 'False', reason, message: 'old', lastTransitionTime: since }],
    });
    expect(
      ids(
        scheduleNotificationsDue(breach('ObjectiveBreached', '2026-11-29T09:00:00Z'), [t('ops')], NOW, '1h'),
      ),
    ).toEqual(['ops/RPOBreached/2026-11-29T09:00:00Z']);
    expect(
      scheduleNotificationsDue(breach('NoBackupYet', '2026-11-29T09:00:00Z'), [t('ops')], NOW, '1h').due,
    ).toEqual([]);
  });

  it('escalates an RPO breach that lasted `after`', () => {
    const status: BackupScheduleStatus = {
      conditions: [
        {
          type: 'RPOMet',
          status: 'False',
          reason: 'ObjectiveBreached',
          message: '',
          lastTransitionTime: '2026-11-29T09:50:00Z',
        },
      ],
    };
    const esc = t('cto', { after: '30m' });
    const early = scheduleNotificationsDue(status, [esc], NOW, '1h');
    expect(early).toEqual({ due: [], nextAt: Date.parse('2026-11-29T10:20:00Z') });
    expect(ids(scheduleNotificationsDue(status, [esc], new Date('2026-11-29T10:20:00Z'), '1h'))).toEqual([
      'cto/RPOBreached/2026-11-29T09:50:00Z',
    ]);
  });

  it('keys an RPO breach by the backup that aged out, and escalates `after` the breach began (not at once)', () => {
    // RPOMet was False/NoBackupYet since yesterday; a backup finished at 09:10, the objective is 30m, so the
    // breach began at 09:40. The condition turned False/ObjectiveBreached keeping yesterday's transition time.
    const status: BackupScheduleStatus = {
      conditions: [
        {
          type: 'RPOMet',
          status: 'False',
          reason: 'ObjectiveBreached',
          message: 'old',
          lastTransitionTime: '2026-11-28T00:00:00Z',
        },
      ],
      lastSuccessfulBackup: { id: 'b7', finishedAt: '2026-11-29T09:10:00Z', verified: true },
    };
    expect(ids(scheduleNotificationsDue(status, [t('ops')], NOW, '30m'))).toEqual(['ops/RPOBreached/b7']);
    const esc = t('cto', { after: '30m' });
    expect(scheduleNotificationsDue(status, [esc], NOW, '30m')).toEqual({
      due: [],
      nextAt: Date.parse('2026-11-29T10:10:00Z'),
    });
    expect(ids(scheduleNotificationsDue(status, [esc], new Date('2026-11-29T10:10:00Z'), '30m'))).toEqual([
      'cto/RPOBreached/b7',
    ]);
  });

  it('reports a failed test restore by its finish time', () => {
    const status: BackupScheduleStatus = {
      lastTestRestore: { backupId: 'b1', finishedAt: '2026-11-29T09:10:00Z', result: 'Failed' },
    };
    expect(
      ids(scheduleNotificationsDue(status, [t('ops', { events: ['TestRestoreFailed'] })], NOW, '1h')),
    ).toEqual(['ops/TestRestoreFailed/2026-11-29T09:10:00Z']);
  });
});

describe('ids', () => {
  it('fit the schema (192 characters) and give their key back', () => {
    const id = notificationId('a'.repeat(63), 'TestRestoreFailed', 'k'.repeat(253));
    expect(id.length).toBeLessThanOrEqual(192);
    expect(keyOfId('ops/BackupFailed/db-backup-1')).toBe('db-backup-1');
    expect(keyOfId('ops/Started')).toBeUndefined();
  });
  it('name the run of a failed backup from each message the controller writes', () => {
    expect(failedBackupRun({ message: 'backup Job x-1 failed: A: b', lastTransitionTime: 't' })).toBe('x-1');
    expect(
      failedBackupRun({ message: 'backup b-2: 1 bytes ... NOT verified', lastTransitionTime: 't' }),
    ).toBe('b-2');
    // A refused backup-now (schedule-jobs.ts): keyed by the Job it would have been, not by the time the
    // condition turned False (which does not move when the condition was False already).
    expect(
      failedBackupRun({
        message:
          'backup-now=2026-11-29: the API server rejected Job db-backup-now-1a2b3c4d (403 Forbidden): exceeded quota',
        lastTransitionTime: 't',
      }),
    ).toBe('db-backup-now-1a2b3c4d');
    expect(failedBackupRun({ message: 'something else', lastTransitionTime: 't' })).toBe('t');
  });
});
