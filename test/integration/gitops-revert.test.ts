import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { LocalFlux } from '../env/flux.js';
import { deploymentYaml } from '../support/flux-apps.js';
import { LocalGitServer, type GitRepo } from '../env/git-server.js';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  BACKUP_NOW,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  getSchedule,
  scheduleJobs,
  scheduleSpec,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { condition, getPlan, waitForEvents, waitPlanPhase, withReasons } from '../support/plans.js';
import { createTestDatabase, withClient } from '../support/postgres.js';
import { imageOf, waitRolledOut, writersOf } from '../support/workloads.js';

// Issue 11 with real Flux (source-controller + kustomize-controller v1.9.6) and a real Git server:
// (1) a Git revert, with no operator action, fires an onRevert plan that records its checks;
// (2) a Kustomization with wait: true applying armed plans and a BackupSchedule becomes Ready;
// (3) a Kustomization that dependsOn the one holding a BackupSchedule whose backup-now changed in the same
//     commit is held until that backup is recorded (the runner Job really runs on the test kubelet).
// The YAML below is the YAML of docs/gitops.md.

const V1 = 'nginx:1.25';
const V2 = 'nginx:1.26';
const V3 = 'nginx:1.27';
const GROUP = 'rollback.nxtnewday.io/v1alpha1';

/** JSON is YAML: objects whose spec the test builds (the runner placement of the test kubelet). */
const yamlOf = (...objs: object[]) => objs.map((o) => JSON.stringify(o, null, 2)).join('\n---\n') + '\n';

/**
 * The Flux health check of a BackupSchedule's pre-deployment backup (docs/gitops.md): in progress until the
 * backup of the current backup-now value is recorded, failed when it failed. CEL, because a backup-now
 * annotation change does not bump metadata.generation: kstatus alone could read the schedule before the
 * operator saw the new value.
 */
const BACKUP_SCHEDULE_HEALTH = {
  apiVersion: GROUP,
  kind: 'BackupSchedule',
  inProgress:
    "metadata.?annotations[?'rollback.nxtnewday.io/backup-now'].orValue('') != '' && " +
    "(status.?lastBackupNow.?annotationValue.orValue('') != metadata.annotations['rollback.nxtnewday.io/backup-now'] || " +
    "status.?lastBackupNow.?result.orValue('') == '')",
  failed:
    "status.?lastBackupNow.?result.orValue('') == 'Failed' || " +
    "status.?conditions.orValue([]).exists(c, c.type == 'Stalled' && c.status == 'True')",
  current: "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')",
};

function fluxObjects(o: {
  namespace: string;
  repo: string;
  url: string;
  kustomizations: {
    name: string;
    path: string;
    wait: boolean;
    dependsOn?: string;
    healthCheckExprs?: object[];
  }[];
}): string {
  return yamlOf(
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: o.repo, namespace: o.namespace },
      spec: { url: o.url, ref: { branch: 'main' }, interval: '5s', timeout: '20s' },
    },
    ...o.kustomizations.map((k) => ({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: k.name, namespace: o.namespace },
      spec: {
        sourceRef: { kind: 'GitRepository', name: o.repo },
        path: k.path,
        targetNamespace: o.namespace,
        prune: true,
        wait: k.wait,
        interval: '1m',
        retryInterval: '5s',
        timeout: '3m',
        ...(k.dependsOn ? { dependsOn: [{ name: k.dependsOn }] } : {}),
        ...(k.healthCheckExprs ? { healthCheckExprs: k.healthCheckExprs } : {}),
      },
    })),
  );
}

