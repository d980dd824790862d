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
  getSchedule,
  scheduleSpec,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import { parseJson, runCli, spawnCli } from '../support/cli.js';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase } from '../support/postgres.js';
import { limitedUserKubeconfig, operatorKubeconfig } from '../support/rbac.js';
import { deploymentWithHistory, imageOf, REVISION } from '../support/workloads.js';
import { testClients } from '../support/kube.js';

// `nxt-rollback drill` on demo-like objects (hack/demo.ts): a Deployment with three revisions, a critical
// plan's RTO, a BackupSchedule with a real backup. The operator watches every namespace (the drill runs in a
// scratch namespace of its own) and really rolls back and really test-restores (test kubelet + PostgreSQL).
describe.skipIf(inject('existingCluster'))('CLI drill', () => {
  const { apps } = testClients();
  let ns = '';
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;

  const drillNamespaces = async () =>
    (await kubectl('get', 'namespaces', '-o', 'name'))
      .split('\n')
      .filter((n) => n.startsWith('namespace/nxt-drill-'));

  beforeAll(async () => {
    ns = await createTestNamespace('clid-shop');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-clid-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator();
    await op.waitReady();
    await deploymentWithHistory(
      ns,
      'checkout',
      ['shop/checkout:1.4.0', 'shop/checkout:1.5.0', 'shop/checkout:1.6.0'],
      3,
    );
    await deploymentWithHistory(ns, 'single', ['shop/single:1.0']);
    await applyPlan(ns, 'checkout-dry-run', {
      scope: 'app',
      dryRun: true,
      severity: 'critical',
      targets: { deployments: [{ name: 'checkout' }] },
      objectives: { rto: '2m' },
    });
    await waitPlanPhase(ns, 'checkout-dry-run', ['DryRunComplete']);
    const db = await createTestDatabase('clid');
    await fillDatabase(db.url, db.name);
    await createDbSecret(ns, 'shop-db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'shop-backups'));
    await applySchedule(ns, 'shop-db', {
      ...scheduleSpec('shop-db', 'shop-backups'),
      retention: { keepLast: 12 },
      objectives: { rpo: '1h' },
    });
    await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
    await backupNow(ns, 'shop-db', 'first');
    await waitScheduleCondition(ns, 'shop-db', 'LastBackupSucceeded', 'True', 'BackupVerified', 90_000);
  }, 300_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}`);
      console.log(`--- operator ---\n${op?.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.stop();
    await deleteTestNamespace(ns);
    for (const n of await drillNamespaces()) await kubectl('delete', n, '--wait=false');
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('rolls back a copy and test-restores the newest backup, reporting measured RTO and RPO (exit 0)', async () => {
    const before = await getSchedule(ns, 'shop-db');
    const backupId = before.status.lastSuccessfulBackup.id;
    const r = await runCli(['-n', ns, 'drill', '-o', 'json'], { timeoutMs: 300_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const d = parseJson(r);
    expect(d.source).toEqual({ namespace: ns, deployment: 'checkout', revision: '3', previousRevision: '2' });
    expect(d.scratchNamespace).toMatch(/^nxt-drill-[0-9a-f]{8}$/);
    expect(d.cleanup).toBe('deleted');
    // In the scratch copy revision 1 is the source's previous template, revision 2 its current one.
    expect(d.app).toMatchObject({
      plan: 'drill',
      phase: 'Succeeded',
      fromRevision: 2,
      toRevision: 1,
      rto: '2m',
      rtoSeconds: 120,
      rtoMet: true,
    });
    expect(d.app.durationSeconds).toBeGreaterThan(0);
    expect(d.app.durationSeconds).toBeLessThan(120);
    expect(d.database).toMatchObject({
      schedule: 'shop-db',
      backupId,
      result: 'Succeeded',
      rpo: '1h',
      rpoSeconds: 3600,
      rpoMet: true,
      restoreWithinRto: true,
    });
    expect(d.database.request).toMatch(/^latest@drill-[0-9a-f]{8}$/);
    // The measured restore time is the one the operator recorded on the schedule for this request.
    const recorded = (await getSchedule(ns, 'shop-db')).status.lastTestRestore;
    expect(typeof d.database.durationSeconds).toBe('number');
    expect(d.database.durationSeconds).toBe(recorded.durationSeconds);
    expect(recorded.finishedAt).not.toBe(before.status.lastTestRestore?.finishedAt);
    expect(d.database.backupAgeSeconds).toBeLessThan(600);
    expect(d).toMatchObject({ met: true, problems: [] });
    // The operator recorded the restore the drill asked for; the source Deployment was not touched.
    const after = await getSchedule(ns, 'shop-db');
    expect(after.status.lastTestRestoreNow).toMatchObject({ annotationValue: d.database.request, backupId });
    expect(after.status.lastTestRestore).toMatchObject({ backupId, result: 'Succeeded' });
    expect(await imageOf(ns, 'checkout')).toBe('shop/checkout:1.6.0');
    const source = await apps.readNamespacedDeployment({ name: 'checkout', namespace: ns });
    expect(source.metadata?.annotations?.[REVISION]).toBe('3');
    expect(await drillNamespaces()).toEqual([]);

    const table = await runCli(['-n', ns, 'drill'], { timeoutMs: 300_000 });
    console.log(`$ nxt-rollback -n ${ns} drill\n${table.stdout}`);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      /^rollback \(RTO\)\s+plan drill Succeeded, revision 2 -> 1\s+\S+\s+2m\s+met$/m,
    );
    expect(table.stdout.trim().split('\n').pop()).toBe('drill met its objectives');
  });

  it('a Deployment without a previous revision: exit 1, nothing created', async () => {
    const r = await runCli(['-n', ns, 'drill', '--deployment', 'single']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`Deployment ${ns}/single has no previous revision`);
    expect(await drillNamespaces()).toEqual([]);
    const missing = await runCli(['-n', ns, 'drill', '--deployment', 'nope']);
    expect(missing.code, missing.stderr).toBe(3);
  });

  it('--timeout: exit 5, and the scratch namespace is deleted', async () => {
    const r = await runCli([
      '-n',
      ns,
      'drill',
      '--deployment',
      'checkout',
      '--no-database',
      '--timeout',
      '5ms',
    ]);
    expect(r.code, r.stderr).toBe(5);
    // kwok rolls out the one-replica copy well within a second (a whole drill can finish within 1s), so the
    // deadline is a few milliseconds: it passes in the first wait.
    expect(r.stderr).toMatch(
      /^error: timed out after \S+ waiting for (Deployment nxt-drill-[0-9a-f]+\/checkout to roll out|the drill's rollback)/,
    );
    expect(await drillNamespaces()).toEqual([]);
  });

  it('Ctrl-C deletes the scratch namespace before exiting', async () => {
    const child = spawnCli(['-n', ns, 'drill', '--no-database']);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const scratch = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        const m = /in namespace (nxt-drill-[0-9a-f]+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`drill exited early: ${stdout}\n${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toContain(`SIGINT: stopping the drill, deleting namespace ${scratch}`);
    // The CLI waited until the namespace was gone before exiting.
    expect(await drillNamespaces()).toEqual([]);
  });

  it('a user who may delete but not watch namespaces: the cleanup says deleted (could not watch it go)', async () => {
    // Everything the drill needs, except list/watch on namespaces (docs/cli/health.md lists the permissions).
    const sa = 'driller';
    const roles = [`${ns}-drill-ns`, `${ns}-drill-objects`];
    await kubectl('-n', ns, 'create', 'serviceaccount', sa);
    await kubectl('create', 'clusterrole', roles[0]!, '--verb=create,delete,get', '--resource=namespaces');
    await kubectl(
      'create',
      'clusterrole',
      roles[1]!,
      '--verb=get,list,watch,create,patch',
      '--resource=deployments.apps,replicasets.apps,rollbackplans.rollback.nxtnewday.io,serviceaccounts',
    );
    for (const role of roles)
      await kubectl(
        'create',
        'clusterrolebinding',
        role,
        `--clusterrole=${role}`,
        `--serviceaccount=${ns}:${sa}`,
      );
    try {
      const kubeconfig = await operatorKubeconfig({ namespace: ns, serviceAccount: sa });
      const r = await runCli(['-n', ns, 'drill', '--deployment', 'checkout', '--no-database', '-o', 'json'], {
        kubeconfig,
        timeoutMs: 300_000,
      });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const d = parseJson(r);
      expect(d.cleanup).toBe('deleting');
      expect(r.stderr).not.toContain('is still there');
      await eventually(
        'the scratch namespace is gone',
        async () => !(await drillNamespaces()).length,
        120_000,
      );
    } finally {
      for (const role of roles) {
        await kubectl('delete', 'clusterrolebinding', role, '--ignore-not-found');
        await kubectl('delete', 'clusterrole', role, '--ignore-not-found');
      }
    }
  });

  it('a user who may not create namespaces gets exit 4 naming verb and resource', async () => {
    const kubeconfig = await limitedUserKubeconfig({
      namespace: ns,
      serviceAccount: 'dev',
      verbs: ['get', 'list', 'watch'],
      resources: [
        'rollbackplans.rollback.nxtnewday.io',
        'backupschedules.rollback.nxtnewday.io',
        'deployments.apps',
        'replicasets.apps',
      ],
    });
    const r = await runCli(['-n', ns, 'drill'], { kubeconfig });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/create namespaces: forbidden: .*cannot create resource "namespaces"/);
    // Nothing was created, so nothing is deleted (or warned about).
    expect(r.stderr).not.toContain('could not delete');
    await eventually('no scratch namespace', async () => (await drillNamespaces()).length === 0);
  });
});
