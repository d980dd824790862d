import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../env/binaries.js';
import { binPath, eventually, kubectl, testClients } from './kube.js';
import type { OperatorProcess } from './operator.js';

const execFileP = promisify(execFile);

/** Where manifests/base installs the operator, and who it runs as. */
export const OPERATOR_NAMESPACE = 'nxt-rollback-system';
export const OPERATOR_SA = 'nxt-rollback-operator';
export const OPERATOR_SUBJECT = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SA}`;
export const DEFAULT_LEASE = 'nxt-rollback-operator-leader';

/** The documents of manifests/base that give the operator its identity and permissions (no workload). */
const RBAC_KINDS = [
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** `kubectl kustomize <dir>` with the real kubectl, parsed into objects. */
export async function renderKustomize(dir: string): Promise<Manifest[]> {
  const out = await kubectl('kustomize', join(REPO_ROOT, dir));
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => !!o?.kind);
}

/** kubectl with any kubeconfig; never throws on a non-zero exit (can-i answers "no" with exit code 1). */
export async function kubectlWith(
  kubeconfig: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? err.message,
    };
  }
}

/** `kubectl auth can-i` for the operator's ServiceAccount (impersonated by the admin). */
export async function operatorCan(verb: string, resource: string, namespace?: string): Promise<boolean> {
  // `plural.group/sub` asks about a subresource (kubectl would read the part after the slash as a name).
  const [plural, subresource] = resource.split('/');
  const args = ['auth', 'can-i', verb, plural!, `--as=${OPERATOR_SUBJECT}`];
  if (subresource) args.push(`--subresource=${subresource}`);
  if (namespace) args.push('-n', namespace);
  const r = await kubectlWith(inject('kubeconfigPath'), ...args);
  if (r.stdout.trim() !== 'yes' && r.stdout.trim() !== 'no')
    throw new Error(`kubectl ${args.join(' ')}: unexpected answer ${r.stdout} ${r.stderr}`);
  return r.stdout.trim() === 'yes';
}

export interface InstalledRbac {
  /** What was applied, as "Kind/name". */
  applied: string[];
  /** Deletes what this install created (not what was already there), cluster-scoped objects included. */
  uninstall(): Promise<void>;
}

const objectArgs = (o: Manifest) =>
  o.metadata.namespace ? [o.kind, o.metadata.name, '-n', o.metadata.namespace] : [o.kind, o.metadata.name];

/**
 * Server-side applies exactly the Namespace, ServiceAccount and (Cluster)Role(Binding)s of an install and
 * waits until the RBAC authorizer grants the operator its basic permissions (its caches lag the writes a
 * little), so an operator started next sees no 403 caused only by that lag.
 *
 * Cluster-wide (default): manifests/base. Namespace-restricted (`watchNamespaces` given):
 * manifests/overlays/namespaced plus manifests/overlays/namespaced/watched-namespace applied into each
 * watched namespace, the way docs/install.md tells a user to.
 */
export async function installOperatorRbac(opts: { watchNamespaces?: string[] } = {}): Promise<InstalledRbac> {
  const watched = opts.watchNamespaces ?? [];
  const operatorDir = watched.length ? 'manifests/overlays/namespaced' : 'manifests/base';
  // The ClusterRoles for people (manifests/approvals) are not the operator's: test/integration/approvals.test.ts.
  const objects = (await renderKustomize(operatorDir)).filter(
    (o) => RBAC_KINDS.includes(o.kind) && o.metadata.labels?.['app.kubernetes.io/component'] !== 'approvals',
  );
  const kinds = new Set(objects.map((o) => o.kind));
  const required = watched.length ? ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding'] : RBAC_KINDS;
  for (const k of required) if (!kinds.has(k)) throw new Error(`${operatorDir} renders no ${k}`);
  if (watched.length) {
    const perNamespace = await renderKustomize('manifests/overlays/namespaced/watched-namespace');
    for (const ns of watched)
      for (const o of perNamespace) objects.push({ ...o, metadata: { ...o.metadata, namespace: ns } });
  }
  // Several test files share one cluster (and USE_EXISTING_CLUSTER may point at a real one): only what
  // did not exist before is ours to delete afterwards.
  const created: Manifest[] = [];
  for (const o of objects) {
    const existing = await kubectl('get', ...objectArgs(o), '--ignore-not-found', '-o', 'name');
    if (!existing.trim()) created.push(o);
  }
  const file = join(mkdtempSync(join(tmpdir(), 'nxt-rbac-')), 'rbac.yaml');
  writeFileSync(file, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  await kubectl('apply', '--server-side', '--field-manager=nxt-rbac-test', '-f', file);
  const probeNs = watched[0];
  for (const [verb, resource, ns] of [
    ['watch', 'rollbackplans.rollback.nxtnewday.io', probeNs],
    ['patch', 'backupschedules.rollback.nxtnewday.io/status', probeNs],
    ['update', 'leases.coordination.k8s.io', OPERATOR_NAMESPACE],
  ] as const) {
    await eventually(`RBAC to let the operator ${verb} ${resource}`, () => operatorCan(verb, resource, ns));
  }
  return {
    applied: objects.map((o) => `${o.kind}/${o.metadata.name}`),
    async uninstall() {
      // Reverse order: bindings before roles, the namespace (and what is in it) last.
      for (const o of [...created].reverse())
        await kubectl('delete', ...objectArgs(o), '--ignore-not-found', '--wait=false');
      if (created.some((o) => o.kind === 'Namespace')) {
        const { core } = testClients();
        // Wait, so that a later file applying manifests/base does not meet a Terminating namespace.
        await eventually(
          `namespace ${OPERATOR_NAMESPACE} to be deleted`,
          () =>
            core.readNamespace({ name: OPERATOR_NAMESPACE }).then(
              () => false,
              () => true,
            ),
          120_000,
          500,
        );
      }
    },
  };
}

/**
 * A kubeconfig that authenticates as the operator's ServiceAccount with a TokenRequest token (the same
 * server and CA as the admin kubeconfig), the way the operator's pod would. Returns its path.
 */
export async function operatorKubeconfig(
  opts: {
    namespace?: string;
    serviceAccount?: string;
    duration?: string;
    /** Another endpoint for the same API server (e.g. a recording proxy) and its CA, base64 PEM. */
    via?: { server: string; caData: string };
  } = {},
): Promise<string> {
  const ns = opts.namespace ?? OPERATOR_NAMESPACE;
  const sa = opts.serviceAccount ?? OPERATOR_SA;
  const token = (
    await kubectl('create', 'token', sa, '-n', ns, `--duration=${opts.duration ?? '1h'}`)
  ).trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token))
    throw new Error(`kubectl create token returned no JWT: ${token}`);
  const admin = new KubeConfig();
  admin.loadFromFile(inject('kubeconfigPath'));
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the admin kubeconfig has no current cluster');
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'under-test',
        server: opts.via?.server ?? cluster.server,
        caData: opts.via?.caData ?? ca,
        skipTLSVerify: cluster.skipTLSVerify,
        tlsServerName: opts.via ? undefined : cluster.tlsServerName,
      },
    ],
    users: [{ name: sa, token }],
    contexts: [{ name: sa, cluster: 'under-test', user: sa, namespace: ns }],
    currentContext: sa,
  });
  const path = join(mkdtempSync(join(tmpdir(), 'nxt-sa-kubeconfig-')), 'kubeconfig');
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

/**
 * A user limited to `verbs` on `resources` in `namespace` (a ServiceAccount, a Role and a RoleBinding, all
 * named `serviceAccount`): its kubeconfig, for tests that check what a user without some right sees.
 */
export async function limitedUserKubeconfig(opts: {
  namespace: string;
  serviceAccount: string;
  verbs: string[];
  resources: string[];
}): Promise<string> {
  const { namespace: ns, serviceAccount: sa } = opts;
  await kubectl('-n', ns, 'create', 'serviceaccount', sa);
  await kubectl(
    '-n',
    ns,
    'create',
    'role',
    sa,
    `--verb=${opts.verbs.join(',')}`,
    `--resource=${opts.resources.join(',')}`,
  );
  await kubectl('-n', ns, 'create', 'rolebinding', sa, `--role=${sa}`, `--serviceaccount=${ns}:${sa}`);
  return operatorKubeconfig({ namespace: ns, serviceAccount: sa });
}

export interface LeaseState {
  holderIdentity: string;
  leaseTransitions: number;
  acquireTime?: string;
  renewTime?: string;
}

/** The Lease's spec, or undefined when it does not exist. */
export async function readLease(namespace: string, name: string): Promise<LeaseState | undefined> {
  const out = await kubectl('-n', namespace, 'get', 'lease', name, '--ignore-not-found', '-o', 'json');
  if (!out.trim()) return undefined;
  const spec = JSON.parse(out).spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseTransitions: spec.leaseTransitions ?? 0,
    acquireTime: spec.acquireTime,
    renewTime: spec.renewTime,
  };
}

/** Waits until the Lease is held by an identity that starts with `podName + "_"` (identity is POD_NAME_uuid). */
export function waitLeaseHeldBy(namespace: string, name: string, podName: string, timeoutMs = 30_000) {
  return eventually(
    `Lease ${namespace}/${name} to be held by ${podName}_<uuid>`,
    async () => {
      const l = await readLease(namespace, name);
      if (l?.holderIdentity.startsWith(`${podName}_`)) return l;
      throw new Error(`holderIdentity is ${JSON.stringify(l?.holderIdentity)}`);
    },
    timeoutMs,
    250,
  );
}

/** Sum of every sample of a metric whose labels include `labels`; undefined when there is none. */
export async function metricSum(
  metricsUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const text = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) }).then((r) => r.text());
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum = (sum ?? 0) + Number(line.split(' ').pop());
  }
  return sum;
}

/** Log lines that show the API server refused the operator something (RBAC), for assertion messages. */
export const forbiddenLines = (op: OperatorProcess) =>
  op
    .logs()
    .split('\n')
    .filter((l) => /\b403\b|forbidden/i.test(l));

/** True while the operator process has neither exited nor been killed. */
export const isAlive = (op: OperatorProcess) => op.child.exitCode === null && op.child.signalCode === null;

/** Resolves like `p`, or rejects saying "<what> within <ms> ms" when it takes longer. */
export const within = <T>(ms: number, what: string, p: Promise<T>): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`expected ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
};

