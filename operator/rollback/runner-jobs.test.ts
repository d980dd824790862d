import { describe, expect, it } from 'vitest';
import { withBackupScheduleDefaults } from '../api/v1alpha1/backupschedule.js';
import { buildRunnerJobTemplate } from '../backup/pod-builders.js';
import type { KubeObject } from '../kube/rest.js';
import type { PlanRun } from './plan-run.js';
import { buildPlanJob, type ScheduleContext } from './runner-jobs.js';

const spec = withBackupScheduleDefaults({
  database: { secretRef: { name: 'db' } },
  storage: { persistentVolumeClaim: { claimName: 'backups' } },
} as Parameters<typeof withBackupScheduleDefaults>[0]);
const sc = {
  schedule: { metadata: { name: 'db', namespace: 'ns', uid: 'sched-uid' } } as KubeObject,
  spec,
  secret: { name: 'db', keys: new Set(['uri']) },
  claimName: 'backups',
} as ScheduleContext;
const run = {
  plan: { metadata: { name: 'p', namespace: 'ns', uid: 'plan-uid' } } as KubeObject,
  namespace: 'ns',
  runnerImage: 'runner:1',
  runnerPolicy: { allowSuperuserAssertions: false },
} as unknown as PlanRun;

describe("a plan's runner Jobs", () => {
  it.each(['restore', 'backup', 'test-restore'] as const)(
    'a %s Job runs one pod at most: backoffLimit 0, and a disrupted pod fails the Job (no Ignore rule)',
    (component) => {
      const job = buildPlanJob(run, sc, `p-${component}`, component, [component]);
      expect(job.spec.backoffLimit).toBe(0);
      const rules = job.spec.podFailurePolicy.rules as { action: string; onPodConditions?: unknown }[];
      expect(rules.map((r) => r.action)).not.toContain('Ignore');
      expect(rules).toContainEqual({
        action: 'FailJob',
        onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }],
      });
      // Unlike the schedule's own Jobs, which a drain may retry.
      const schedule = buildRunnerJobTemplate({
        scheduleName: 'db',
        spec,
        secret: sc.secret,
        claimName: 'backups',
        image: 'runner:1',
        args: ['backup'],
        component: 'backup',
      });
      expect(schedule.spec.podFailurePolicy.rules.map((r) => r.action)).toContain('Ignore');
    },
  );
});