describe.skipIf(inject('existingCluster'))('GitOps reverts and pre-deployment backups with real Flux', () => {
  const { apps, batch, custom } = testClients();
  let ns = '';
  let flux: LocalFlux | undefined;
  let git: LocalGitServer | undefined;
  let op: OperatorProcess | undefined;
  let kubelet: TestKubelet | undefined;
  let workDir = '';
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  const log = (m: string) => console.log(`[gitops-revert] ${m}`);

  const kustomization = (name: string): Promise<any> =>
    custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'kustomizations',
      namespace: ns,
      name,
    });

  async function applyFluxObjects(yaml: string) {
    const dir = mkdtempSync(join(tmpdir(), 'nxt-flux-objects-'));
    try {
      writeFileSync(join(dir, 'flux.yaml'), yaml);
      await kubectl('apply', '--server-side', '-f', join(dir, 'flux.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  beforeAll(async () => {
    ns = await createTestNamespace('gitops-rv');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-gitops-kubelet-'));
    [flux, git, op, kubelet] = await Promise.all([
      LocalFlux.start({ kubeconfigPath: inject('kubeconfigPath'), log }),
      LocalGitServer.start({ log }),
      startOperator({ env: { WATCH_NAMESPACES: ns } }),
      startRunnerKubelet(workDir, (m) => kubeletLog.push(m)),
    ]);
    await op.waitReady();
    // The database the BackupSchedules back up, its Secret and a bound claim (not in Git: set up by hand).
    const db = await createTestDatabase('gitops');
    await withClient(db.url, async (c) => {
      await c.query('create table orders (id int primary key, note text not null)');
      await c.query("insert into orders select g, 'order ' || g from generate_series(1, 1000) g");
    });
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'backups'));
  }, 30 * 60_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}`);
      console.log(`--- operator ---\n${op?.logs().slice(-6000)}`);
    }
  });

  afterAll(async () => {
    if (ns && flux) {
      await kubectl('-n', ns, 'delete', 'kustomizations,gitrepositories', '--all', '--timeout=60s').catch(
        (e) => log(String(e)),
      );
    }
    await op?.kill();
    await flux?.stop();
    await git?.stop();
    await kubelet?.stop();
    if (ns) await deleteTestNamespace(ns);
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('(1) a Git revert pushed without any operator action fires an onRevert plan, which records its checks', async () => {
    const repo: GitRepo = await git!.createRepo('web');
    await repo.commit({ 'deploy/deployment.yaml': deploymentYaml('web', V1) }, `web ${V1}`);
    await applyFluxObjects(
      fluxObjects({
        namespace: ns,
        repo: 'web',
        url: repo.url,
        kustomizations: [{ name: 'web', path: './deploy', wait: false }],
      }),
    );
    await waitRolledOut(ns, 'web', '1');
    await repo.commit({ 'deploy/deployment.yaml': deploymentYaml('web', V2) }, `web ${V2}`);
    await waitRolledOut(ns, 'web', '2');

    // The plan comes from Git too, next to the app (docs/gitops.md).
    await repo.commit(
      {
        'deploy/rollbackplan.yaml': yamlOf({
          apiVersion: GROUP,
          kind: 'RollbackPlan',
          metadata: { name: 'web-on-revert' },
          spec: {
            scope: 'app',
            reason: 'a Git revert of web gets the same checks as a rollback',
            trigger: { mode: 'onRevert' },
            targets: { deployments: [{ name: 'web' }] },
            validation: { timeout: '2m' },
          },
        }),
      },
      'web: onRevert plan',
    );
    let plan = await waitPlanPhase(ns, 'web-on-revert', ['Armed', 'Succeeded', 'Failed'], 60_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Armed');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(plan.status.armed.revisions).toEqual([{ deployment: 'web', revision: 2 }]);

    // A plain new rollout (a new template) does not fire it.
    const v3 = await repo.commit({ 'deploy/deployment.yaml': deploymentYaml('web', V3) }, `web ${V3}`);
    await waitRolledOut(ns, 'web', '3');
    await eventually(
      'the plan to look at revision 3',
      async () => (await getPlan(ns, 'web-on-revert')).status.armed?.revisions?.[0]?.revision === 3,
      30_000,
      200,
    );
    plan = await getPlan(ns, 'web-on-revert');
    expect(plan.status.phase).toBe('Armed');
    expect(plan.status.trigger).toBeUndefined();
    await waitForEvents(ns, 'web-on-revert', withReasons('NewRevision'));

    // The team reverts the bad commit in Git; Flux applies v2's template again; nobody touches the operator.
    await repo.revert(v3);
    plan = await waitPlanPhase(ns, 'web-on-revert', ['Succeeded', 'Failed'], 120_000);
    expect(plan.status.phase, JSON.stringify(plan.status, null, 1)).toBe('Succeeded');
    expect(plan.status.trigger).toMatchObject({
      condition: 'onRevert',
      observed: expect.stringMatching(/Deployment web: revision 2 re-used as revision 4 .*was on revision 3/),
    });
    expect(condition(plan, 'Triggered')).toMatchObject({ status: 'True', reason: 'GitOpsRevert' });
    expect(plan.status.deployments).toEqual([
      expect.objectContaining({
        name: 'web',
        fromRevision: 3,
        toRevision: 2,
        result: 'RolledBack',
        message: expect.stringMatching(/rolled back by GitOps/),
      }),
    ]);
    const steps = Object.fromEntries(plan.status.steps.map((s: any) => [s.name, s]));
    expect(steps.AppRollback).toMatchObject({
      result: 'Succeeded',
      message: expect.stringMatching(/GitOps/),
    });
    expect(steps.PostValidation).toMatchObject({
      result: 'Succeeded',
      message: expect.stringMatching(/1 Deployment\(s\) rolled out and available/),
    });
    expect(condition(plan, 'PostValidationPassed')).toMatchObject({ status: 'True' });
    expect(condition(plan, 'RolledBack')).toMatchObject({ status: 'True' });
    // The operator did not patch the Deployment: Flux did all of it.
    expect(await imageOf(ns, 'web')).toBe(V2);
    expect(await writersOf(ns, 'web')).not.toContainEqual(expect.stringMatching(/nxt-rollback/));
    await waitForEvents(
      ns,
      'web-on-revert',
      withReasons('Armed', 'NewRevision', 'Triggered', 'Started', 'Succeeded'),
    );
    expect(
      await metricValue(op!.metricsUrl, 'nxt_rollback_total', {
        scope: 'app',
        trigger: 'onRevert',
        result: 'succeeded',
      }),
    ).toBe(1);
    // Flux is still in charge and agrees (the revert is what Git says).
    const ks = await kustomization('web');
    expect(ks.spec.suspend ?? false).toBe(false);
  });

  it('(2) a Kustomization with wait: true applying armed plans and a BackupSchedule becomes Ready', async () => {
    const repo = await git!.createRepo('armed');
    await repo.commit(
      {
        'deploy/deployment.yaml': deploymentYaml('steady', V1),
        'deploy/plans.yaml': yamlOf(
          {
            apiVersion: GROUP,
            kind: 'RollbackPlan',
            metadata: { name: 'steady-auto' },
            spec: {
              scope: 'app',
              severity: 'medium',
              trigger: {
                mode: 'auto',
                conditions: [{ type: 'DeploymentUnavailable', deployment: 'steady', for: '5m' }],
              },
              targets: { deployments: [{ name: 'steady' }] },
            },
          },
          {
            apiVersion: GROUP,
            kind: 'RollbackPlan',
            metadata: { name: 'steady-on-revert' },
            spec: {
              scope: 'app',
              trigger: { mode: 'onRevert' },
              targets: { deployments: [{ name: 'steady' }] },
            },
          },
        ),
        'deploy/backupschedule.yaml': yamlOf({
          apiVersion: GROUP,
          kind: 'BackupSchedule',
          metadata: { name: 'nightly' },
          spec: scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }),
        }),
      },
      'armed plans and a schedule',
    );
    await applyFluxObjects(
      fluxObjects({
        namespace: ns,
        repo: 'armed',
        url: repo.url,
        kustomizations: [{ name: 'armed', path: './deploy', wait: true }],
      }),
    );
    const ks = await eventually(
      'Kustomization armed to be Ready',
      async () => {
        const k = await kustomization('armed');
        const ready = condition(k, 'Ready');
        if (ready?.status === 'True') return k;
        throw new Error(JSON.stringify(ready ?? k.status ?? 'no status'));
      },
      100_000,
      500,
    );
    expect(condition(ks, 'Healthy')).toMatchObject({ status: 'True' });
    for (const name of ['steady-auto', 'steady-on-revert']) {
      const p = await getPlan(ns, name);
      expect(p.status.phase, name).toBe('Armed');
      expect(condition(p, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    }
    // kstatus reads a custom resource without status as Current: the schedule may still be unreconciled when
    // Flux reads it, and becomes Ready right after (docs/gitops.md).
    await waitScheduleCondition(ns, 'nightly', 'Ready', 'True', 'Scheduled');
    expect(condition(await kustomization('armed'), 'Ready')).toMatchObject({ status: 'True' });
  });

  it('(3) dependsOn a BackupSchedule whose backup-now changed in the same commit holds the app until the backup is recorded', async () => {
    const repo = await git!.createRepo('gate');
    const schedule = (value: string) =>
      yamlOf({
        apiVersion: GROUP,
        kind: 'BackupSchedule',
        metadata: { name: 'predeploy', annotations: { [BACKUP_NOW]: value } },
        spec: scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }),
      });
    await repo.commit(
      {
        'infra/backupschedule.yaml': schedule('release-1'),
        'app/deployment.yaml': deploymentYaml('gated', V1),
      },
      'release 1',
    );
    await applyFluxObjects(
      fluxObjects({
        namespace: ns,
        repo: 'gate',
        url: repo.url,
        kustomizations: [
          { name: 'gate-infra', path: './infra', wait: true, healthCheckExprs: [BACKUP_SCHEDULE_HEALTH] },
          { name: 'gate-app', path: './app', wait: false, dependsOn: 'gate-infra' },
        ],
      }),
    );
    await waitRolledOut(ns, 'gated', '1');
    let s = await getSchedule(ns, 'predeploy');
    expect(s.status.lastBackupNow).toMatchObject({ annotationValue: 'release-1', result: 'Succeeded' });

    // One commit: a new backup-now value and the new release.
    await repo.commit(
      {
        'infra/backupschedule.yaml': schedule('release-2'),
        'app/deployment.yaml': deploymentYaml('gated', V2),
      },
      'release 2 (with its pre-deployment backup)',
    );
    const samples: { recorded: boolean; image?: string; ready?: string }[] = [];
    let sawInProgress = false;
    await eventually(
      `the app to roll out ${V2}`,
      async () => {
        // Schedule first, then the app: an app at V2 read after a schedule without the backup is a violation.
        s = await getSchedule(ns, 'predeploy');
        const recorded =
          s.status?.lastBackupNow?.annotationValue === 'release-2' &&
          s.status.lastBackupNow.result === 'Succeeded';
        const ready = condition(s, 'Reconciling');
        if (ready?.status === 'True' && ready.reason === 'BackupInProgress') sawInProgress = true;
        const image = await imageOf(ns, 'gated');
        samples.push({ recorded, image, ready: ready?.reason });
        return image === V2;
      },
      180_000,
      200,
    );
    const early = samples.filter((x) => x.image === V2 && !x.recorded);
    expect(early, 'the app rolled out before its backup was recorded').toEqual([]);
    expect(
      samples.some((x) => !x.recorded && x.image === V1),
      'the app was held',
    ).toBe(true);
    expect(sawInProgress, 'the schedule read BackupInProgress while the backup ran').toBe(true);

    // The backup Job finished before the new ReplicaSet existed (server timestamps).
    const job = (await scheduleJobs(ns, 'predeploy')).find(
      (j) => j.metadata?.name === s.status.lastBackupNow.jobName,
    );
    expect(job?.status?.completionTime).toBeTruthy();
    const rss = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=gated' });
    const v2rs = rss.items.find((r) => r.spec?.template?.spec?.containers?.[0]?.image === V2);
    expect(new Date(v2rs!.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(
      new Date(job!.status!.completionTime!).getTime(),
    );
    expect(
      (await batch.readNamespacedJob({ namespace: ns, name: job!.metadata!.name! })).metadata?.annotations,
    ).toMatchObject({
      'rollback.nxtnewday.io/recorded': 'succeeded',
    });
    expect(condition(await kustomization('gate-infra'), 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(s, 'Ready')).toMatchObject({ status: 'True' });
    s = await waitScheduleCondition(ns, 'predeploy', 'Reconciling', 'False');
    expect(condition(s, 'Stalled')).toMatchObject({ status: 'False' });
  });
});
