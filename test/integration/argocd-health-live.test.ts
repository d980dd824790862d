import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP } from '../../operator/api/v1alpha1/common.js';
import {
  ensureArgoCdLua,
  RESOURCE_CUSTOMIZATIONS,
  runArgoCdLuaTests,
  type LuaResult,
} from '../env/argocd-lua.js';
import {
  applySchedule,
  backupNow,
  createDbSecret,
  dbSecretData,
  getSchedule,
  waitScheduleCondition,
} from '../support/backups.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, getPlan, waitPlanPhase } from '../support/plans.js';
import { deploymentWithHistory } from '../support/workloads.js';

// The Argo CD health checks against objects the real operator wrote: plans driven into each phase and schedules
// in each state on the real control plane, read back, and evaluated by the real gopher-lua runner
// (hack/argocd-lua) with the scripts from docs/integrations/argocd. The hand-written testdata pins exact
// messages; this test pins that the mapping holds for what the operator really writes.

type Expectation = { status: string; message: RegExp };
type Captured = { kind: 'RollbackPlan' | 'BackupSchedule'; name: string; obj: any; expect: Expectation };

describe('Argo CD health of live objects', () => {
  let ns = '';
  let op: OperatorProcess | undefined;
  let ok: Server;
  let okUrl = '';
  let failing: Server;
  let failingUrl = '';
  let bin = '';
  const tree = mkdtempSync(join(tmpdir(), 'nxt-argocd-live-'));
  const captured: Captured[] = [];

  const listen = async (status: number) => {
    const s = createServer((_req, res) => res.writeHead(status).end(status === 200 ? 'ok' : 'down'));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return [s, `http://127.0.0.1:${(s.address() as { port: number }).port}/healthz`] as const;
  };
  const capture = (kind: Captured['kind'], name: string, obj: any, status: string, message: RegExp) =>
    captured.push({ kind, name, obj: structuredClone(obj), expect: { status, message } });

  beforeAll(async () => {
    [bin, ns] = await Promise.all([ensureArgoCdLua(), createTestNamespace('argocd-live')]);
    [ok, okUrl] = await listen(200);
    [failing, failingUrl] = await listen(500);
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
  }, 300_000);
  afterAll(async () => {
    await op?.kill();
    ok?.close();
    failing?.close();
    rmSync(tree, { recursive: true, force: true });
    if (ns) await deleteTestNamespace(ns);
  });

  it('drives plans and schedules into their states and evaluates each with the health checks', async () => {
    await Promise.all(
      ['web', 'dryweb', 'api', 'slow', 'guard', 'quiet', 'veto'].map((d) =>
        deploymentWithHistory(ns, d, ['nginx:1.25', 'nginx:1.26']),
      ),
    );
    const appPlan = (deployment: string, extra: object = {}) => ({
      scope: 'app',
      targets: { deployments: [{ name: deployment }] },
      ...extra,
    });
    const auto = (deployment: string, severity: string, trigger: object) => ({
      scope: 'app',
      severity,
      targets: { deployments: [{ name: deployment }] },
      trigger: { mode: 'auto', ...trigger },
    });
    await Promise.all([
      applyPlan(ns, 'dry', appPlan('dryweb', { dryRun: true })),
      applyPlan(
        ns,
        'ok',
        appPlan('web', { validation: { timeout: '1m', http: [{ url: okUrl, expectStatus: 200 }] } }),
      ),
      applyPlan(ns, 'missing', appPlan('ghost')),
      applyPlan(ns, 'approve', appPlan('api', { severity: 'medium' })),
      applyPlan(
        ns,
        'slow',
        appPlan('slow', { validation: { timeout: '2m', http: [{ url: failingUrl, expectStatus: 200 }] } }),
      ),
      applyPlan(
        ns,
        'armed',
        auto('guard', 'critical', { conditions: [{ type: 'DeploymentUnavailable', deployment: 'guard' }] }),
      ),
      applyPlan(
        ns,
        'blind',
        auto('guard', 'critical', {
          conditions: [{ type: 'DeploymentUnavailable', deployment: 'ghost', for: '0s' }],
        }),
      ),
      applyPlan(
        ns,
        'expires',
        auto('quiet', 'critical', {
          watchWindow: '3s',
          conditions: [{ type: 'DeploymentUnavailable', deployment: 'quiet' }],
        }),
      ),
      applyPlan(
        ns,
        'vetoed',
        auto('veto', 'high', {
          confirmFor: '10m',
          conditions: [{ type: 'HTTPCheck', url: failingUrl, period: '1s', failureThreshold: 1 }],
        }),
      ),
    ]);

    const running = await eventually('plan slow waiting in post-validation', async () => {
      const p = await getPlan(ns, 'slow');
      return p.status?.phase === 'Running' &&
        p.status.conditions?.some((c: any) => c.type === 'Reconciling' && c.status === 'True')
        ? p
        : undefined;
    });
    capture('RollbackPlan', 'running', running, 'Progressing', /.+/);
    capture(
      'RollbackPlan',
      'dryRunComplete',
      await waitPlanPhase(ns, 'dry', ['DryRunComplete']),
      'Healthy',
      /^DryRunComplete: /,
    );
    const succeeded = await waitPlanPhase(ns, 'ok', ['Succeeded', 'Failed']);
    capture('RollbackPlan', 'succeeded', succeeded, 'Healthy', /^Succeeded: rolled back in /);
    capture('RollbackPlan', 'failed', await waitPlanPhase(ns, 'missing', ['Failed']), 'Degraded', /ghost/);
    capture(
      'RollbackPlan',
      'awaitingApproval',
      await waitPlanPhase(ns, 'approve', ['AwaitingApproval']),
      'Suspended',
      /^ApprovalRequired: /,
    );
    capture('RollbackPlan', 'armed', await waitPlanPhase(ns, 'armed', ['Armed']), 'Healthy', /^Armed: /);
    const blind = await eventually('plan blind names its unevaluable condition', async () => {
      const p = await getPlan(ns, 'blind');
      return p.status?.conditions?.some((c: any) => c.type === 'TriggerHealthy' && c.status === 'False')
        ? p
        : undefined;
    });
    capture('RollbackPlan', 'armedBlind', blind, 'Degraded', /cannot be evaluated: DeploymentNotFound: /);
    capture(
      'RollbackPlan',
      'expired',
      await waitPlanPhase(ns, 'expires', ['Expired'], 30_000),
      'Healthy',
      /^WatchWindowPassed: /,
    );
    const waitingVeto = await waitPlanPhase(ns, 'vetoed', ['AwaitingApproval']);
    capture('RollbackPlan', 'confirmWindow', waitingVeto, 'Suspended', /^ConfirmWindow: /);
    await kubectl('-n', ns, 'annotate', 'rbp', 'vetoed', `${GROUP}/vetoed-by=oncall`);
    capture('RollbackPlan', 'vetoed', await waitPlanPhase(ns, 'vetoed', ['Vetoed']), 'Healthy', /^Vetoed: /);

    // BackupSchedules: one without its Secret (not ready, retried), one scheduled, one suspended, and a
    // backup-now value handled whose Job cannot run here (no runner kubelet): in progress.
    await createDbSecret(ns, 'db', dbSecretData('shop'));
    // The claim must exist; it need not be bound (no backup runs here).
    await testClients().core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: 'backups' },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'manual',
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    const storage = { persistentVolumeClaim: { claimName: 'backups' } };
    await Promise.all([
      applySchedule(ns, 'nosecret', { database: { secretRef: { name: 'absent' } }, storage }),
      applySchedule(ns, 'scheduled', { database: { secretRef: { name: 'db' } }, storage }),
      applySchedule(ns, 'paused', { database: { secretRef: { name: 'db' } }, storage, suspend: true }),
      applySchedule(ns, 'now', { database: { secretRef: { name: 'db' } }, storage }),
    ]);
    capture(
      'BackupSchedule',
      'secretNotFound',
      await waitScheduleCondition(ns, 'nosecret', 'Ready', 'False', 'SecretNotFound'),
      'Progressing',
      /^SecretNotFound: /,
    );
    capture(
      'BackupSchedule',
      'scheduled',
      await waitScheduleCondition(ns, 'scheduled', 'Ready', 'True', 'Scheduled'),
      'Healthy',
      /^Scheduled: CronJob /,
    );
    capture(
      'BackupSchedule',
      'suspended',
      await waitScheduleCondition(ns, 'paused', 'Ready', 'True', 'Suspended'),
      'Suspended',
      /^Suspended: /,
    );
    await waitScheduleCondition(ns, 'now', 'Ready', 'True', 'Scheduled');
    await backupNow(ns, 'now', 'release-1');
    const handled = await eventually('backup-now handled', async () => {
      const s = await getSchedule(ns, 'now');
      return s.status?.lastBackupNow?.annotationValue === 'release-1' && s.status.lastBackupNow.jobName
        ? s
        : undefined;
    });
    capture(
      'BackupSchedule',
      'backupNowRunning',
      handled,
      'Progressing',
      /^backup-now=release-1: backup Job \S+ is running$/,
    );

    // With the operator stopped: a spec change it has not seen (stale status), and a new object without status.
    await op!.kill();
    op = undefined;
    // (A RollbackPlan's spec is immutable, so only a BackupSchedule can have a status for an older spec.)
    await kubectl(
      '-n',
      ns,
      'patch',
      'bks',
      'scheduled',
      '--type=merge',
      '-p',
      '{"spec":{"schedule":"0 * * * *"}}',
    );
    capture(
      'BackupSchedule',
      'staleGeneration',
      await getSchedule(ns, 'scheduled'),
      'Progressing',
      /status is for generation 1, the spec is at generation 2/,
    );
    await backupNow(ns, 'now', 'release-2');
    capture(
      'BackupSchedule',
      'backupNowNotSeen',
      await getSchedule(ns, 'now'),
      'Progressing',
      /^backup-now=release-2: waiting for the operator/,
    );
    await applyPlan(ns, 'unseen', appPlan('web'));
    capture(
      'RollbackPlan',
      'noStatus',
      await getPlan(ns, 'unseen'),
      'Progressing',
      /^Waiting for the operator to observe the plan$/,
    );

    // Every RollbackPlan phase the operator reached here, and the health each got.
    const results = await evaluate(captured);
    const wrong = captured.flatMap((c) => {
      const r = results.get(`${c.kind}/testdata/${c.name}.yaml`);
      const got = r?.actual as { status: string; message?: string } | undefined;
      return got?.status === c.expect.status && c.expect.message.test(got.message ?? '')
        ? []
        : [
            `${c.kind} ${c.name} (phase ${c.obj.status?.phase ?? '-'}): expected ${c.expect.status} ${c.expect.message}, ` +
              `got ${r?.error ?? JSON.stringify(got)}`,
          ];
    });
    expect(wrong).toEqual([]);
    const phases = new Set(captured.filter((c) => c.kind === 'RollbackPlan').map((c) => c.obj.status?.phase));
    expect([...phases].sort()).toEqual(
      [
        'AwaitingApproval',
        'Armed',
        'DryRunComplete',
        'Expired',
        'Failed',
        'Running',
        'Succeeded',
        'Vetoed',
        undefined,
      ].sort(),
    );
  }, 240_000);

  /** Writes the captured objects as testdata beside copies of the scripts and runs them (built-in source). */
  async function evaluate(objs: Captured[]): Promise<Map<string, LuaResult>> {
    for (const kind of ['RollbackPlan', 'BackupSchedule'] as const) {
      const dir = join(tree, GROUP, kind);
      mkdirSync(join(dir, 'testdata'), { recursive: true });
      copyFileSync(join(RESOURCE_CUSTOMIZATIONS, GROUP, kind, 'health.lua'), join(dir, 'health.lua'));
      const mine = objs.filter((o) => o.kind === kind);
      for (const o of mine) writeFileSync(join(dir, 'testdata', `${o.name}.yaml`), stringify(o.obj));
      writeFileSync(
        join(dir, 'health_test.yaml'),
        stringify({
          tests: mine.map((o) => ({
            healthStatus: { status: o.expect.status },
            inputPath: `testdata/${o.name}.yaml`,
          })),
        }),
      );
    }
    const out = process.env.NXT_ARGOCD_CAPTURE_DIR;
    if (out) writeCaptured(out, objs, ns);
    // Messages are checked here (they hold times and names), so the runner's own verdict is not used.
    const run = await runArgoCdLuaTests(bin, { dir: tree });
    return new Map(run.results.map((r) => [`${r.script.split('/')[1]}/${r.input}`, r]));
  }
});

/**
 * With NXT_ARGOCD_CAPTURE_DIR set, the captured objects are written there as `<Kind>/<health>_live<Name>.yaml`
 * (the test namespace renamed shop everywhere, managedFields dropped): how the `_live` testdata under docs/integrations/argocd was made.
 */
function writeCaptured(dir: string, objs: Captured[], ns: string) {
  for (const o of objs) {
    const { managedFields: _m, namespace: _n, ...meta } = o.obj.metadata;
    const file = `${o.expect.status.toLowerCase()}_live${o.name[0]!.toUpperCase()}${o.name.slice(1)}.yaml`;
    mkdirSync(join(dir, o.kind), { recursive: true });
    writeFileSync(
      join(dir, o.kind, file),
      `# Captured from the real operator by test/integration/argocd-health-live.test.ts.\n` +
        stringify({ ...o.obj, metadata: { ...meta, namespace: 'shop' } }).replaceAll(ns, 'shop'),
    );
  }
}
