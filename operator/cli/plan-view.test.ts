import { describe, expect, it } from 'vitest';
import {
  changeLines,
  currentStep,
  dryRunReportText,
  historyEntry,
  historyTable,
  isActive,
  outcomeLine,
  planDetail,
  planSummary,
  progressFrame,
  recentPlans,
  type PlanObject,
} from './plan-view.js';

const T0 = Date.parse('2026-11-29T10:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const cond = (type: string, status: string, reason: string, message = '') => ({
  type,
  status: status as 'True',
  reason,
  message,
  lastTransitionTime: iso(0),
});

function plan(over: Partial<PlanObject> & { status?: PlanObject['status'] } = {}): PlanObject {
  return {
    metadata: { name: 'undo-web', namespace: 'shop', creationTimestamp: iso(0) },
    spec: { scope: 'app', severity: 'critical', targets: { deployments: [{ name: 'web' }] } },
    ...over,
  };
}

const succeeded = plan({
  status: {
    phase: 'Succeeded',
    durationSeconds: 12.34,
    steps: [
      {
        name: 'PreValidation',
        startedAt: iso(0),
        finishedAt: iso(1),
        result: 'Succeeded',
        message: 'all checks passed',
      },
      { name: 'AppRollback', startedAt: iso(1), finishedAt: iso(3), result: 'Succeeded' },
    ],
    conditions: [
      cond('Ready', 'True', 'Succeeded', 'done'),
      cond('RTOMet', 'True', 'WithinObjective', 'recovery took 12s; objective 2m'),
    ],
    trigger: { firedAt: iso(0), condition: 'Manual', type: 'Manual' },
  },
});

