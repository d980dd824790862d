import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { RECORDED_ANNOTATION } from './record.js';
import { RECORDED_REQUEST_JOBS_KEPT, ScheduleJobPhases } from './schedule-jobs.js';
import type { ScheduleRun } from './schedule-run.js';

const NS = 'ns';
const scheduleOwner = { apiVersion: 'x', kind: 'BackupSchedule', name: 'app', uid: 'u-1', controller: true };

function job(name: string, minute: number, opts: { owner?: string; recorded?: boolean; component?: string }) {
  return {
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      creationTimestamp: `2026-01-01T00:${String(minute).padStart(2, '0')}:00Z`,
      labels: {
        'rollback.nxtnewday.io/backup-schedule': 'app',
        'app.kubernetes.io/component': opts.component ?? 'test-restore',
      },
      annotations: opts.recorded === false ? {} : { [RECORDED_ANNOTATION]: 'succeeded' },
      ownerReferences: [{ ...scheduleOwner, uid: opts.owner ?? 'u-1' }],
    },
  } as KubeObject;
}

describe('ScheduleJobPhases.pruneRecordedRequestJobs', () => {
  it('keeps the newest recorded on-request Jobs per purpose and deletes only older recorded ones of this schedule', async () => {
    const jobs = [
      ...[1, 2, 3, 4, 5].map((m) => job(`restore-${m}`, m, {})),
      job('restore-unrecorded', 0, { recorded: false }),
      job('restore-other-owner', 0, { owner: 'cj-1' }),
      ...[1, 2, 3, 4].map((m) => job(`backup-${m}`, m, { component: 'backup' })),
    ];
    const deleted: { name: string; uid?: string }[] = [];
    const ctx = {
      client: {
        async delete(ref: { name: string }, opts: { preconditionsUid?: string }) {
          deleted.push({ name: ref.name, uid: opts.preconditionsUid });
        },
      },
    } as unknown as ManagerContext;
    const informer = (items: KubeObject[]) => ({ list: () => items, get: () => undefined }) as any;
    const phases = new ScheduleJobPhases(ctx, informer(jobs), informer([]));
    const run = {
      req: { namespace: NS, name: 'app' },
      obj: { metadata: { name: 'app', namespace: NS, uid: 'u-1' } },
    } as unknown as ScheduleRun;
    await phases.pruneRecordedRequestJobs(run);
    expect(RECORDED_REQUEST_JOBS_KEPT).toBe(3);
    expect(deleted.map((d) => d.name).sort()).toEqual(['backup-1', 'restore-1', 'restore-2']);
    expect(deleted.find((d) => d.name === 'restore-1')?.uid).toBe('uid-restore-1');
  });
});
