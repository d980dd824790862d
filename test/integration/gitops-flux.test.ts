import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LocalFlux } from '../env/flux.js';
import { deploymentYaml, fluxObjectsYaml } from '../support/flux-apps.js';
import { LocalGitServer, type GitRepo } from '../env/git-server.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, waitPlanPhase } from '../support/plans.js';
import { imageOf, REVISION, waitRolledOut } from '../support/workloads.js';

// What real Flux (source-controller + kustomize-controller v1.9.6, built by hack/build-flux.sh) does to a
// rollback today, from a real Git server (test/env/git-server.ts). This is the ground the operator's
// spec.gitops policies (issue 11) must change; see docs/gitops.md "What happens today".
//
// Each scenario has its own repository, GitRepository and Kustomization, and they are all set up at once in
// beforeAll. Intervals are short so the file stays within a few minutes.

const V1 = 'nginx:1.25';
const V2 = 'nginx:1.26';
const V3 = 'nginx:1.27';
const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
const FLUX_MANAGER = 'kustomize-controller';
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';

describe('GitOps with real Flux (what happens today)', () => {
  const { apps, custom } = testClients();
  let ns = '';
  let flux: LocalFlux | undefined;
  let git: LocalGitServer | undefined;
  let op: OperatorProcess | undefined;
  const repos: Record<string, { repo: GitRepo; v1: string; v2: string }> = {};
  const log = (m: string) => console.log(`[gitops-flux] ${m}`);

  const kustomization = (name: string): Promise<any> =>
    custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'kustomizations',
      namespace: ns,
      name,
    });
  const patchKustomization = (name: string, patch: object) =>
    kubectl('-n', ns, 'patch', 'kustomization', name, '--type=merge', '-p', JSON.stringify(patch));

  /** Asks Flux to reconcile now (as `flux reconcile ks` does) and waits until it has handled the request. */
  async function reconcileNow(name: string): Promise<void> {
    const at = new Date().toISOString();
    await patchKustomization(name, { metadata: { annotations: { [REQUESTED_AT]: at } } });
    await eventually(
      `Kustomization ${name} to handle the reconcile request`,
      async () => (await kustomization(name)).status?.lastHandledReconcileAt === at,
      30_000,
      200,
    );
  }

  /** How many reconciles of Kustomization `name` kustomize-controller has logged as finished. */
  function reconcilesFinished(name: string): number {
    return flux!.logEntries('kustomize-controller').filter((e) => {
      const obj = (e.Kustomization ?? {}) as { name?: string; namespace?: string };
      return String(e.msg).startsWith('Reconciliation finished') && obj.name === name && obj.namespace === ns;
    }).length;
  }

  /** Which field manager owns the first container's image of a Deployment. */
  async function imageOwners(name: string): Promise<string[]> {
    const d = await apps.readNamespacedDeployment({ name, namespace: ns });
    return (d.metadata?.managedFields ?? [])
      .filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('"f:image"'))
      .map((f) => f.manager ?? '');
  }

  /**
   * A repository with v1 of Deployment `name`, Flux applying it, then v2 pushed: two revisions on the cluster,
   * both applied from Git by Flux.
   */
  async function gitopsApp(name: string, interval: string): Promise<void> {
    const repo = await git!.createRepo(name);
    const v1 = await repo.commit({ 'deploy/deployment.yaml': deploymentYaml(name, V1) }, `${name} ${V1}`);
    const dir = mkdtempSync(join(tmpdir(), 'nxt-flux-objects-'));
    try {
      writeFileSync(
        join(dir, 'flux.yaml'),
        fluxObjectsYaml({ name, namespace: ns, url: repo.url, interval }),
      );
      await kubectl('apply', '--server-side', '-f', join(dir, 'flux.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await waitRolledOut(ns, name, '1');
    const v2 = await repo.commit({ 'deploy/deployment.yaml': deploymentYaml(name, V2) }, `${name} ${V2}`);
    await waitRolledOut(ns, name, '2');
    repos[name] = { repo, v1, v2 };
  }

  beforeAll(async () => {
    ns = await createTestNamespace('gitops');
    // A first run builds Flux (~10 min on 2 cores; CI builds it beforehand): hence the long hook timeout.
    [flux, git, op] = await Promise.all([
      LocalFlux.start({ kubeconfigPath: inject('kubeconfigPath'), log }),
      LocalGitServer.start({ log }),
      startOperator({ env: { WATCH_NAMESPACES: ns } }),
    ]);
    await op.waitReady();
    const t0 = Date.now();
    await Promise.all([
      // (a) long enough for the rollback to be done before Flux's next periodic reconcile.
      gitopsApp('ignored', '20s'),
      gitopsApp('reverted', '1m'),
      gitopsApp('suspended', '10s'),
      gitopsApp('dry', '1m'),
    ]);
    log(`four apps at revision 2 from Git in ${Date.now() - t0} ms`);
  }, 30 * 60_000);

  afterAll(async () => {
    // Delete the Flux objects while Flux runs: their finalizers would block the namespace otherwise.
    if (ns && flux) {
      await kubectl('-n', ns, 'delete', 'kustomizations,gitrepositories', '--all', '--timeout=60s').catch(
        (e) => log(String(e)),
      );
    }
    await op?.kill();
    await flux?.stop();
    await git?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('Flux labels what it applies, and owns the image field', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'ignored', namespace: ns });
    expect(d.metadata?.labels).toMatchObject({
      'kustomize.toolkit.fluxcd.io/name': 'ignored',
      'kustomize.toolkit.fluxcd.io/namespace': ns,
    });
    expect(await imageOwners('ignored')).toEqual([FLUX_MANAGER]);
    const ks = await kustomization('ignored');
    expect(ks.status.lastAppliedRevision).toBe(`main@sha1:${repos.ignored!.v2}`);
  });

  it('(a) policy ignore: the plan succeeds, then Flux puts the Git template back within its interval', async () => {
    // Wait for a periodic reconcile to finish (only kustomize-controller's log tells: a reconcile that
    // changes nothing changes no status). The next one is one interval (20s, ±5% jitter) later, and the
    // rollback must be done by then.
    const before = reconcilesFinished('ignored');
    await eventually(
      'a periodic reconcile of Kustomization ignored',
      async () => reconcilesFinished('ignored') > before,
      45_000,
      100,
    );
    const reconciledAt = Date.now();
    await applyPlan(ns, 'undo-ignored', {
      scope: 'app',
      reason: 'bad release, GitOps policy ignore',
      targets: { deployments: [{ name: 'ignored' }] },
      gitops: { policy: 'ignore' },
    });
    const plan = await waitPlanPhase(ns, 'undo-ignored', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect(condition(plan, 'RolledBack')).toMatchObject({ status: 'True' });
    expect(plan.status.deployments[0]).toMatchObject({ fromRevision: 2, toRevision: 1 });
    const succeededAt = Date.now();
    expect(await imageOf(ns, 'ignored')).toBe(V1);
    expect(await imageOwners('ignored'), 'the rollback took the image from Flux').not.toContain(FLUX_MANAGER);

    // Nothing in Git changed, yet the next reconcile applies v2's template again: the rollback is undone.
    await eventually(
      `Flux to re-apply ${V2}`,
      async () => (await imageOf(ns, 'ignored')) === V2,
      45_000,
      250,
    );
    const afterReconcile = Date.now() - reconciledAt;
    log(
      `Flux reverted the rollback ${Date.now() - succeededAt} ms after the plan succeeded, ` +
        `${afterReconcile} ms after its previous reconcile (interval 20s)`,
    );
    expect(afterReconcile, 'reverted by the next periodic reconcile').toBeLessThan(25_000);
    expect(await imageOwners('ignored')).toEqual([FLUX_MANAGER]);
    const d = await waitRolledOut(ns, 'ignored', '4');
    expect(d.metadata?.managedFields?.map((f) => f.manager)).toContain(FLUX_MANAGER);
    expect((await kustomization('ignored')).status.lastAppliedRevision).toBe(
      `main@sha1:${repos.ignored!.v2}`,
    );
  });

  it('(b) a git revert makes Flux apply the old template; the old ReplicaSet comes back with revision-history', async () => {
    const { repo, v2 } = repos.reverted!;
    const rsOf = async (image: string) => {
      const list = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=reverted' });
      return list.items.filter((rs) => rs.spec?.template?.spec?.containers[0]?.image === image);
    };
    const [v1Rs] = await rsOf(V1);
    expect(v1Rs?.metadata?.annotations?.[REVISION]).toBe('1');
    expect(v1Rs?.metadata?.annotations?.[REVISION_HISTORY]).toBeUndefined();

    const revert = await repo.revert(v2);
    const d = await waitRolledOut(ns, 'reverted', '3');
    expect(d.spec?.template.spec?.containers[0]?.image).toBe(V1);
    expect((await kustomization('reverted')).status.lastAppliedRevision).toBe(`main@sha1:${revert}`);
    // No new ReplicaSet: the deployment controller re-used v1's and recorded the number it had before.
    const after = await rsOf(V1);
    expect(after.map((rs) => rs.metadata?.uid)).toEqual([v1Rs!.metadata!.uid]);
    expect(after[0]!.metadata?.annotations).toMatchObject({ [REVISION]: '3', [REVISION_HISTORY]: '1' });
    const all = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=reverted' });
    expect(all.items).toHaveLength(2);
  });

  it('(c) a suspended Kustomization leaves a manual change alone; resuming reverts it', async () => {
    await patchKustomization('suspended', { spec: { suspend: true } });
    await eventually(
      'the suspend to be observed',
      async () => {
        const ks = await kustomization('suspended');
        return ks.status?.observedGeneration === ks.metadata.generation;
      },
      30_000,
    );
    await kubectl('-n', ns, 'set', 'image', 'deployment/suspended', `app=${V3}`);
    await waitRolledOut(ns, 'suspended', '3');
    // A reconcile request is handled (status says so) but applies nothing (unsuspended, it reverts within
    // ~2 s); then more than one interval (10s) passes.
    await reconcileNow('suspended');
    await new Promise((r) => setTimeout(r, 12_000));
    expect(await imageOf(ns, 'suspended')).toBe(V3);
    expect(await imageOwners('suspended')).not.toContain(FLUX_MANAGER);

    // Resuming (a spec change) reconciles at once: the manual change is gone.
    await patchKustomization('suspended', { spec: { suspend: false } });
    await eventually(
      `Flux to re-apply ${V2}`,
      async () => (await imageOf(ns, 'suspended')) === V2,
      30_000,
      250,
    );
    expect(await imageOwners('suspended')).toEqual([FLUX_MANAGER]);
  });

  it('(d) a dry run names the Kustomization that applies the Deployment', async () => {
    await applyPlan(ns, 'dry-run', {
      scope: 'app',
      dryRun: true,
      targets: { deployments: [{ name: 'dry' }] },
    });
    const plan = await waitPlanPhase(ns, 'dry-run', ['DryRunComplete', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('DryRunComplete');
    expect(plan.status.dryRunReport.deployments[0].gitops).toMatchObject({
      tool: 'flux',
      kind: 'Kustomization',
      name: 'dry',
      namespace: ns,
    });
    expect(plan.status.dryRunReport.summary).toMatch(
      new RegExp(`dry is applied from Git by Flux Kustomization ${ns}/dry`),
    );
  });
});