describe('plan view', () => {
  it('summarises a plan for -o json with the documented fields', () => {
    const s = planSummary(succeeded);
    expect(s).toMatchObject({
      name: 'undo-web',
      namespace: 'shop',
      phase: 'Succeeded',
      durationSeconds: 12.34,
      rtoMet: true,
      trigger: 'Manual',
      deployments: [],
      database: null,
    });
    expect(s.steps).toHaveLength(2);
    expect(planSummary(plan()).rtoMet, 'no RTOMet condition yet').toBeNull();
  });

  it('names the trigger: DryRun, Manual, the fired condition type, or Auto while armed', () => {
    expect(historyEntry(plan({ spec: { ...plan().spec, dryRun: true } })).trigger).toBe('DryRun');
    expect(historyEntry(plan({ spec: { ...plan().spec, validateOnly: 'pre' } })).trigger).toBe('Validate');
    expect(historyEntry(plan()).trigger).toBe('Manual');
    expect(
      historyEntry(plan({ status: { trigger: { firedAt: iso(0), condition: 'errors', type: 'HTTPCheck' } } }))
        .trigger,
    ).toBe('HTTPCheck');
    expect(historyEntry(plan({ spec: { ...plan().spec, trigger: { mode: 'auto' } } })).trigger).toBe('Auto');
  });

  it('lists history newest first with kubectl-like columns', () => {
    const older = plan({ metadata: { name: 'old', namespace: 'shop', creationTimestamp: iso(-3600) } });
    const rows = recentPlans([older, succeeded], 10).map(historyEntry);
    expect(rows.map((r) => r.name)).toEqual(['undo-web', 'old']);
    const t = historyTable(rows, false, T0 + 60_000).split('\n');
    expect(t[0]).toMatch(/^NAME\s+SCOPE\s+SEVERITY\s+TRIGGER\s+RESULT\s+DURATION\s+RTO MET\s+AGE$/);
    expect(t[1]).toMatch(/^undo-web\s+app\s+critical\s+Manual\s+Succeeded\s+12s\s+yes\s+1m$/);
    expect(t[2]).toMatch(/^old\s+app\s+critical\s+Manual\s+Pending\s+1h1m$/);
    expect(recentPlans([older, succeeded], 1)).toEqual([succeeded]);
    expect(historyTable(rows, true).split('\n')[0]).toMatch(/^NAMESPACE\s+NAME/);
  });

  it('counts plans without a phase, and waiting ones, as active', () => {
    expect(isActive(plan())).toBe(true);
    expect(isActive(plan({ status: { phase: 'AwaitingApproval' } }))).toBe(true);
    expect(isActive(succeeded)).toBe(false);
  });

  it('names PreValidation as the current step while the safety backup runs alongside it', () => {
    const steps = [
      { name: 'PreValidation', startedAt: iso(0), result: 'Running' as const },
      { name: 'CheckBackupSelected', startedAt: iso(0), finishedAt: iso(0), result: 'Succeeded' as const },
      { name: 'SafetyBackup', startedAt: iso(1), result: 'Running' as const },
    ];
    expect(currentStep(plan({ status: { phase: 'Running', steps } }))).toBe('PreValidation');
    const after = [{ ...steps[0]!, finishedAt: iso(2), result: 'Succeeded' as const }, ...steps.slice(1)];
    expect(currentStep(plan({ status: { phase: 'Running', steps: after } }))).toBe('SafetyBackup');
  });

  it('prints one plain line per change of phase or step', () => {
    const running = plan({
      status: {
        phase: 'Running',
        steps: [{ name: 'PreValidation', startedAt: iso(0), result: 'Running' }],
      },
    });
    expect(changeLines(undefined, running, T0)).toEqual(['phase Running', 'step PreValidation Running']);
    expect(changeLines(running, running, T0)).toEqual([]);
    expect(changeLines(running, succeeded, T0)).toEqual([
      'step PreValidation Succeeded (1s): all checks passed',
      'step AppRollback Succeeded (2s)',
      'phase Succeeded',
    ]);
  });

  it('draws a frame that never wraps: every line fits the width', () => {
    const long = plan({
      status: {
        phase: 'Running',
        steps: [{ name: 'PostValidation', startedAt: iso(0), result: 'Running', message: 'x'.repeat(500) }],
      },
    });
    const f = progressFrame(long, 4.2, T0 + 5000, 80);
    expect(f[1]).toBe('phase Running   elapsed 4.2s');
    expect(f.find((l) => l.startsWith('PostValidation'))).toMatch(/^PostValidation\s+Running\s+5s\s+x+…$/);
    for (const l of f) expect(l.length).toBeLessThanOrEqual(80);
  });

  it('keeps a frame within the terminal height: the newest steps, and how many are left out', () => {
    const steps = Array.from({ length: 20 }, (_, i) => ({
      name: `Step${i}`,
      startedAt: iso(i),
      finishedAt: iso(i + 1),
      result: 'Succeeded' as const,
    }));
    const f = progressFrame(plan({ status: { phase: 'Running', steps } }), 1, T0, 120, 12);
    expect(f.length).toBeLessThanOrEqual(11);
    expect(f[3]).toMatch(/^STEP\s+RESULT/);
    expect(f[4]).toBe('... 14 earlier step(s)');
    expect(f[f.length - 1]).toMatch(/^Step19\s/);
    expect(progressFrame(plan({ status: { phase: 'Running', steps } }), 1, T0, 120)).toHaveLength(24);
  });

  it('says how a plan ended: the RTO on success, the Ready reason and message otherwise', () => {
    expect(outcomeLine(succeeded)).toBe('Succeeded in 12s; RTO met (recovery took 12s; objective 2m)');
    const failed = plan({
      status: {
        phase: 'Failed',
        conditions: [cond('Ready', 'False', 'TargetNotFound', 'Deployment "nope" not found')],
      },
    });
    expect(outcomeLine(failed)).toBe('Failed: TargetNotFound: Deployment "nope" not found');
  });

  it('shows a dry-run report: revisions, images, the diff, the backup window, flags and checks', () => {
    const text = dryRunReportText({
      summary: 'dry run: would roll back 1 of 1 Deployment(s)',
      wouldSucceed: true,
      deployments: [
        {
          name: 'web',
          action: 'rollback',
          reason: null,
          fromRevision: 2,
          toRevision: 1,
          imageChanges: [{ container: 'app', from: 'nginx:1.26', to: 'nginx:1.25' }],
          templateDiff: '-  image: nginx:1.26\n+  image: nginx:1.25\n',
          message: 'would roll back web from revision 2 to 1',
          gitops: {
            owner: 'Flux Kustomization flux-system/apps',
            warning: 'Flux Kustomization flux-system/apps applies this Deployment from Git and may put ...',
          },
        },
      ],
      database: {
        backupId: 'b1',
        backupFinishedAt: iso(0),
        mode: 'inPlace',
        safetyBackup: true,
        dataLossWindowSeconds: 90,
      },
      featureFlags: [{ object: 'ConfigMap/flags', key: 'beta', current: 'true', wouldBe: 'false' }],
      checks: ['targets exist'],
    });
    expect(text).toContain('Would succeed: yes');
    expect(text).toContain('  GitOps owner: Flux Kustomization flux-system/apps');
    expect(text).toContain('  warning: Flux Kustomization flux-system/apps applies this Deployment from Git');
    expect(text).toContain('Deployment web: rollback (revision 2 -> 1)');
    expect(text).toContain('image app: nginx:1.26 -> nginx:1.25');
    expect(text).toMatch(/^ {4}\+ {2}image: nginx:1\.25$/m);
    expect(text).toContain('data-loss window 1m30s');
    expect(text).toMatch(/ConfigMap\/flags\s+beta\s+true\s+false/);
    expect(text).toContain('  - targets exist');
  });

  it("shows weak GitOps evidence as the report's neutral note, with no owner or warning line", () => {
    const note =
      'may be managed by Argo CD Application shop (label app.kubernetes.io/instance, also set by Helm)';
    const text = dryRunReportText({
      deployments: [{ name: 'web', action: 'rollback', gitops: { tool: 'argocd', weak: true, note } }],
    });
    expect(text).toContain(`  GitOps: ${note}`);
    expect(text).not.toMatch(/GitOps owner|warning:/);
  });
});

describe('planDetail: GitOps owners', () => {
  it('lists each owner with its state and message', () => {
    const text = planDetail(
      plan({
        status: {
          phase: 'Succeeded',
          gitops: {
            policy: 'suspend',
            owners: [
              {
                tool: 'flux',
                kind: 'Kustomization',
                name: 'apps',
                namespace: 'flux-system',
                deployments: ['web'],
                state: 'Suspended',
                suspendedAt: iso(5),
                message: 'suspended so the rollback sticks; still needed: revert the release in Git',
              },
            ],
          },
        },
      }),
      T0 + 60_000,
    );
    expect(text).toContain('GitOps owners (policy suspend):');
    expect(text).toMatch(
      /Kustomization flux-system\/apps\s+Suspended\s+2026-11-29T10:00:05.000Z\s+suspended so the rollback sticks/,
    );
  });
});