/** The HTTP status of a GET, or the error text when there is no answer (for assertion messages). */
export const httpStatus = (url: string): Promise<number | string> =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.status,
    (e: Error) => `${e.name}: ${e.message}`,
  );

const SCHEDULES = { group: 'rollback.nxtnewday.io', version: 'v1alpha1', plural: 'backupschedules' } as const;

/** A BackupSchedule whose credentials Secret `secretName` is expected not to exist. */
export async function createScheduleWithoutSecret(namespace: string, name: string, secretName: string) {
  const { custom } = testClients();
  await custom.createNamespacedCustomObject({
    ...SCHEDULES,
    namespace,
    body: {
      apiVersion: 'rollback.nxtnewday.io/v1alpha1',
      kind: 'BackupSchedule',
      metadata: { name },
      spec: {
        schedule: '0 */4 * * *',
        database: { secretRef: { name: secretName } },
        storage: { persistentVolumeClaim: { claimName: `${name}-backups` } },
      },
    },
  });
}

/** Waits until status.observedGeneration and the Ready condition's observedGeneration are `generation`. */
export function waitScheduleObserved(
  namespace: string,
  name: string,
  generation: number,
  timeoutMs = 60_000,
): Promise<any> {
  const { custom } = testClients();
  return eventually(
    `BackupSchedule ${name} status (and its Ready condition) at observedGeneration ${generation}`,
    async () => {
      const s: any = await custom.getNamespacedCustomObject({ ...SCHEDULES, namespace, name });
      const ready = (s.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
      if (s.status?.observedGeneration === generation && ready?.observedGeneration === generation) return s;
      throw new Error(`generation ${s.metadata.generation}, status ${JSON.stringify(s.status)}`);
    },
    timeoutMs,
    250,
  );
}

/** Changes a BackupSchedule's spec (a new generation) with kubectl. */
export const bumpSchedule = (namespace: string, name: string, schedule: string) =>
  kubectl(
    '-n',
    namespace,
    'patch',
    'backupschedule',
    name,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { schedule } }),
  );
