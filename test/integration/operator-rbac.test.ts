import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, deleteTestNamespace } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, waitPlanPhase } from '../support/plans.js';
import {
  bumpSchedule,
  createScheduleWithoutSecret,
  DEFAULT_LEASE,
  forbiddenLines,
  installOperatorRbac,
  kubectlWith,
  OPERATOR_NAMESPACE,
  OPERATOR_SUBJECT,
  operatorCan,
  operatorKubeconfig,
  waitLeaseHeldBy,
  waitScheduleObserved,
  type InstalledRbac,
} from '../support/rbac.js';
import { deploymentWithHistory } from '../support/workloads.js';

// The operator runs with exactly the RBAC in manifests/base: its ServiceAccount, ClusterRole(Binding) and
// leader-election Role(Binding) are applied as rendered, and the real operator process authenticates with a
// TokenRequest token for that ServiceAccount, as its pod would. Anything the manifests forgot shows up as a
// 403 in its log or a reconcile that never finishes.
describe('the operator runs with exactly the RBAC in manifests/', () => {
  const podName = `rbac-op-${randomBytes(3).toString('hex')}`;
  let rbac: InstalledRbac | undefined;
  let kubeconfig = '';
  let ns = '';
  let op: OperatorProcess | undefined;

  beforeAll(async () => {
    rbac = await installOperatorRbac();
    kubeconfig = await operatorKubeconfig();
    ns = await createTestNamespace('rbac');
    op = await startOperator({
      kubeconfigPath: kubeconfig,
      name: podName,
      env: {
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: OPERATOR_NAMESPACE,
        WATCH_NAMESPACES: ns,
        POD_NAME: podName,
      },
    });
  });
  afterAll(async () => {
    await op?.kill();
    if (ns) await deleteTestNamespace(ns);
    // ClusterRole and ClusterRoleBinding are cluster-scoped and the cluster is shared by every test file.
    await rbac?.uninstall();
  });

  it('applies the identity and permissions documents of manifests/base', () => {
    expect(rbac!.applied.sort()).toEqual(
      [
        'ClusterRole/nxt-rollback-operator',
        'ClusterRoleBinding/nxt-rollback-operator',
        `Namespace/${OPERATOR_NAMESPACE}`,
        'Role/nxt-rollback-operator-leader-election',
        'RoleBinding/nxt-rollback-operator-leader-election',
        'ServiceAccount/nxt-rollback-operator',
      ].sort(),
    );
  });

  it('authenticates as the ServiceAccount, not as the admin', async () => {
    const who = await kubectlWith(kubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}');
    expect(who.stdout, `kubectl auth whoami with the operator kubeconfig: ${who.stderr}`).toBe(
      OPERATOR_SUBJECT,
    );
  });

  it('becomes ready and holds the leader Lease in nxt-rollback-system', async () => {
    await op!.waitReady(60_000);
    const lease = await waitLeaseHeldBy(OPERATOR_NAMESPACE, DEFAULT_LEASE, podName, 45_000);
    expect(lease.holderIdentity).toMatch(new RegExp(`^${podName}_[0-9a-f-]{36}$`));
  });

  it('reconciles a RollbackPlan (scope app) to Succeeded', async () => {
    await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'undo-web', { scope: 'app', targets: { deployments: [{ name: 'web' }] } });
    const plan = await waitPlanPhase(ns, 'undo-web', ['Succeeded', 'Failed'], 90_000);
    expect(plan.status.phase, `plan conditions: ${JSON.stringify(plan.status.conditions)}`).toBe('Succeeded');
    expect(plan.status.observedGeneration).toBe(plan.metadata.generation);
    expect(condition(plan, 'Ready')).toMatchObject({
      status: 'True',
      observedGeneration: plan.metadata.generation,
    });
    expect(plan.status.deployments).toEqual([
      expect.objectContaining({ name: 'web', fromRevision: 2, toRevision: 1, result: 'RolledBack' }),
    ]);
  });

  it('reads Secrets (get) and patches BackupSchedule status: a missing Secret is SecretNotFound', async () => {
    await createScheduleWithoutSecret(ns, 'orders-db', 'no-such-secret');
    let s = await waitScheduleObserved(ns, 'orders-db', 1);
    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(condition(s, 'Ready').message).toMatch(/Secret "no-such-secret" .* not found/);
    // A spec change is seen through the watch and its generation acknowledged with another status patch.
    await bumpSchedule(ns, 'orders-db', '0 */6 * * *');
    s = await waitScheduleObserved(ns, 'orders-db', 2);
    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
  });

  it('is really confined: no delete of Deployments, no listing of Secrets, Lease only in its namespace', async () => {
    // The positive answers show can-i is asking about the right subject; the negative ones are the point.
    expect(await operatorCan('get', 'secrets', ns), 'get secrets').toBe(true);
    expect(await operatorCan('patch', 'deployments.apps', ns), 'patch deployments').toBe(true);
    for (const [verb, resource, where] of [
      ['delete', 'deployments.apps', ns],
      ['list', 'secrets', ns],
      ['watch', 'secrets', ns],
      ['create', 'rollbackplans.rollback.nxtnewday.io', ns],
      ['delete', 'rollbackplans.rollback.nxtnewday.io', ns],
      ['update', 'leases.coordination.k8s.io', ns],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io', undefined],
    ] as const) {
      expect(await operatorCan(verb, resource, where), `the operator may ${verb} ${resource}`).toBe(false);
    }
    // And with its own token, not impersonation: the API server refuses to list Secrets.
    const r = await kubectlWith(kubeconfig, '-n', ns, 'get', 'secrets');
    expect(r.code, 'kubectl get secrets as the operator should fail').not.toBe(0);
    expect(r.stderr).toMatch(/forbidden/i);
  });

  it('never hit a 403 while doing all of the above', () => {
    expect(op!.child.exitCode, 'the operator is still running').toBeNull();
    const refused = forbiddenLines(op!);
    expect(
      refused.length,
      `operator log lines mentioning 403/Forbidden, e.g.\n${refused.slice(0, 3).join('\n')}`,
    ).toBe(0);
  });
});
