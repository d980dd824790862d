import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LocalFlux } from '../env/flux.js';
import { LocalGitServer } from '../env/git-server.js';
import { runCli, parseJson } from '../support/cli.js';
import {
  fluxApp,
  kustomization,
  patchKustomization,
  reconcileNow,
  type FluxApp,
} from '../support/flux-apps.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import {
  applyPlan,
  condition,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import { deploymentWithHistory, imageOf, REVISION, waitRolledOut } from '../support/workloads.js';

// spec.gitops.policy against real Flux (source-controller + kustomize-controller v1.9.6, test/env/flux.ts) and a
// real Git server: suspend (the default) makes a rollback stick and a pushed Git revert resumes the
// Kustomization without another rollout; refuse touches nothing; resume on the annotation (the CLI) and after
// resumeAfter; an owner a human suspended is never resumed; a kill right after the pause loses nothing.
// (policy ignore, where Flux undoes the rollback: gitops-flux.test.ts.) docs/gitops.md shows these workflows.

const V1 = 'nginx:1.25';
const V2 = 'nginx:1.26';
// The main operator re-reads sources only every 10 minutes: a resume within the test comes from the watch on the
// GitRepository (operator/gitops/source-watch.ts). The restarted operator of the crash test uses 2s.
const RESUME_CHECK = '10m';

