import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalGitServer, GitRepo } from '../env/git-server.js';
import { eventually, kubectl, testClients } from './kube.js';
import { waitRolledOut } from './workloads.js';

// An app applied from Git by real Flux (test/env/flux.ts, test/env/git-server.ts), as the GitOps tests and
// docs/gitops.md use it: a repository with deploy/deployment.yaml, a GitRepository and a Kustomization.

export const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';

/** The manifest the repository holds: a Deployment whose pods pass Pod Security `restricted`. */
export function deploymentYaml(name: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: ${name}
  template:
    metadata:
      labels:
        app: ${name}
    spec:
      containers:
        - name: app
          image: ${image}
          securityContext:
            allowPrivilegeEscalation: false
            runAsNonRoot: true
            runAsUser: 65532
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
`;
}

/** The Flux objects of one app: a GitRepository polled every 5s and a Kustomization that applies ./deploy. */
export function fluxObjectsYaml(o: { name: string; namespace: string; url: string; interval: string }) {
  return `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: ${o.name}
  namespace: ${o.namespace}
spec:
  url: ${o.url}
  ref:
    branch: main
  interval: 5s
  timeout: 20s
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: ${o.name}
  namespace: ${o.namespace}
spec:
  sourceRef:
    kind: GitRepository
    name: ${o.name}
  path: ./deploy
  targetNamespace: ${o.namespace}
  prune: true
  wait: false
  interval: ${o.interval}
  retryInterval: 5s
  timeout: 1m
`;
}

export interface FluxApp {
  repo: GitRepo;
  /** Commits of the first and second release. */
  v1: string;
  v2: string;
}

/** A repository with release v1 of Deployment `name`, Flux applying it, then v2 pushed: revisions 1 and 2. */
export async function fluxApp(
  git: LocalGitServer,
  namespace: string,
  name: string,
  images: [string, string],
  interval = '1m',
): Promise<FluxApp> {
  const repo = await git.createRepo(name);
  const v1 = await repo.commit(
    { 'deploy/deployment.yaml': deploymentYaml(name, images[0]) },
    `${name} ${images[0]}`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'nxt-flux-objects-'));
  try {
    writeFileSync(join(dir, 'flux.yaml'), fluxObjectsYaml({ name, namespace, url: repo.url, interval }));
    await kubectl('apply', '--server-side', '-f', join(dir, 'flux.yaml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await waitRolledOut(namespace, name, '1');
  const v2 = await repo.commit(
    { 'deploy/deployment.yaml': deploymentYaml(name, images[1]) },
    `${name} ${images[1]}`,
  );
  await waitRolledOut(namespace, name, '2');
  return { repo, v1, v2 };
}

const KS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };

export const kustomization = (namespace: string, name: string): Promise<any> =>
  testClients().custom.getNamespacedCustomObject({ ...KS, namespace, name });

export const patchKustomization = (namespace: string, name: string, patch: object) =>
  kubectl('-n', namespace, 'patch', 'kustomization', name, '--type=merge', '-p', JSON.stringify(patch));

/** Asks Flux to reconcile now (as `flux reconcile ks` does) and waits until it has handled the request. */
export async function reconcileNow(namespace: string, name: string): Promise<void> {
  const at = new Date().toISOString();
  await patchKustomization(namespace, name, { metadata: { annotations: { [REQUESTED_AT]: at } } });
  await eventually(
    `Kustomization ${name} to handle the reconcile request`,
    async () => (await kustomization(namespace, name)).status?.lastHandledReconcileAt === at,
    30_000,
    200,
  );
}
