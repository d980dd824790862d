import { kubectl, restrictedContainer, testClients, eventually } from './kube.js';

export const REVISION = 'deployment.kubernetes.io/revision';

/**
 * Creates Deployment `name` and rolls it through `images` (one revision each), waiting for every rollout.
 * `podSpec` adds fields to the pod template (a nodeSelector, say).
 */
export async function deploymentWithHistory(
  namespace: string,
  name: string,
  images: string[],
  replicas = 2,
  podSpec: Record<string, unknown> = {},
): Promise<void> {
  const { apps } = testClients();
  const labels = { app: name };
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name, annotations: { 'kubernetes.io/change-cause': `deploy ${images[0]}` } },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { ...podSpec, containers: [restrictedContainer('app', images[0]!)] },
        },
      },
    },
  });
  await waitRolledOut(namespace, name, '1');
  for (const [i, image] of images.slice(1).entries()) {
    // Like the old --record: annotate after the change, so the annotation lands on the new ReplicaSet.
    await kubectl('-n', namespace, 'set', 'image', `deployment/${name}`, `app=${image}`);
    await kubectl(
      '-n',
      namespace,
      'annotate',
      '--overwrite',
      `deployment/${name}`,
      `kubernetes.io/change-cause=deploy ${image}`,
    );
    await waitRolledOut(namespace, name, String(i + 2));
  }
}

export async function waitRolledOut(namespace: string, name: string, revision?: string) {
  const { apps } = testClients();
  return eventually(
    `deployment ${name} rolled out${revision ? ` at revision ${revision}` : ''}`,
    async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace });
      const s = d.status;
      const want = d.spec?.replicas ?? 1;
      return (
        (!revision || d.metadata?.annotations?.[REVISION] === revision) &&
        s?.observedGeneration === d.metadata?.generation &&
        s?.updatedReplicas === want &&
        s?.availableReplicas === want &&
        s?.replicas === want &&
        // the controller's last status write of a rollout: after it the object stays put
        s?.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable') &&
        d
      );
    },
    60_000,
  );
}

export async function imageOf(namespace: string, name: string): Promise<string | undefined> {
  const { apps } = testClients();
  const d = await apps.readNamespacedDeployment({ name, namespace });
  return d.spec?.template.spec?.containers[0]?.image;
}

/** Waits until the Deployment's resourceVersion stays the same for `quietMs` (its controllers are done). */
export async function settledResourceVersion(
  namespace: string,
  name: string,
  quietMs = 1500,
): Promise<string> {
  const { apps } = testClients();
  let rv = (await apps.readNamespacedDeployment({ name, namespace })).metadata?.resourceVersion ?? '';
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = (await apps.readNamespacedDeployment({ name, namespace })).metadata?.resourceVersion ?? '';
    if (now === rv) return rv;
    rv = now;
  }
  throw new Error(`deployment ${name} never settled`);
}

/** Field managers that wrote the Deployment: the operator must not be among them after a dry run. */
export async function writersOf(namespace: string, name: string): Promise<string[]> {
  const { apps } = testClients();
  const d = await apps.readNamespacedDeployment({ name, namespace });
  return (d.metadata?.managedFields ?? []).map((f) => f.manager ?? '');
}