describe('GitOps policies with real Flux', () => {
  const { apps } = testClients();
  let ns = '';
  let crashNs = '';
  let flux: LocalFlux | undefined;
  let git: LocalGitServer | undefined;
  let op: OperatorProcess | undefined;
  const app: Record<string, FluxApp> = {};
  const log = (m: string) => console.log(`[gitops-suspend] ${m}`);
  const owner = (plan: any) => plan.status?.gitops?.owners?.[0];
  const deployment = (namespace: string, name: string) => apps.readNamespacedDeployment({ name, namespace });
  const replicaSetUids = async (namespace: string, name: string) =>
    (await apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${name}` })).items
      .map((rs) => rs.metadata!.uid!)
      .sort();
  const waitOwnerState = (namespace: string, plan: string, state: string, timeoutMs = 60_000) =>
    eventually(
      `RollbackPlan ${plan}'s GitOps owner to be ${state}`,
      async () => {
        const p = await getPlan(namespace, plan);
        return owner(p)?.state === state ? p : undefined;
      },
      timeoutMs,
      250,
    );

  beforeAll(async () => {
    [ns, crashNs] = await Promise.all([
      createTestNamespace('gitops-policy'),
      createTestNamespace('gitops-crash'),
    ]);
    [flux, git, op] = await Promise.all([
      LocalFlux.start({ kubeconfigPath: inject('kubeconfigPath'), log }),
      LocalGitServer.start({ log }),
      startOperator({ env: { WATCH_NAMESPACES: ns, GITOPS_RESUME_CHECK_INTERVAL: RESUME_CHECK } }),
    ]);
    await op.waitReady();
    const t0 = Date.now();
    const made = await Promise.all([
      // held: a 10s interval, so an unsuspended Kustomization would undo the rollback within the test.
      fluxApp(git, ns, 'held', [V1, V2], '10s'),
      fluxApp(git, ns, 'refused', [V1, V2]),
      fluxApp(git, ns, 'manual', [V1, V2]),
      fluxApp(git, ns, 'timed', [V1, V2]),
      fluxApp(git, ns, 'human', [V1, V2]),
      fluxApp(git, crashNs, 'crash', [V1, V2]),
    ]);
    ['held', 'refused', 'manual', 'timed', 'human', 'crash'].forEach((n, i) => (app[n] = made[i]!));
    log(`six apps at revision 2 from Git in ${Date.now() - t0} ms`);
  }, 30 * 60_000);

  afterAll(async () => {
    // Delete the Flux objects while Flux runs: their finalizers would block the namespaces otherwise.
    for (const n of [ns, crashNs].filter(Boolean))
      await kubectl('-n', n, 'delete', 'kustomizations,gitrepositories', '--all', '--timeout=60s').catch(
        (e) => log(String(e)),
      );
    await op?.kill();
    await flux?.stop();
    await git?.stop();
    for (const n of [ns, crashNs].filter(Boolean)) await deleteTestNamespace(n);
  });

  it('suspend (the default): the rollback sticks, and a pushed Git revert resumes Flux with no extra rollout', async () => {
    await applyPlan(ns, 'undo-held', {
      scope: 'app',
      reason: 'bad release',
      targets: { deployments: [{ name: 'held' }] },
    });
    const plan = await waitPlanPhase(ns, 'undo-held', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    const ks = await kustomization(ns, 'held');
    expect(ks.spec.suspend, 'the Kustomization is suspended').toBe(true);
    expect(owner(plan)).toMatchObject({
      tool: 'flux',
      kind: 'Kustomization',
      name: 'held',
      namespace: ns,
      deployments: ['held'],
      state: 'Suspended',
      source: `GitRepository ${ns}/held`,
      revisionAtSuspend: `main@sha1:${app.held!.v2}`,
    });
    expect(owner(plan).previous, 'spec.suspend was not set before').toBeUndefined();
    expect(condition(plan, 'GitOpsSuspended')).toMatchObject({
      status: 'True',
      message: expect.stringMatching(
        new RegExp(
          `Flux Kustomization ${ns}/held suspended; still needed: revert the release in Git \\(Deployment held back to the template of revision 1 \\(image ${V1}\\)\\)`,
        ),
      ),
    });
    await waitForEvents(ns, 'undo-held', withReasons('GitOpsSuspended'));

    // Flux handles a reconcile request and more than one interval passes: the rollback stays.
    await reconcileNow(ns, 'held');
    await new Promise((r) => setTimeout(r, 12_000));
    expect(await imageOf(ns, 'held')).toBe(V1);
    const before = await deployment(ns, 'held');
    expect(before.metadata?.annotations?.[REVISION]).toBe('3');
    const rsBefore = await replicaSetUids(ns, 'held');

    // The team reverts the bad release in Git: the source moves to a new revision, the operator resumes.
    const revert = await app.held!.repo.revert(app.held!.v2);
    const resumed = await waitOwnerState(ns, 'undo-held', 'Resumed');
    expect(owner(resumed)).toMatchObject({ resumedBy: 'newRevision', resumedAt: expect.any(String) });
    expect(condition(resumed, 'GitOpsSuspended')).toMatchObject({ status: 'False', reason: 'Resumed' });
    expect(
      (await kustomization(ns, 'held')).spec,
      'restored exactly: the field is gone again',
    ).not.toHaveProperty('suspend');
    await eventually(
      'Flux to apply the revert',
      async () => (await kustomization(ns, 'held')).status?.lastAppliedRevision === `main@sha1:${revert}`,
      60_000,
      250,
    );
    // Git now says what the rollback did: nothing rolls out again.
    const after = await waitRolledOut(ns, 'held', '3');
    expect(after.spec?.template.spec?.containers[0]?.image).toBe(V1);
    expect(after.metadata?.generation, 'no template change').toBe(before.metadata?.generation);
    expect(await replicaSetUids(ns, 'held'), 'no new ReplicaSet').toEqual(rsBefore);
    await waitForEvents(ns, 'undo-held', withReasons('GitOpsResumed'));
  });

  it('refuse: pre-validation fails naming the Kustomization and the Git revert; nothing is touched', async () => {
    const before = await deployment(ns, 'refused');
    const ksBefore = await kustomization(ns, 'refused');
    await applyPlan(ns, 'undo-refused', {
      scope: 'app',
      targets: { deployments: [{ name: 'refused' }] },
      gitops: { policy: 'refuse' },
    });
    const plan = await waitPlanPhase(ns, 'undo-refused', ['Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Failed');
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'GitOpsOwned',
      message: expect.stringMatching(
        new RegExp(
          `Flux Kustomization ${ns}/refused applies refused \\(spec.gitops.policy refuse\\): nothing was changed; instead revert the release in Git \\(Deployment refused back to the template of revision 1 \\(image ${V1}\\)\\)`,
        ),
      ),
    });
    expect(owner(plan)).toMatchObject({ state: 'Refused' });
    const after = await deployment(ns, 'refused');
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    expect(after.spec?.template.spec?.containers[0]?.image).toBe(V2);
    const ks = await kustomization(ns, 'refused');
    expect(ks.metadata.generation).toBe(ksBefore.metadata.generation);
    expect(ks.spec).not.toHaveProperty('suspend');
  });

  it('resume manual: a new revision does not resume; `nxt-rollback gitops resume` does, and Flux re-applies Git', async () => {
    await applyPlan(ns, 'undo-manual', {
      scope: 'app',
      targets: { deployments: [{ name: 'manual' }] },
      gitops: { policy: 'suspend', resume: 'manual' },
    });
    const plan = await waitPlanPhase(ns, 'undo-manual', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect((await kustomization(ns, 'manual')).spec.suspend).toBe(true);

    // A commit lands (an unrelated file): the source moves on, the Kustomization stays suspended.
    const unrelated = await app.manual!.repo.commit({ 'README.md': 'notes\n' }, 'docs');
    await eventually(
      'the GitRepository to fetch the new commit',
      async () =>
        (
          await testClients().custom.getNamespacedCustomObject({
            group: 'source.toolkit.fluxcd.io',
            version: 'v1',
            plural: 'gitrepositories',
            namespace: ns,
            name: 'manual',
          })
        ).status?.artifact?.revision === `main@sha1:${unrelated}`,
      30_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 5_000)); // > 2 resume checks
    expect(owner(await getPlan(ns, 'undo-manual')).state).toBe('Suspended');
    expect(await imageOf(ns, 'manual')).toBe(V1);

    const r = await runCli(['-n', ns, '-o', 'json', 'gitops', 'resume', 'undo-manual']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out).toMatchObject({
      plan: 'undo-manual',
      owners: [`Kustomization ${ns}/manual`],
      state: 'Requested',
    });
    const resumed = await waitOwnerState(ns, 'undo-manual', 'Resumed');
    expect(owner(resumed).resumedBy).toBe('annotation');
    expect(resumed.status.gitops.lastResumeRequest).toBe(out.request);
    expect((await kustomization(ns, 'manual')).spec).not.toHaveProperty('suspend');
    // Git still holds the bad release and Flux applies it again: resuming restored the owner as it was.
    await eventually(`Flux to re-apply ${V2}`, async () => (await imageOf(ns, 'manual')) === V2, 60_000, 250);

    const again = await runCli(['-n', ns, 'gitops', 'resume', 'undo-manual']);
    expect(again.code, 'nothing left to resume').not.toBe(0);
    expect(again.stderr).toMatch(/holds no GitOps owner suspended \(Kustomization .*manual: Resumed\)/);
  });

  it('resumeAfter: the owner is resumed that long after the suspension', async () => {
    await applyPlan(ns, 'undo-timed', {
      scope: 'app',
      targets: { deployments: [{ name: 'timed' }] },
      gitops: { policy: 'suspend', resumeAfter: '8s' },
    });
    const plan = await waitPlanPhase(ns, 'undo-timed', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect((await kustomization(ns, 'timed')).spec.suspend).toBe(true);
    const resumed = await waitOwnerState(ns, 'undo-timed', 'Resumed', 30_000);
    expect(owner(resumed).resumedBy).toBe('resumeAfter');
    const waited = Date.parse(owner(resumed).resumedAt) - Date.parse(owner(resumed).suspendedAt);
    expect(waited).toBeGreaterThanOrEqual(8_000);
    expect((await kustomization(ns, 'timed')).spec).not.toHaveProperty('suspend');
  });

  it('an owner a human had suspended is left suspended (never resumed by the plan)', async () => {
    await patchKustomization(ns, 'human', { spec: { suspend: true } });
    await applyPlan(ns, 'undo-human', {
      scope: 'app',
      targets: { deployments: [{ name: 'human' }] },
      gitops: { policy: 'suspend', resumeAfter: '1s' },
    });
    const plan = await waitPlanPhase(ns, 'undo-human', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect(owner(plan)).toMatchObject({ state: 'AlreadySuspended' });
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await kustomization(ns, 'human')).spec.suspend).toBe(true);
    expect(owner(await getPlan(ns, 'undo-human')).state).toBe('AlreadySuspended');
    expect(await imageOf(ns, 'human')).toBe(V1);
  });

  it('a kill right after the pause loses nothing: the restarted operator finishes and can resume exactly', async () => {
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: crashNs, NXT_FAILPOINTS: 'after-gitops-pause' },
      name: 'crashing',
    });
    await crashing.waitReady();
    await applyPlan(crashNs, 'undo-crash', { scope: 'app', targets: { deployments: [{ name: 'crash' }] } });
    expect(await crashing.exited, 'the failpoint killed the operator').toBe('SIGKILL');
    // The pause landed; status has the original (state Suspending) written before it; nothing rolled back yet.
    const mid = await getPlan(crashNs, 'undo-crash');
    expect(owner(mid)).toMatchObject({ state: 'Suspending', kind: 'Kustomization', name: 'crash' });
    expect(owner(mid).previous).toBeUndefined();
    expect((await kustomization(crashNs, 'crash')).spec.suspend).toBe(true);
    expect(await imageOf(crashNs, 'crash')).toBe(V2);

    const restarted = await startOperator({
      env: { WATCH_NAMESPACES: crashNs, GITOPS_RESUME_CHECK_INTERVAL: '2s' },
      name: 'restarted',
    });
    try {
      await restarted.waitReady();
      const plan = await waitPlanPhase(crashNs, 'undo-crash', ['Succeeded', 'Failed']);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      // Our own pause, not a human's: Suspended (resumable), not AlreadySuspended.
      expect(owner(plan)).toMatchObject({ state: 'Suspended' });
      expect(await imageOf(crashNs, 'crash')).toBe(V1);
      const r = await runCli(['-n', crashNs, 'gitops', 'resume', 'undo-crash']);
      expect(r.code, r.stderr).toBe(0);
      await waitOwnerState(crashNs, 'undo-crash', 'Resumed');
      expect((await kustomization(crashNs, 'crash')).spec).not.toHaveProperty('suspend');
    } finally {
      await restarted.kill();
    }
  });

  it('a Deployment that only claims a Kustomization (labels) it is not in the inventory of: the owner is not paused', async () => {
    // A tenant's forged labels point at a real Kustomization (here: refused, of another app); its
    // status.inventory does not list this Deployment, so the plan rolls back without touching it.
    await deploymentWithHistory(ns, 'forged', [V1, V2]);
    await kubectl(
      '-n',
      ns,
      'label',
      'deployment/forged',
      'kustomize.toolkit.fluxcd.io/name=refused',
      `kustomize.toolkit.fluxcd.io/namespace=${ns}`,
    );
    await applyPlan(ns, 'undo-forged', { scope: 'app', targets: { deployments: [{ name: 'forged' }] } });
    const plan = await waitPlanPhase(ns, 'undo-forged', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect(plan.status.gitops).toBeUndefined();
    expect((await kustomization(ns, 'refused')).spec.suspend).not.toBe(true);
    expect(await imageOf(ns, 'forged')).toBe(V1);
    const events = await waitForEvents(ns, 'undo-forged', withReasons('GitOpsOwnerUncertain'));
    expect(events.find((e) => e.reason === 'GitOpsOwnerUncertain')?.message).toMatch(
      new RegExp(
        `Deployment forged is labelled as applied by Flux Kustomization ${ns}/refused, but its status.inventory does not list ${ns}_forged_apps_Deployment`,
      ),
    );
  });
});
