import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  fillDatabase,
  patchSchedule,
  scheduleSpec,
  startRunnerKubelet,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import { parseJson, runCli, spawnCli } from '../support/cli.js';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  DEFAULT_LEASE,
  installOperatorRbac,
  OPERATOR_NAMESPACE,
  limitedUserKubeconfig,
  waitLeaseHeldBy,
  type InstalledRbac,
} from '../support/rbac.js';
import { deploymentWithHistory } from '../support/workloads.js';

// `nxt-rollback health` and `readiness` as real processes against the real control plane, with the operator
// running (leader election on, its Lease where the CLI looks by default), real backups and a real test restore
// run by the test kubelet against PostgreSQL.
describe.skipIf(inject('existingCluster'))('CLI health and readiness', () => {
  const ns = { app: '', empty: '', unwatched: '' };
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  let rbac: InstalledRbac;
  const POD = 'cli-health-op';

  beforeAll(async () => {
    for (const k of Object.keys(ns) as (keyof typeof ns)[]) ns[k] = await createTestNamespace(`clih-${k}`);
    // The real install's namespace, ServiceAccount and roles: the Lease lives there and readiness asks
    // whether that ServiceAccount may patch Deployments.
    rbac = await installOperatorRbac();
    workDir = mkdtempSync(join(tmpdir(), 'nxt-clih-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({
      env: {
        WATCH_NAMESPACES: `${ns.app},${ns.empty}`,
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: OPERATOR_NAMESPACE,
        POD_NAME: POD,
      },
    });
    await op.waitReady();
    await waitLeaseHeldBy(OPERATOR_NAMESPACE, DEFAULT_LEASE, POD);

    await deploymentWithHistory(ns.app, 'web', ['shop/web:1.0', 'shop/web:1.1', 'shop/web:1.2']);
    await deploymentWithHistory(ns.empty, 'single', ['shop/single:1.0']);
    // An automatic plan that names web, so health and readiness find their target without --deployments; and
    // a dry run for a mistyped Deployment, which names nothing that can act (no target "gone" appears).
    await applyPlan(ns.app, 'web-undo', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'web' }] },
      trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'web' }] },
    });
    await applyPlan(ns.app, 'typo-dry-run', {
      scope: 'app',
      dryRun: true,
      targets: { deployments: [{ name: 'gone' }] },
    });
    await waitPlanPhase(ns.app, 'web-undo', ['Armed']);
    await waitPlanPhase(ns.app, 'typo-dry-run', ['DryRunComplete', 'Failed']);

    // A real backup and a real test restore of it.
    const db = await createTestDatabase('clih');
    await fillDatabase(db.url, db.name);
    for (const n of [ns.app, ns.empty]) {
      await createDbSecret(n, 'db', dbSecretData(db.name));
      pvs.push(await createBoundClaim(n, 'backups'));
    }
    await applySchedule(
      ns.app,
      'app',
      scheduleSpec('db', 'backups', { verify: { testRestoreSchedule: '30 3 * * *' } }),
    );
    await applySchedule(ns.empty, 'nobackup', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(ns.app, 'app', 'Ready', 'True', 'Scheduled');
    await waitScheduleCondition(ns.empty, 'nobackup', 'Ready', 'True', 'Scheduled');
    await backupNow(ns.app, 'app', 'first');
    await waitScheduleCondition(ns.app, 'app', 'LastBackupSucceeded', 'True', 'BackupVerified', 90_000);
    await waitScheduleCondition(ns.app, 'app', 'RPOMet', 'True', 'WithinObjective');
    await kubectl('-n', ns.app, 'create', 'job', '--from=cronjob/app-verify', 'app-verify-manual');
    await waitJobRecorded(ns.app, 'app-verify-manual');
    await waitScheduleCondition(ns.app, 'app', 'LastTestRestoreSucceeded', 'True', 'RestoreVerified');
  }, 300_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}`);
      console.log(`--- operator ---\n${op?.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.stop();
    await Promise.all(Object.values(ns).map((n) => deleteTestNamespace(n)));
    await kubelet?.stop();
    await deletePvs(pvs);
    await rbac?.uninstall();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const plansIn = async (n: string) =>
    (await kubectl('-n', n, 'get', 'rollbackplans', '-o', 'name')).trim().split('\n').filter(Boolean);

  it('health: healthy shows the targets, backups, plans and the leader, and exits 0', async () => {
    const r = await runCli(['-n', ns.app, 'health', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const h = parseJson(r);
    expect(h).toMatchObject({ namespace: ns.app, healthy: true, unhealthy: [] });
    expect(h.targets).toEqual([
      expect.objectContaining({
        name: 'web',
        ready: 2,
        desired: 2,
        revision: '3',
        rollout: 'complete',
        images: ['shop/web:1.2'],
        state: 'ok',
      }),
    ]);
    expect(h.backups).toHaveLength(1);
    const b = h.backups[0];
    expect(b).toMatchObject({ name: 'app', rpoObjective: '1h', rpoObjectiveSeconds: 3600, state: 'ok' });
    expect(b.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(b.ageSeconds).toBeLessThan(600);
    expect(b.newestBackup.verified).toBe(true);
    expect(b.conditions).toMatchObject({
      Ready: { status: 'True' },
      LastBackupSucceeded: { status: 'True' },
      RPOMet: { status: 'True' },
      LastTestRestoreSucceeded: { status: 'True' },
    });
    expect(b.lastTestRestore).toMatchObject({ backupId: b.newestBackup.id, result: 'Succeeded' });
    expect(h.plans).toMatchObject({ total: 2, active: [{ name: 'web-undo', phase: 'Armed' }] });
    expect(h.operator).toMatchObject({
      lease: { namespace: OPERATOR_NAMESPACE, name: DEFAULT_LEASE },
      found: true,
      state: 'ok',
    });
    expect(h.operator.holder).toMatch(new RegExp(`^${POD}_`));
    expect(h.operator.renewAgeSeconds).toBeLessThanOrEqual(h.operator.leaseDurationSeconds);

    const table = await runCli(['-n', ns.app, 'health']);
    console.log(`$ nxt-rollback -n ${ns.app} health\n${table.stdout}`);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^TARGETS/);
    expect(table.stdout).toMatch(/^web\s+2\/2\s+3\s+complete\s+ok\s+shop\/web:1\.2$/m);
    expect(table.stdout.trim().split('\n').pop()).toBe('healthy');
  });

  it('health: no leader Lease and a schedule without a backup are unhealthy (exit 1), each named', async () => {
    const noLease = await runCli(['-n', ns.app, 'health', '--lease', 'no-such-lease']);
    expect(noLease.code, noLease.stderr).toBe(1);
    expect(noLease.stdout.trim().split('\n').pop()).toBe(
      `unhealthy: operator: no leader: Lease ${OPERATOR_NAMESPACE}/no-such-lease not found (is the operator running, with leader election on?)`,
    );

    const r = await runCli(['-n', ns.empty, 'health', '--deployments', 'single,gone', '-o', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const h = parseJson(r);
    expect(h.healthy).toBe(false);
    expect(h.unhealthy).toEqual([
      'deployment gone: Deployment gone not found',
      'backup nobackup: no verified backup yet',
    ]);
    expect(h.targets.map((t: any) => [t.name, t.state])).toEqual([
      ['gone', 'unhealthy'],
      ['single', 'ok'],
    ]);
  });

  it('health: a backup older than the RPO objective is unhealthy', async () => {
    await patchSchedule(ns.app, 'app', { spec: { objectives: { rpo: '1s' } } });
    try {
      // The newest backup is older than 1s by now, whatever the operator last wrote.
      const r = await runCli(['-n', ns.app, 'health', '-o', 'json']);
      expect(r.code, r.stderr).toBe(1);
      const h = parseJson(r);
      expect(h.unhealthy).toHaveLength(1);
      expect(h.unhealthy[0]).toMatch(/^backup app: newest verified backup is \S+ old, RPO objective 1s$/);
    } finally {
      await patchSchedule(ns.app, 'app', { spec: { objectives: null } });
    }
  });

  it('readiness: ready from live state (exit 0), and the dry-run plans are gone afterwards', async () => {
    const r = await runCli(['-n', ns.app, 'readiness', '-o', 'json']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = parseJson(r);
    expect(out.ready).toBe(true);
    const byName = Object.fromEntries(out.checks.map((c: any) => [c.name, c]));
    expect(Object.keys(byName)).toEqual([
      'fresh backup (app)',
      'test restore (app)',
      'rollback dry run (web)',
      'operator leader',
      'rbac: you create plans',
      'rbac: you delete plans',
      'rbac: you approve plans',
      'rbac: operator rolls back',
    ]);
    for (const c of out.checks) expect(c.result, `${c.name}: ${c.detail}`).toBe('Pass');
    expect(byName['rollback dry run (web)'].detail).toMatch(/revision 3 .*2/);
    expect(byName['rbac: operator rolls back'].detail).toBe(
      `system:serviceaccount:${OPERATOR_NAMESPACE}:nxt-rollback-operator patch deployments.apps in ${ns.app}: allowed`,
    );
    expect(await plansIn(ns.app)).toEqual([
      'rollbackplan.rollback.nxtnewday.io/typo-dry-run',
      'rollbackplan.rollback.nxtnewday.io/web-undo',
    ]);

    const table = await runCli(['-n', ns.app, 'readiness']);
    console.log(`$ nxt-rollback -n ${ns.app} readiness\n${table.stdout}`);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^CHECK\s+RESULT\s+DETAIL$/m);
    expect(table.stdout.trim().split('\n').pop()).toBe('ready');
  });

  it('readiness: no backup and a Deployment without a previous revision are not ready (exit 1)', async () => {
    const r = await runCli(['-n', ns.empty, 'readiness', '--deployments', 'single', '-o', 'json']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1);
    const out = parseJson(r);
    expect(out.ready).toBe(false);
    const result = Object.fromEntries(out.checks.map((c: any) => [c.name, c]));
    expect(result['fresh backup (nobackup)']).toMatchObject({
      result: 'Fail',
      detail: 'no verified backup yet (limit RPO 1h)',
    });
    expect(result['test restore (nobackup)'].result).toBe('Fail');
    expect(result['rollback dry run (single)']).toMatchObject({
      result: 'Fail',
      detail: expect.stringContaining('no rollout history found for deployment "single"'),
    });
    expect(result['operator leader'].result).toBe('Pass');
    expect(await plansIn(ns.empty)).toEqual([]);

    const table = await runCli(['-n', ns.empty, 'readiness', '--deployments', 'single']);
    console.log(`$ nxt-rollback -n ${ns.empty} readiness --deployments single\n${table.stdout}`);
    expect(table.stdout.trim().split('\n').pop()).toBe(
      'not ready: failed fresh backup (nobackup), test restore (nobackup), rollback dry run (single)',
    );
    // --max-backup-age tightens the freshness check below the objective.
    const strict = await runCli(['-n', ns.app, 'readiness', '--max-backup-age', '1s', '-o', 'json']);
    expect(strict.code).toBe(1);
    expect(parseJson(strict).checks[0]).toMatchObject({ name: 'fresh backup (app)', result: 'Fail' });
  });

  it('a limited user gets exit 4 naming the verb and the resource', async () => {
    // May read plans, schedules and Deployments in the app namespace, but not create plans; nothing elsewhere.
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns.app,
      serviceAccount: 'viewer',
      verbs: ['get', 'list', 'watch'],
      resources: [
        'rollbackplans.rollback.nxtnewday.io',
        'backupschedules.rollback.nxtnewday.io',
        'deployments.apps',
      ],
    });

    const readiness = await runCli(['-n', ns.app, 'readiness'], { kubeconfig });
    expect(readiness.code, readiness.stderr).toBe(4);
    expect(readiness.stderr).toMatch(/cannot create resource "rollbackplans"/);

    const health = await runCli(['-n', ns.empty, 'health'], { kubeconfig });
    expect(health.code, health.stderr).toBe(4);
    expect(health.stderr).toMatch(/cannot list resource "rollbackplans"/);
    expect(health.stderr).toContain(`in the namespace "${ns.empty}"`);

    // Allowed in its namespace: the Lease it may not read is "unknown", which fails the verdict.
    const own = await runCli(['-n', ns.app, 'health', '-o', 'json'], { kubeconfig });
    expect(own.code, own.stderr).toBe(1);
    expect(parseJson(own).operator).toMatchObject({ state: 'unknown' });
    expect(parseJson(own).operator.message).toMatch(/cannot get resource "leases"/);
  });

  it('readiness: a check it could not make (Unknown) fails the gate unless --allow-unknown, and is named', async () => {
    // May do what readiness does in the app namespace, but read no Lease and create no SubjectAccessReview.
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns.app,
      serviceAccount: 'gate',
      verbs: ['get', 'list', 'watch', 'create', 'delete', 'patch'],
      resources: ['rollbackplans.rollback.nxtnewday.io', 'backupschedules.rollback.nxtnewday.io'],
    });
    const strict = await runCli(['-n', ns.app, 'readiness'], { kubeconfig });
    expect(strict.code, `${strict.stdout}\n${strict.stderr}`).toBe(1);
    expect(strict.stdout.trim().split('\n').pop()).toBe(
      'not ready: could not check operator leader, rbac: operator rolls back (--allow-unknown accepts that)',
    );
    const lenient = await runCli(['-n', ns.app, 'readiness', '--allow-unknown', '-o', 'json'], {
      kubeconfig,
    });
    expect(lenient.code, `${lenient.stdout}\n${lenient.stderr}`).toBe(0);
    expect(parseJson(lenient)).toMatchObject({
      ready: true,
      failed: [],
      unknown: ['operator leader', 'rbac: operator rolls back'],
      allowUnknown: true,
    });
    expect(await plansIn(ns.app)).toHaveLength(2);
  });

  it('readiness: Ctrl-C deletes its dry-run plans (labelled created-by) before exiting', async () => {
    const selector = 'rollback.nxtnewday.io/created-by=nxt-rollback-readiness';
    const child = spawnCli(['-n', ns.unwatched, 'readiness', '--deployments', 'web', '--timeout', '2m']);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await eventually(
      'the labelled dry-run plan',
      async () =>
        (await kubectl('-n', ns.unwatched, 'get', 'rollbackplans', '-l', selector, '-o', 'name')).trim() ||
        undefined,
    );
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toContain('SIGINT: stopping readiness, deleting its dry-run plans');
    expect(await plansIn(ns.unwatched)).toEqual([]);
  });

  it('readiness --timeout: exit 5 when no operator answers the dry run, and the dry-run plan is deleted', async () => {
    const started = Date.now();
    const r = await runCli(['-n', ns.unwatched, 'readiness', '--deployments', 'web', '--timeout', '3s']);
    expect(r.code, r.stderr).toBe(5);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/timed out after 3s waiting for the dry run of web/);
    expect(r.stderr).toContain(`is it running and watching namespace ${ns.unwatched}?`);
    expect(await plansIn(ns.unwatched)).toEqual([]);
  });

  it('usage errors exit 2', async () => {
    const r = await runCli(['readiness', '--max-backup-age', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--max-backup-age must be a duration');
  });
});
