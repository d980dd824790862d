import { eventually, kubectl } from './kube.js';
import { renderKustomize } from './rbac.js';

/** The shipped approvals policy (manifests/approvals), as users apply it. */
export const APPROVALS_DIR = 'manifests/approvals';
export const APPROVALS_POLICY = 'nxt-rollback-approvals';

type Probe = () => Promise<{ code: number; stderr: string }>;

/**
 * Installs the shipped approvals policy, its binding and roles for one test file, and removes them again. The
 * objects are cluster-scoped and the cluster is shared by every test file, so only what did not exist before
 * is deleted (USE_EXISTING_CLUSTER may point at a real cluster), and removal waits until admission forgot the
 * policy (its informer lags the delete a little), so later files may write approved-by as the admin.
 */
export class ShippedApprovals {
  private created: string[] = [];

  async install(fieldManager: string): Promise<void> {
    for (const o of await renderKustomize(APPROVALS_DIR)) {
      const there = await kubectl('get', o.kind, o.metadata.name, '--ignore-not-found', '-o', 'name');
      if (!there.trim()) this.created.push(`${o.kind}/${o.metadata.name}`);
    }
    await kubectl('apply', '--server-side', `--field-manager=${fieldManager}`, '-k', APPROVALS_DIR);
  }

  /** A new policy takes a moment to be enforced: waits (bounded) until `refused` is refused by the policy. */
  async waitEnforced(refused: Probe): Promise<void> {
    await eventually(
      `ValidatingAdmissionPolicy ${APPROVALS_POLICY} to be enforced`,
      async () => {
        const r = await refused();
        if (r.code === 0) return false;
        if (!r.stderr.includes(APPROVALS_POLICY))
          throw new Error(`refused, but not by the policy: ${r.stderr}`);
        return true;
      },
      60_000,
      250,
    );
  }

  /** Deletes what install() created (binding first); then waits until `admitted` is admitted again. */
  async remove(admitted: Probe | undefined): Promise<void> {
    const bindingFirst = (o: string) => (o.startsWith('ValidatingAdmissionPolicyBinding/') ? 0 : 1);
    const removesPolicy = this.created.some((o) => o.startsWith('ValidatingAdmissionPolicy'));
    for (const o of [...this.created].sort((a, b) => bindingFirst(a) - bindingFirst(b)))
      await kubectl('delete', o, '--ignore-not-found', '--wait=false');
    this.created = [];
    if (removesPolicy && admitted)
      await eventually(
        `ValidatingAdmissionPolicy ${APPROVALS_POLICY} to be no longer enforced`,
        async () => (await admitted()).code === 0,
        30_000,
        250,
      );
  }
}
