// Clients, namespaces and Deployments with rollout history for the rollback benchmark. Deployments are
// read and written as raw JSON (CustomObjectsApi on apps/v1), as the operator does, so no typed model drops
// fields of a newer API server.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { ObjectWatcher, RawObject } from './watch.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const BENCH_LABEL = 'nxt.bench/app';

export function benchClients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { kc, core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}
export type BenchClients = ReturnType<typeof benchClients>;

export async function createNamespace(c: BenchClients, name: string): Promise<void> {
  await c.core.createNamespace({ body: { metadata: { name, labels: { 'nxt.bench/run': 'true' } } } });
}

const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments' } as const;

/** Same container as test/support/kube.ts: passes Pod Security `restricted`. */
export function restrictedContainer(name: string, image: string) {
  return {
    name,
    image,
    securityContext: {
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      runAsUser: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

/** Keys sorted at every level, so two equal objects give the same string whatever their key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
}

export const templateOf = (d: RawObject): string => canonicalJson(d.spec?.template);

/** The setup criterion (test/support/workloads.ts waitRolledOut): done, and the controller's last write made. */
export function settledAt(revision: string) {
  return (d: RawObject): boolean => {
    const s = d.status ?? {};
    const want = d.spec?.replicas ?? 1;
    return (
      d.metadata.annotations?.[REVISION] === revision &&
      s.observedGeneration === d.metadata.generation &&
      s.updatedReplicas === want &&
      s.availableReplicas === want &&
      s.replicas === want &&
      (s.conditions ?? []).some(
        (c: { type: string; reason?: string }) =>
          c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable',
      )
    );
  };
}

/** `kubectl rollout status` says "successfully rolled out" (the operator's post-validation uses the same rule). */
export function rolloutComplete(d: RawObject): boolean {
  const s = d.status ?? {};
  const want = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  return (
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
    updated >= want &&
    (s.replicas ?? 0) <= updated &&
    (s.availableReplicas ?? 0) >= updated
  );
}

/**
 * Creates Deployment `name` and rolls it through `images`, one revision each, waiting (through `watcher`)
 * until each rollout is settled. Returns the canonical pod template of every revision, index 0 = revision 1.
 */
export async function deploymentWithHistory(
  c: BenchClients,
  watcher: ObjectWatcher,
  namespace: string,
  name: string,
  images: string[],
  replicas: number,
  /** Extra pod spec fields, e.g. a nodeSelector that pins the pods to one node. */
  podSpec: Record<string, unknown> = {},
): Promise<string[]> {
  const labels = { app: name };
  const key = `${namespace}/${name}`;
  await c.custom.createNamespacedCustomObject({
    ...DEPLOYMENTS,
    namespace,
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels: { [BENCH_LABEL]: name } },
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
  const templates = [
    templateOf((await watcher.waitFor(key, settledAt('1'), 120_000, `${key} at revision 1`)).obj),
  ];
  for (const [i, image] of images.slice(1).entries()) {
    for (let attempt = 0; ; attempt++) {
      const d = (await c.custom.getNamespacedCustomObject({ ...DEPLOYMENTS, namespace, name })) as RawObject;
      d.spec.template.spec.containers[0].image = image;
      try {
        await c.custom.replaceNamespacedCustomObject({ ...DEPLOYMENTS, namespace, name, body: d });
        break;
      } catch (e) {
        // 409: the deployment controller wrote status in between; read again.
        if ((e as { code?: number }).code !== 409 || attempt >= 10) throw e;
      }
    }
    const rev = String(i + 2);
    templates.push(
      templateOf((await watcher.waitFor(key, settledAt(rev), 120_000, `${key} at revision ${rev}`)).obj),
    );
  }
  return templates;
}

export const PLAN_API = {
  group: 'rollback.nxtnewday.io',
  version: 'v1alpha1',
  plural: 'rollbackplans',
} as const;

/** A scope-app RollbackPlan to the previous revision of one Deployment, without HTTP checks. */
export function appPlan(name: string, deployment: string) {
  return {
    apiVersion: `${PLAN_API.group}/${PLAN_API.version}`,
    kind: 'RollbackPlan',
    metadata: { name },
    spec: { scope: 'app', reason: 'benchmark', targets: { deployments: [{ name: deployment }] } },
  };
}
