import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDbSecret, dbSecretData } from '../support/backups.js';
import { parseJson, runCli } from '../support/cli.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, eventsFor, getPlan } from '../support/plans.js';
import { limitedUserKubeconfig } from '../support/rbac.js';
import { REVISION } from '../support/workloads.js';
import { deploymentWithHistory } from '../support/workloads.js';

const G = { group: 'rollback.nxtnewday.io', version: 'v1alpha1' } as const;

// spec.validateOnly (the operator) and `nxt-rollback validate` (the CLI, a real process) against the real
// control plane with the operator running as a process: the checks run against the current state, nothing is
// changed, the plan ends in DryRunComplete with its report, and the CLI prints it and exits by the result.
describe.skipIf(inject('existingCluster'))('validateOnly plans and nxt-rollback validate', () => {
  let ns = '';
  let op: OperatorProcess;
  let http: Server;
  let base = '';

  beforeAll(async () => {
    ns = await createTestNamespace('cli-val');
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    http = createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      const ok = req.url === '/healthz';
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'down');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    await op.waitReady();
    await deploymentWithHistory(ns, 'web', ['registry.example/web:1', 'registry.example/web:2'], 1);
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
  });
  afterAll(async () => {
    await op?.kill();
    http?.closeAllConnections();
    http?.close();
    await deleteTestNamespace(ns);
  });

  const revisionOf = async (name: string) =>
    (await testClients().apps.readNamespacedDeployment({ name, namespace: ns })).metadata?.annotations?.[
      REVISION
    ];

  it('validate --pre runs the pre-validation checks, changes nothing, and reports them (-o json)', async () => {
    const r = await runCli(['-n', ns, 'validate', '--pre', 'web', '--keep', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out).toMatchObject({ stage: 'pre', passed: true });
    expect(out.plan).toMatch(/^validate-pre-\d{8}t\d{6}z-[0-9a-f]{6}$/);
    expect(out.checks.map((c: any) => [c.name, c.result])).toEqual([
      ['CheckTargetsExist', 'Passed'],
      ['CheckRevisionsExist', 'Passed'],
      ['CheckNotPaused', 'Passed'],
      ['CheckNoConcurrentPlan', 'Passed'],
      ['CheckPermissions', 'Passed'],
    ]);
    expect(await revisionOf('web')).toBe('2'); // not rolled back
    const plan = await getPlan(ns, out.plan);
    expect(plan.spec.validateOnly).toBe('pre');
    expect(plan.status.phase).toBe('DryRunComplete');
    expect(plan.status.dryRunReport.validation).toEqual({ stage: 'pre', passed: true, checks: out.checks });
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({ status: 'True', reason: 'ChecksPassed' });
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'DryRunComplete' });
    expect(plan.status.deployments).toBeUndefined();
    await eventually('the ValidationPassed Event', async () =>
      (await eventsFor(ns, out.plan)).some((e) => e.reason === 'ValidationPassed'),
    );
  });

  it('without --keep the plans are deleted after their report is read; history says Validate for a kept one', async () => {
    const names = async () =>
      (await kubectl('-n', ns, 'get', 'rollbackplans', '-o', 'name'))
        .split('\n')
        .filter((n) => n.includes('/validate-'));
    const before = await names();
    const r = await runCli(['-n', ns, 'validate', 'web', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out.stages.map((s: any) => s.stage)).toEqual(['pre', 'post']);
    expect(await names()).toEqual(before);
    const history = parseJson(await runCli(['-n', ns, 'history', '-o', 'json']));
    const kept = history.filter((e: any) => e.name.startsWith('validate-pre-'));
    expect(kept.length).toBeGreaterThan(0);
    for (const e of kept) expect(e.trigger).toBe('Validate');
  });

  it('validate --post checks the rollout and the HTTP checks and prints a table', async () => {
    const r = await runCli(['-n', ns, 'validate', '--post', 'web', '--http', `${base}/healthz`]);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trim().split('\n');
    expect(header).toMatch(/^CHECK\s+RESULT\s+MESSAGE$/);
    expect(rows[0]).toMatch(/^CheckRolledOut\/web\s+Passed\s+deployment "web" successfully rolled out/);
    expect(rows[1]).toMatch(/^CheckHTTP\/1\s+Passed\s+/);
    expect(rows[2]).toBe('post-validation passed');
  });

  it('a failing check exits 1: the HTTP check fails post-validation, with its reason on the condition', async () => {
    const r = await runCli([
      '-n',
      ns,
      'validate',
      '--post',
      'web',
      '--http',
      `${base}/down`,
      '--validation-timeout',
      '30s',
      '--keep',
      '-o',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(1);
    const out = parseJson(r);
    expect(out).toMatchObject({ stage: 'post', passed: false });
    expect(out.checks).toEqual([
      expect.objectContaining({ name: 'CheckRolledOut/web', result: 'Passed' }),
      expect.objectContaining({
        name: 'CheckHTTP/1',
        result: 'Failed',
        message: expect.stringContaining('503'),
      }),
    ]);
    const plan = await getPlan(ns, out.plan);
    expect(condition(plan, 'PostValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'HTTPCheckFailed',
    });
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'DryRunComplete' });
    await eventually('the ValidationFailed Event', async () =>
      (await eventsFor(ns, out.plan)).some((e) => e.reason === 'ValidationFailed' && e.type === 'Warning'),
    );
  });

  it('neither flag runs both stages; a missing Deployment fails both (exit 1), the checks after it Skipped', async () => {
    const r = await runCli(['-n', ns, 'validate', 'nosuch', '--keep', '-o', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const out = parseJson(r);
    expect(out.passed).toBe(false);
    expect(out.stages.map((s: any) => [s.stage, s.passed])).toEqual([
      ['pre', false],
      ['post', false],
    ]);
    expect(out.stages[0].checks[0]).toMatchObject({ name: 'CheckTargetsExist', result: 'Failed' });
    expect(out.stages[0].checks[0].message).toContain('Deployment "nosuch" not found');
    expect(out.stages[0].checks.slice(1).every((c: any) => c.result === 'Skipped')).toBe(true);
    expect(out.stages[1].checks).toEqual([
      expect.objectContaining({ name: 'CheckRolledOut/nosuch', result: 'Failed' }),
    ]);
    const pre = await getPlan(ns, out.stages[0].plan);
    expect(condition(pre, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'TargetNotFound',
    });
  });

  it('--schedule checks the database target: the chosen backup must be recorded and verified', async () => {
    await createDbSecret(ns, 'db', dbSecretData('postgres'));
    const { custom } = testClients();
    await custom.createNamespacedCustomObject({
      ...G,
      plural: 'backupschedules',
      namespace: ns,
      body: {
        apiVersion: 'rollback.nxtnewday.io/v1alpha1',
        kind: 'BackupSchedule',
        metadata: { name: 'db' },
        spec: {
          schedule: '0 3 * * *',
          database: { secretRef: { name: 'db' } },
          storage: { persistentVolumeClaim: { claimName: 'backups' } },
        },
      },
    });
    const none = await runCli(['-n', ns, 'validate', '--pre', '--schedule', 'db', '-o', 'json']);
    expect(none.code, none.stderr).toBe(1);
    expect(parseJson(none).checks).toContainEqual(
      expect.objectContaining({ name: 'CheckBackupSelected', result: 'Failed' }),
    );
    // A verified backup in the schedule's status (as the operator records one): now it passes.
    const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await kubectl(
      '-n',
      ns,
      'patch',
      'bks',
      'db',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          backups: [{ id: 'db-1', startedAt: t, finishedAt: t, verified: true, sha256: 'a'.repeat(64) }],
        },
      }),
    );
    const ok = await runCli(['-n', ns, 'validate', '--pre', '--schedule', 'db', '-o', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(parseJson(ok).checks.map((c: any) => [c.name, c.result])).toEqual([
      ['CheckNoConcurrentRestore', 'Passed'],
      ['CheckBackupSchedule', 'Passed'],
      ['CheckBackupSelected', 'Passed'],
      ['CheckJobPermissions', 'Passed'],
    ]);
    // No verify Job: validation starts nothing.
    const jobs = await testClients().batch.listNamespacedJob({ namespace: ns });
    expect(jobs.items).toHaveLength(0);
  });

  it("--plan copies an existing plan's targets and validation", async () => {
    await applyPlan(ns, 'real', {
      scope: 'app',
      dryRun: true,
      targets: { deployments: [{ name: 'web' }] },
      validation: { http: [{ url: `${base}/healthz`, expectStatus: 200 }] },
    });
    const r = await runCli(['-n', ns, 'validate', '--pre', '--plan', 'real', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const names = parseJson(r).checks.map((c: any) => c.name);
    expect(names).toEqual(expect.arrayContaining(['CheckHTTPChecks', 'CheckTargetsExist']));
    const missing = await runCli(['-n', ns, 'validate', '--pre', '--plan', 'nosuch']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('RollbackPlan "nosuch" not found');
  });

  it('--timeout exits 5 while a check is still running', async () => {
    const r = await runCli([
      '-n',
      ns,
      'validate',
      '--post',
      'web',
      '--http',
      `${base}/hang`,
      '--timeout',
      '3s',
    ]);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain('timed out after 3s');
  });

  it('a user who may not create RollbackPlans gets exit 4 naming the verb and the resource', async () => {
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns,
      serviceAccount: 'reader',
      verbs: ['get', 'list', 'watch'],
      resources: ['rollbackplans.rollback.nxtnewday.io'],
    });
    const r = await runCli(['validate', '--pre', 'web'], { kubeconfig });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/cannot create resource "rollbackplans"/);
  });

  it('a user who may create but not watch RollbackPlans gets exit 4 naming watch and the resource', async () => {
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns,
      serviceAccount: 'creator',
      verbs: ['get', 'create'],
      resources: ['rollbackplans.rollback.nxtnewday.io'],
    });
    // A check that never answers keeps the plan running, so the CLI must watch it: a pre-validation of web
    // alone can end before the CLI's first GET, and then nothing is watched.
    const r = await runCli(
      [
        'validate',
        '--post',
        'web',
        '--http',
        `${base}/hang`,
        '--validation-timeout',
        '20s',
        '--timeout',
        '60s',
      ],
      { kubeconfig },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('may not watch rollbackplans.rollback.nxtnewday.io');
  });

  it('validateOnly plans count in no rollback metric, and the API refuses them on automatic plans', async () => {
    expect(await metricValue(op.metricsUrl, 'nxt_rollback_total')).toBeUndefined();
    const { custom } = testClients();
    const refused = await custom
      .createNamespacedCustomObject({
        ...G,
        plural: 'rollbackplans',
        namespace: ns,
        body: {
          apiVersion: 'rollback.nxtnewday.io/v1alpha1',
          kind: 'RollbackPlan',
          metadata: { name: 'auto-validate' },
          spec: {
            scope: 'app',
            severity: 'high',
            validateOnly: 'post',
            targets: { deployments: [{ name: 'web' }] },
            trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'web' }] },
          },
        },
      })
      .then(
        () => 'created',
        (e: any) => String(e?.body ?? e?.message),
      );
    expect(refused).toContain('spec.validateOnly runs the checks once, now');
  });
});
